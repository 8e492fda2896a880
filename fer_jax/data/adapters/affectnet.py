"""AffectNet: the original manual csv release and the per-image npy release.

layout='csv' (original): Manually_Annotated_file_lists/{training,validation}.csv
  with header subDirectory_filePath,face_x,face_y,face_width,face_height,
  facial_landmarks,expression,valence,arousal; images under
  Manually_Annotated_Images/<subDirectory_filePath>. The face box is cropped
  (crop_face) and stretched to image_size; landmarks ('x1;y1;...', 136 values)
  follow the crop. Split train <- training.csv, validation <- validation.csv;
  there is no test split (an empty source).
layout='npy' (8-class release): {train_set,val_set}/images/<id>.jpg with
  annotations/<id>_{exp,val,aro,lnd}.npy (0-d string arrays; lnd 136 floats).

expression 0-10 (0-6 = canonical order, 7 contempt, 8 none, 9 uncertain,
10 no-face); valence/arousal in [-1, 1], -2 = not annotated.
subset: 'basic7' (expressions 0-6), 'basic8' (0-7, contempt -> 7; the source
declares `expression_names` = labels.EXPRESSIONS_WITH_CONTEMPT, so a task on it
needs 8 expression outputs), 'va' (every row with valid VA; its expression kept
when 0-6, else missing).
Rows outside the subset are counted in `source.dropped` by class name.
"""
import csv
import glob
import os

import numpy as np

from fer_jax.data import labels
from fer_jax.data.adapters import base, label_maps, shared

CSV_LAYOUT = ('  <manual_dir>/Manually_Annotated_file_lists/training.csv, '
              'validation.csv\n'
              '  <manual_dir>/Manually_Annotated_Images/<subdir>/<hash>.jpg')
NPY_LAYOUT = ('  <manual_dir>/train_set/{images/<id>.jpg, annotations/<id>_exp.npy, '
              '_val.npy, _aro.npy, _lnd.npy}\n  <manual_dir>/val_set/... (same)')
CSV_FILES = {'train': 'training.csv', 'validation': 'validation.csv'}
NPY_DIRS = {'train': 'train_set', 'validation': 'val_set'}
HEADER = ['subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height',
          'facial_landmarks', 'expression', 'valence', 'arousal']
SUBSETS = ('basic7', 'basic8', 'va')


def _labels(code, v, a, subset, where):
  """(expression, has_va, drop reason) under `subset`; ValueError if invalid."""
  if not 0 <= code <= 10:
    raise ValueError(f'{where}: expression {code} outside 0-10')
  has_va = v != -2 and a != -2
  if has_va and not (-1 <= v <= 1 and -1 <= a <= 1):
    raise ValueError(f'{where}: valence/arousal ({v}, {a}) outside [-1, 1] and not -2')
  label = label_maps.AFFECTNET[code]
  if subset == 'va':
    if not has_va:
      return None, False, 'no_va'
    return (label if label is not None and label < base.CONTEMPT else -1), True, None
  if label is None or (label == base.CONTEMPT and subset == 'basic7'):
    return None, False, label_maps.AFFECTNET_NAMES[code]
  return label, has_va, None


def _csv_entries(manual_dir, split, subset, col):
  lists = os.path.join(manual_dir, 'Manually_Annotated_file_lists')
  path = base.require(os.path.join(lists, CSV_FILES[split]), 'affectnet', manual_dir,
                      CSV_LAYOUT)
  roots = [os.path.join(manual_dir, d) for d in (
      'Manually_Annotated_Images', 'Manually_Annotated/Manually_Annotated_Images')]
  root = next((r for r in roots if os.path.isdir(r)), None)
  if root is None:
    raise base.missing_layout('affectnet', manual_dir, 'Manually_Annotated_Images/',
                              CSV_LAYOUT)
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    if header != HEADER:
      raise shared.AdapterError(f'{path}:1: expected header {",".join(HEADER)}, got '
                              f'{",".join(header)}')
    for row in reader:
      where = f'{path}:{reader.line_num}'
      if len(row) != len(HEADER):
        col.bad(where, f'expected {len(HEADER)} fields, got {len(row)}')
        continue
      try:
        x, y, w, h = (int(float(c)) for c in row[1:5])
        code = int(row[6])
        v, a = float(row[7]), float(row[8])
        expression, has_va, reason = _labels(code, v, a, subset, where)
        if reason:
          col.drop(reason)
          continue
        if w <= 0 or h <= 0:
          raise ValueError(f'{where}: empty face box {w}x{h}')
        lm = row[5].strip()
        lm = (base.parse_landmarks([float(s) for s in lm.split(';') if s.strip()],
                                   where) if lm else None)
      except ValueError as e:
        col.bad(where, str(e).split(': ', 1)[-1])
        continue
      image = os.path.join(root, row[0].strip())
      if not os.path.isfile(image):
        col.bad(where, f'image {image} not found')
        continue
      col.add(where=where, image=image, expression=expression, valence=v,
              arousal=a, has_va=has_va, landmarks=lm, box=(x, y, x + w, y + h))


def _npy_scalar(path):
  return str(np.load(path, allow_pickle=False))


def _npy_entries(manual_dir, split, subset, col):
  d = os.path.join(manual_dir, NPY_DIRS[split])
  ann = base.require(os.path.join(d, 'annotations'), 'affectnet', manual_dir,
                     NPY_LAYOUT)
  images = base.require(os.path.join(d, 'images'), 'affectnet', manual_dir,
                        NPY_LAYOUT)
  ids = [os.path.basename(p)[:-len('_exp.npy')]
         for p in glob.glob(os.path.join(ann, '*_exp.npy'))]
  # Ids are integers without zero padding: sort numerically when they are.
  ids.sort(key=lambda s: (0, int(s), '') if s.isdigit() else (1, 0, s))
  for i in ids:
    where = os.path.join(ann, f'{i}_exp.npy')
    try:
      code = int(float(_npy_scalar(where)))
      v = float(_npy_scalar(os.path.join(ann, f'{i}_val.npy')))
      a = float(_npy_scalar(os.path.join(ann, f'{i}_aro.npy')))
      expression, has_va, reason = _labels(code, v, a, subset, where)
      if reason:
        col.drop(reason)
        continue
      lnd = os.path.join(ann, f'{i}_lnd.npy')
      lm = (base.parse_landmarks(np.load(lnd, allow_pickle=False).astype(np.float64),
                                 lnd) if os.path.exists(lnd) else None)
    except (ValueError, OSError) as e:
      col.bad(where, str(e))
      continue
    image = os.path.join(images, f'{i}.jpg')
    if not os.path.isfile(image):
      col.bad(where, f'image {image} not found')
      continue
    col.add(where=where, image=image, expression=expression, valence=v, arousal=a,
            has_va=has_va, landmarks=lm)


def affectnet(split: str, manual_dir: str, layout: str = 'auto',
              subset: str = 'basic7', image_size=224, channels: int = 3,
              skip_bad: bool = False):
  """AffectNet source (see module doc). layout: 'auto', 'csv' or 'npy'."""
  base.check_split(split)
  if subset not in SUBSETS:
    raise ValueError(f'Unknown affectnet subset {subset!r}; valid: {SUBSETS}')
  if layout == 'auto':
    layout = ('npy' if any(os.path.isdir(os.path.join(manual_dir, d))
                           for d in NPY_DIRS.values()) else 'csv')
  col = base.Collector(skip_bad)
  if split != 'test':  # no public test set
    if layout == 'csv':
      _csv_entries(manual_dir, split, subset, col)
    elif layout == 'npy':
      _npy_entries(manual_dir, split, subset, col)
    else:
      raise ValueError(f'Unknown affectnet layout {layout!r}; valid: auto, csv, npy')
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource(
      'affectnet', split, col, domain='wild', image_size=image_size,
      channels=channels, groups=('va', 'expression'),
      expression_names=(labels.EXPRESSIONS_WITH_CONTEMPT if subset == 'basic8'
                        else labels.EXPRESSIONS))
