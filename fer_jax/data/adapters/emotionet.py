"""EmotioNet: AU occurrence per image (the least verified layout; see below).

EmotioNet ships image URLs, not images: the user downloads the images under
`images_dir` (default <manual_dir>/images, <manual_dir>/Images or manual_dir),
keeping the URL's path after '/Images/' (e.g. <images_dir>/<dir>/<file>.jpg),
or its last folder and name, or the bare file name: all three are tried.
Three annotation layouts seen in public loaders (none checked against an
official file), chosen with layout= or found by 'auto' in this order:
  'xlsx': emotionet_facs_24600.xlsx (the 24,600 manually coded images; a .csv
    export with the same header also reads): a URL column plus AU columns
    whose header text may carry quotes ("'AU 1'"); URL cells may end in a
    stray quote, which is stripped.
  'txt': emotioNet_challenge_files/*.txt, tab-separated, no header: image
    URL, one field of unknown meaning (ignored), then one value per AU in the
    order `txt_aus` (default TXT_AUS, the 2017 challenge's 11 AUs: an
    assumption; a row with another number of fields is bad input saying how
    many were expected and found). A first row with AU names is read as a
    header instead.
  'csv': image_list*.csv (emoca's EmotioNetDataModule): a `path` column
    (relative to images_dir) and AU1..AU60-style columns.
Values: '1' present, '0' absent; anything else (999, empty, -1, 0.5...) is
not coded for that image: labels.AU_MISSING (masked), never a negative;
au_intensity is AU_MISSING throughout (EmotioNet codes occurrence only). A row
with no coded project AU is dropped (dropped['no_aus']). AUs outside the
project's space (e.g. 43, 10, 18, 24, 28, 51-56) are dropped and noted in
`source.notes`; project AUs EmotioNet does not code (7, 15, 23 for the 12-AU
set) are AU_MISSING. No official split and no identities: images are split
by fractions and seed (split='all' = all), so one person may appear in two
splits. A missing image file is bad input (named with its row); many URLs
are dead, so real copies usually need skip_bad=True (counted in `skipped`).
"""
import glob
import os
import re

from fer_jax.data import labels
from fer_jax.data.adapters import base, shared, tables

XLSX_NAMES = ('emotionet_facs_24600.xlsx', 'emotionet_facs_24600.csv')
TXT_DIR = 'emotioNet_challenge_files'
CSV_GLOB = 'image_list*.csv'
URL_COLUMN = 'URL'
PATH_COLUMN = 'path'
# An AU column header: AU 1, 'AU 1', AU1, au_1 ...
AU_HEADER = re.compile(r"^['\"]?\s*AU[\s_]*(\d+)\s*['\"]?$", re.IGNORECASE)
TXT_AUS = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26)
LAYOUT = ('  <manual_dir>/emotionet_facs_24600.xlsx  (URL, \'AU 1\', ... columns)\n'
          '  or <manual_dir>/emotioNet_challenge_files/*.txt  (URL<TAB>?<TAB>AU '
          'values)\n'
          '  or <manual_dir>/image_list*.csv  (path, AU1, ... columns)\n'
          '  with the downloaded images under <manual_dir>/images/<dir>/<file>.jpg')


def _au_columns(header, where):
  cols = {}
  for i, h in enumerate(header):
    m = AU_HEADER.match(h.strip())
    if m:
      au = int(m.group(1))
      if au in cols:
        raise shared.AdapterError(f'{where}: AU{au} appears in two columns')
      cols[au] = i
  return cols


def _value(text):
  """1.0 / 0.0 for a coded AU, None for anything else (not coded)."""
  t = text.strip().strip("'\"")
  try:
    v = float(t)
  except ValueError:
    return None
  return v if v in (0.0, 1.0) else None


def _image_path(ref, images_dir, manual_dir):
  """(existing path or None, candidates tried) of a URL or relative path."""
  ref = ref.strip().strip("'\"").strip()
  if os.path.isabs(ref):
    return (ref if os.path.isfile(ref) else None), [ref]
  rel = ref.split('://', 1)[-1]
  parts = [p for p in rel.split('/') if p]
  cands = []
  if '/Images/' in f'/{rel}':
    cands.append(rel.split('Images/', 1)[1])
  cands += ['/'.join(parts[-2:]), parts[-1] if parts else ref]
  if '://' not in ref:
    cands.insert(0, ref)
  paths = []
  for c in dict.fromkeys(cands):
    for d in dict.fromkeys((images_dir, manual_dir)):
      p = os.path.join(d, c)
      paths.append(p)
      if os.path.isfile(p):
        return p, paths
  return None, paths


def _rows(layout, manual_dir, txt_aus):
  """Yields (where, image reference, {AU: raw value}) of the chosen layout."""
  if layout == 'xlsx':
    path = next(os.path.join(manual_dir, n) for n in XLSX_NAMES
                if os.path.isfile(os.path.join(manual_dir, n)))
    yield from _header_rows(path, URL_COLUMN)
  elif layout == 'csv':
    for path in sorted(glob.glob(os.path.join(manual_dir, CSV_GLOB))):
      yield from _header_rows(path, PATH_COLUMN)
  else:
    for path in sorted(glob.glob(os.path.join(manual_dir, TXT_DIR, '*.txt'))):
      cols = {au: 2 + k for k, au in enumerate(txt_aus)}
      size, what = 2 + len(cols), (f'URL, one ignored field, {len(cols)} values for '
                                   f'AUs {list(cols)}')
      for i, (where, cells) in enumerate(tables.read_rows(path, '\t')):
        if i == 0 and any(AU_HEADER.match(c) for c in cells):
          cols, size = _au_columns(cells, where), len(cells)
          what = f'as the header {cells}'
          continue
        if len(cells) != size:
          yield where, None, (f'expected {size} tab-separated fields ({what}), found '
                              f'{len(cells)}; pass txt_aus= with the AUs of this '
                              'file in column order')
          continue
        yield where, cells[0], {au: cells[j] for au, j in cols.items()}


def _header_rows(path, ref_column):
  rows = tables.read_rows(path)
  first = next(rows, None)
  if first is None:
    raise shared.AdapterError(f'{path}: empty annotation table')
  where, header = first
  ref = tables.columns(header, where, exact={'ref': ref_column})['ref']
  aus = _au_columns(header, where)
  if not aus:
    raise shared.AdapterError(f"{where}: expected AU columns ('AU 1', AU1, ...); "
                            f'found {header}')
  for where, cells in rows:
    if len(cells) <= ref:
      yield where, None, f'row has {len(cells)} fields, no {ref_column} column'
      continue
    cells = cells + [''] * (len(header) - len(cells))
    yield where, cells[ref], {au: cells[i] for au, i in aus.items()}


def emotionet(split: str, manual_dir: str, layout: str = 'auto', images_dir=None,
              txt_aus=TXT_AUS, image_size=None, channels: int = 3,
              fractions=(0.8, 0.1, 0.1), seed: int = 0, skip_bad: bool = False):
  """EmotioNet images with AU occurrence labels (see module doc)."""
  found = {
      'xlsx': any(os.path.isfile(os.path.join(manual_dir, n)) for n in XLSX_NAMES),
      'txt': bool(glob.glob(os.path.join(manual_dir, TXT_DIR, '*.txt'))),
      'csv': bool(glob.glob(os.path.join(manual_dir, CSV_GLOB))),
  }
  if layout == 'auto':
    layout = next((k for k, v in found.items() if v), None)
    if layout is None:
      raise base.missing_layout('emotionet', manual_dir, f'{XLSX_NAMES[0]}, '
                                f'{TXT_DIR}/*.txt or {CSV_GLOB}', LAYOUT)
  elif layout not in found:
    raise ValueError(f'Unknown emotionet layout {layout!r}; valid: auto, '
                     f'{", ".join(found)}')
  elif not found[layout]:
    raise base.missing_layout('emotionet', manual_dir, {
        'xlsx': XLSX_NAMES[0], 'txt': f'{TXT_DIR}/*.txt', 'csv': CSV_GLOB}[layout],
                              LAYOUT)
  if images_dir is None:
    images_dir = next((os.path.join(manual_dir, d) for d in ('images', 'Images')
                       if os.path.isdir(os.path.join(manual_dir, d))), manual_dir)
  elif not os.path.isabs(images_dir):
    images_dir = os.path.join(manual_dir, images_dir)
  col = base.Collector(skip_bad)
  rows, seen_aus = [], set()
  for where, ref, raw in _rows(layout, manual_dir, txt_aus):
    if ref is None:
      col.bad(where, raw)
      continue
    seen_aus |= set(raw)
    values = {au: v for au, v in ((au, _value(t)) for au, t in raw.items())
              if v is not None and au in labels.AUS}
    if not values:
      col.drop('no_aus')
      continue
    rows.append((where, ref, values))
  for text in base.au_note('EmotioNet', sorted(seen_aus)):
    col.note(text)
  keep = base.subject_split([r for _, r, _ in rows], split, fractions, seed)
  for where, ref, values in rows:
    if ref not in keep:
      continue
    image, tried = _image_path(ref, images_dir, manual_dir)
    if image is None:
      col.bad(where, f'image of {ref!r} not found (looked for {tried[:3]}); '
              'download it, or pass skip_bad=True to count and skip')
      continue
    aus, inten = base.au_vectors(values, {})  # occurrence only: no intensity
    col.add(where=where, image=image, aus=aus, au_intensity=inten)
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource('emotionet', split, col, domain='wild',
                            image_size=image_size, channels=channels,
                            groups=('aus',))
