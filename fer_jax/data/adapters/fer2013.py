"""FER-2013 (Kaggle csv or per-class folders) and FER+ (fer2013new.csv votes).

fer2013.csv: header `emotion,pixels,Usage` (column names are matched after
stripping spaces, so icml_face_data.csv reads too); emotion 0-6 = angry, disgust,
fear, happy, sad, surprise, neutral; pixels = 2304 gray values (48x48);
Usage Training / PublicTest / PrivateTest -> train / validation / test.
Folder variant: <split>/<class>/*.png|jpg with split dirs train, test (and
validation or val if present) and class dirs named by emotion.

FER+: fer2013new.csv (`Usage,Image name,neutral,...,unknown,NF` vote counts) is
joined by row to fer2013.csv. As microsoft/FERPlus `majority` mode: single votes
are removed, the top class is kept only with > half of the remaining votes, and
rows whose top class is unknown / NF, or whose Image name is empty (non-faces),
are dropped and counted in `source.dropped`; so is contempt unless contempt=True
(then label 7, and the source declares `labels.EXPRESSIONS_WITH_CONTEMPT`).
FER+ folder variant (layout='folders'; what FERPlus's generate_training_data.py
writes): FER2013Train/, FER2013Valid/, FER2013Test/ (train / validation / test;
also under data/), each holding the PNGs and a header-less label.csv whose rows
are `name,"(x, y, w, h)",<10 vote counts>` (the committed files) or
`name,<10 vote counts>` (the current generator); the box is checked and ignored
(the image is the whole 48x48 face). Same majority rule and drops.
"""
import csv
import os

import numpy as np

from fer_jax.data import labels
from fer_jax.data.adapters import base, label_maps, shared

USAGE = {'Training': 'train', 'PublicTest': 'validation', 'PrivateTest': 'test'}
CSV_LAYOUT = ('  <manual_dir>/fer2013.csv   header emotion,pixels,Usage\n'
              '  or <manual_dir>/{train,test}/<class>/*.png (per-class folders)')
FERPLUS_LAYOUT = ('  <manual_dir>/fer2013.csv     (Kaggle FER-2013)\n'
                  '  <manual_dir>/fer2013new.csv  (microsoft/FERPlus votes)\n'
                  '  or <manual_dir>/[data/]FER2013Train|FER2013Valid|FER2013Test/'
                  '{label.csv, fer0000000.png, ...}')
FERPLUS_DIRS = {'train': 'FER2013Train', 'validation': 'FER2013Valid',
                'test': 'FER2013Test'}
_IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.bmp')


def _pixels(text: str, where: str):
  try:
    px = np.array(text.split(), np.int64)
  except ValueError:
    raise ValueError(f'{where}: pixels are not integers') from None
  if px.size != 48 * 48 or px.min() < 0 or px.max() > 255:
    raise ValueError(f'{where}: expected 2304 pixel values in [0, 255], got '
                     f'{px.size}')
  return px.astype(np.uint8).reshape(48, 48, 1)


def read_fer_csv(path: str):
  """Yields (line, row dict with stripped keys) of fer2013.csv."""
  if not os.path.isfile(path):
    raise FileNotFoundError(path)
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    missing = {'emotion', 'pixels', 'Usage'} - set(header)
    if missing:
      raise shared.AdapterError(f'{path}:1: header {header} lacks {sorted(missing)}')
    for row in reader:
      yield reader.line_num, dict(zip(header, (c.strip() for c in row))), len(row)


def _fer_csv_entries(path, split, col, contempt=False):
  ncols = 3
  for line, row, n in read_fer_csv(path):
    where = f'{path}:{line}'
    if n != ncols:
      col.bad(where, f'expected {ncols} fields, got {n}')
      continue
    if row['Usage'] not in USAGE:
      col.bad(where, f'unknown Usage {row["Usage"]!r}; valid: {", ".join(USAGE)}')
      continue
    if USAGE[row['Usage']] != split:
      continue
    try:
      if not row['emotion'].lstrip('-').isdigit():
        raise ValueError(f'{where}: emotion {row["emotion"]!r} is not an integer')
      code = int(row['emotion'])
      if not 0 <= code < 7:
        raise ValueError(f'{where}: emotion {code} outside 0-6')
      pixels = _pixels(row['pixels'], where)
    except ValueError as e:
      col.bad(where, str(e).split(': ', 1)[-1])
      continue
    col.add(where=where, image=pixels, expression=label_maps.FER2013[code])


def _folder_entries(root, split, col):
  names = {'train': ('train', 'Training'), 'validation': ('validation', 'val',
                                                           'PublicTest'),
           'test': ('test', 'PrivateTest')}[split]
  dirs = [os.path.join(root, n) for n in names if os.path.isdir(os.path.join(root, n))]
  for d in dirs[:1]:
    for cls in sorted(os.listdir(d)):
      cdir = os.path.join(d, cls)
      if not os.path.isdir(cdir):
        continue
      label = label_maps.canonical(cls)
      if label is None or label >= base.CONTEMPT:
        col.bad(cdir, f'class folder {cls!r} is not one of {label_maps.FER2013_NAMES}')
        continue
      for fn in sorted(os.listdir(cdir)):
        if fn.lower().endswith(_IMAGE_EXT):
          path = os.path.join(cdir, fn)
          col.add(where=path, image=path, expression=label)


def fer2013(split: str, manual_dir: str, layout: str = 'auto', image_size=None,
            channels: int = 1, skip_bad: bool = False):
  """FER-2013 source. layout: 'auto' (csv if fer2013.csv exists), 'csv', 'folders'."""
  base.check_split(split)
  csv_path = os.path.join(manual_dir, 'fer2013.csv')
  if layout == 'auto':
    layout = 'csv' if os.path.isfile(csv_path) else 'folders'
  col = base.Collector(skip_bad)
  if layout == 'csv':
    base.require(csv_path, 'fer2013', manual_dir, CSV_LAYOUT)
    _fer_csv_entries(csv_path, split, col)
  elif layout == 'folders':
    if not os.path.isdir(os.path.join(manual_dir, 'train')):
      raise base.missing_layout('fer2013', manual_dir, 'fer2013.csv or train/',
                                CSV_LAYOUT)
    _folder_entries(manual_dir, split, col)
    if skip_bad:
      base.check_images(col, channels)
  else:
    raise ValueError(f'Unknown fer2013 layout {layout!r}; valid: auto, csv, folders')
  return base.AdapterSource('fer2013', split, col, domain='wild',
                            image_size=image_size, channels=channels)


def ferplus_label(votes, contempt: bool = False):
  """(canonical label or None, drop reason) of one row's 10 vote counts."""
  v = np.array(votes, np.float64)
  v[v <= 1] = 0  # FERPlus removes single votes as outliers
  total = v.sum()
  if total <= 0:
    return None, 'no_votes'
  top = int(np.argmax(v))
  if v[top] <= 0.5 * total:
    return None, 'no_majority'
  name = label_maps.FERPLUS_NAMES[top]
  label = label_maps.FERPLUS[top]
  if label is None:
    return None, name
  if label == base.CONTEMPT and not contempt:
    return None, 'contempt'
  return label, None


def _ferplus_root(manual_dir):
  """The folder holding FER2013Train/ etc., or None."""
  for root in (manual_dir, os.path.join(manual_dir, 'data')):
    if any(os.path.isdir(os.path.join(root, d)) for d in FERPLUS_DIRS.values()):
      return root
  return None


def _is_box(text) -> bool:
  nums = text.strip().strip('()').split(',')
  return len(nums) == 4 and all(n.strip().isdigit() for n in nums)


def _ferplus_folder_entries(manual_dir, split, contempt, col):
  root = _ferplus_root(manual_dir)
  if root is None:
    raise base.missing_layout('ferplus', manual_dir, 'FER2013Train/label.csv',
                              FERPLUS_LAYOUT)
  d = os.path.join(root, FERPLUS_DIRS[split])
  path = base.require(os.path.join(d, 'label.csv'), 'ferplus', manual_dir,
                      FERPLUS_LAYOUT)
  with open(path, newline='') as f:
    reader = csv.reader(f)
    for row in reader:
      where = f'{path}:{reader.line_num}'
      if not row or not any(c.strip() for c in row):
        continue
      boxed = len(row) > 1 and row[1].strip().startswith('(')
      if len(row) != 11 + boxed:
        col.bad(where, f'expected {11 + boxed} fields (name, '
                f'{"a face box, " if boxed else ""}10 vote counts), got {len(row)}')
        continue
      if boxed and not _is_box(row[1]):
        col.bad(where, f'second field {row[1]!r} is not a face box "(x, y, w, h)"')
        continue
      name = row[0].strip()
      if not name:
        col.drop('NF')  # as in fer2013new.csv, an empty name is a non-face
        continue
      try:
        counts = [int(c) for c in row[-10:]]
      except ValueError:
        col.bad(where, f'vote counts are not integers: {row[-10:]}')
        continue
      if min(counts) < 0:
        col.bad(where, f'negative vote count: {counts}')
        continue
      label, reason = ferplus_label(counts, contempt)
      if label is None:
        col.drop(reason)
        continue
      image = os.path.join(d, name)
      if not os.path.isfile(image):
        col.bad(where, f'image {image} not found')
        continue
      col.add(where=where, image=image, expression=label)


def ferplus(split: str, manual_dir: str, image_size=None, channels: int = 1,
            contempt: bool = False, layout: str = 'auto', skip_bad: bool = False):
  """FER+ source: FER-2013 pixels with FER+ majority labels (see module doc).

  layout: 'csv' (fer2013.csv + fer2013new.csv), 'folders' (FER2013Train/...
  with label.csv) or 'auto' (csv when fer2013new.csv exists, else folders).
  """
  base.check_split(split)
  if layout == 'auto':
    layout = ('csv' if os.path.isfile(os.path.join(manual_dir, 'fer2013new.csv'))
              or _ferplus_root(manual_dir) is None else 'folders')
  names = labels.EXPRESSIONS_WITH_CONTEMPT if contempt else labels.EXPRESSIONS
  if layout == 'folders':
    col = base.Collector(skip_bad)
    _ferplus_folder_entries(manual_dir, split, contempt, col)
    if skip_bad:
      base.check_images(col, channels)
    return base.AdapterSource('ferplus', split, col, domain='wild',
                              image_size=image_size, channels=channels,
                              groups=('expression',), expression_names=names)
  if layout != 'csv':
    raise ValueError(f'Unknown ferplus layout {layout!r}; valid: auto, csv, folders')
  old = base.require(os.path.join(manual_dir, 'fer2013.csv'), 'ferplus', manual_dir,
                     FERPLUS_LAYOUT)
  new = base.require(os.path.join(manual_dir, 'fer2013new.csv'), 'ferplus',
                     manual_dir, FERPLUS_LAYOUT)
  col = base.Collector(skip_bad)
  with open(new, newline='') as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    if header[:2] != ['Usage', 'Image name'] or len(header) != 12:
      raise shared.AdapterError(f'{new}:1: expected header Usage,Image name + 10 vote '
                              f'columns, got {header}')
    votes = [(reader.line_num, row) for row in reader]
  old_rows = list(read_fer_csv(old))
  if len(old_rows) != len(votes):
    raise shared.AdapterError(f'{new}: {len(votes)} rows but {old} has '
                            f'{len(old_rows)}; the files are joined by row')
  for (line, row), (old_line, orow, _) in zip(votes, old_rows):
    where = f'{new}:{line}'
    if len(row) != 12:
      col.bad(where, f'expected 12 fields, got {len(row)}')
      continue
    usage = row[0].strip()
    if usage not in USAGE:
      col.bad(where, f'unknown Usage {usage!r}')
      continue
    if usage != orow.get('Usage'):
      col.bad(where, f'Usage {usage!r} differs from {old}:{old_line} '
              f'({orow.get("Usage")!r}); the files are joined by row')
      continue
    if USAGE[usage] != split:
      continue
    if not row[1].strip():
      col.drop('NF')  # an empty Image name marks a non-face
      continue
    try:
      counts = [int(c) for c in row[2:]]
    except ValueError:
      col.bad(where, f'vote counts are not integers: {row[2:]}')
      continue
    if min(counts) < 0:
      col.bad(where, f'negative vote count: {counts}')
      continue
    label, reason = ferplus_label(counts, contempt)
    if label is None:
      col.drop(reason)
      continue
    try:
      pixels = _pixels(orow['pixels'], f'{old}:{old_line}')
    except ValueError as e:
      col.bad(f'{old}:{old_line}', str(e).split(': ', 1)[-1])
      continue
    col.add(where=where, image=pixels, expression=label)
  return base.AdapterSource('ferplus', split, col, domain='wild',
                            image_size=image_size, channels=channels,
                            groups=('expression',), expression_names=names)
