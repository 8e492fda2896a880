"""RAF-DB basic: EmoLabel/list_patition_label.txt ('name label', labels 1-7).

Layout: <manual_dir>/basic/ (or manual_dir itself = basic/) holding
EmoLabel/list_patition_label.txt (the misspelling is the dataset's) and
Image/aligned/<stem>_aligned.jpg (aligned=True, 100x100) or
Image/original/<name>. Split by name prefix: train_* -> train, test_* -> test;
there is no validation split (an empty source). Labels 1-7 = surprise, fear,
disgust, happiness, sadness, anger, neutral (`label_maps.RAFDB`).

Eyes (original images only): Annotation/manual/<stem>_manu_attri.txt holds the
dataset's 5 manual landmarks in the ORIGINAL image's pixels, one 'x y' per
line (tab or space separated): the two eye centres, the nose tip and the two
mouth corners, then one integer line each for gender (0 male, 1 female,
2 unsure), race (0 Caucasian, 1 African-American, 2 Asian) and age group
(0: 0-3, 1: 4-19, 2: 20-39, 3: 40-69, 4: 70+). With aligned=False a record's
`eyes` are the first two points, in file order (line 1 = eyes[0], the eye on
the image's left, as public loaders read it and `crops.align_by_eyes` wants),
moved with the pixels when image_size resizes the image; the 68 `landmarks`
stay NaN (5 points are not the iBUG 68). An image without a manual file gets
NaN eyes (the pipeline's crop='eyes' then asks the face detector,
`face.points.detected_eyes`); how many is in `source.notes`. With aligned=True
(the default) eyes are always NaN: the aligned 100x100 crops were warped by a
transform the dataset does not ship, so the original-image points do not
apply to them. Gender, race and age are kept in `source.entries` (records
have no field for them). A manual file that is not 5 finite 'x y' lines (the
two eyes distinct) and 3 in-range integer lines is bad input naming the file
and line (skip_bad: the image is skipped and counted). Annotation/auto/
(37 Face++ points, order unverified) and Annotation/boundingbox/ are not read.
"""
import os

import numpy as np

from fer_jax.data import crops
from fer_jax.data.adapters import base, label_maps

LAYOUT = ('  <manual_dir>/basic/EmoLabel/list_patition_label.txt  ("train_00001.jpg 5")\n'
          '  <manual_dir>/basic/Image/aligned/train_00001_aligned.jpg (or original/)\n'
          '  <manual_dir>/basic/Annotation/manual/train_00001_manu_attri.txt '
          '(optional; eyes of original/ images)')
PREFIX = {'train': 'train_', 'test': 'test_'}
POINTS = ('left eye', 'right eye', 'nose tip', 'left mouth corner',
          'right mouth corner')
# Attribute lines after the 5 points: name -> number of classes.
ATTRIBUTES = (('gender', 3), ('race', 3), ('age', 5))


def manual_path(root: str, name: str) -> str:
  return os.path.join(root, 'Annotation', 'manual',
                      f'{name.rsplit(".", 1)[0]}_manu_attri.txt')


def read_manual(path: str):
  """(points (5, 2) float32, {gender, race, age: int}) of a manu_attri file;
  ValueError 'file:line: reason' when it is not the documented format."""
  with open(path) as f:
    lines = [(n, t.strip()) for n, t in enumerate(f.read().splitlines(), 1)]
  lines = [(n, t) for n, t in lines if t]
  want = len(POINTS) + len(ATTRIBUTES)
  if len(lines) != want:
    n = lines[want][0] if len(lines) > want else (lines[-1][0] if lines else 1)
    raise ValueError(f'{path}:{n}: expected {want} non-empty lines (5 "x y" '
                     f'landmarks, then gender, race, age), found {len(lines)}')
  points = []
  for (n, text), what in zip(lines, POINTS):
    parts = text.split()
    try:
      xy = [float(p) for p in parts]
    except ValueError:
      xy = []
    if len(xy) != 2 or not np.all(np.isfinite(xy)):
      raise ValueError(f'{path}:{n}: expected the {what} as "x y" (two finite '
                       f'numbers), got {text!r}')
    points.append(xy)
  attrs = {}
  for (n, text), (what, classes) in zip(lines[len(POINTS):], ATTRIBUTES):
    if not text.isdigit() or int(text) >= classes:
      raise ValueError(f'{path}:{n}: expected {what} as an integer 0-{classes - 1}'
                       f', got {text!r}')
    attrs[what] = int(text)
  points = np.asarray(points, np.float32)
  if np.array_equal(points[0], points[1]):
    raise ValueError(f'{path}:{lines[1][0]}: the two eye centres coincide '
                     f'({points[0, 0]:g}, {points[0, 1]:g})')
  return points, attrs


class RafdbSource(base.AdapterSource):
  """`AdapterSource` whose records take `eyes` from the entry's 'eyes' (the
  manual points of an original image), moved with the pixels like landmarks."""

  def _image(self, entry):
    image = super()._image(entry)
    if entry.get('eyes') is not None:
      # The original size, for moving the eyes in __getitem__; the same value
      # on every read, so concurrent reads of one entry cannot disagree.
      entry['image_hw'] = image.shape[:2]
    return image

  def __getitem__(self, index):
    record = super().__getitem__(index)
    e = self.entries[int(index)]
    if e.get('eyes') is not None:
      eyes = np.asarray(e['eyes'], np.float32)
      if self.image_size is not None:  # as the base crops: whole image -> square
        h, w = e['image_hw']
        eyes = crops.transform_points(
            eyes, crops.box_matrix((0, 0, w, h), self.image_size))
      record['eyes'] = eyes.astype(np.float32)
    return record


def rafdb(split: str, manual_dir: str, aligned: bool = True, image_size=None,
          channels: int = 3, skip_bad: bool = False):
  base.check_split(split)
  root = os.path.join(manual_dir, 'basic')
  root = root if os.path.isdir(root) else manual_dir
  path = base.require(os.path.join(root, 'EmoLabel', 'list_patition_label.txt'),
                      'rafdb', manual_dir, LAYOUT)
  col = base.Collector(skip_bad)
  without_eyes = 0
  with open(path) as f:
    lines = f.read().splitlines()
  for n, text in enumerate(lines, 1):
    where = f'{path}:{n}'
    if not text.strip():
      continue
    parts = text.split()
    if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
      col.bad(where, f'expected "<name> <label>", got {text!r}')
      continue
    name, code = parts[0], int(parts[1])
    if code not in label_maps.RAFDB:
      col.bad(where, f'label {code} outside 1-7')
      continue
    if not any(name.startswith(p) for p in PREFIX.values()):
      col.bad(where, f'name {name!r} starts with neither train_ nor test_')
      continue
    if split not in PREFIX or not name.startswith(PREFIX[split]):
      continue
    stem = name.rsplit('.', 1)[0]
    image = (os.path.join(root, 'Image', 'aligned', f'{stem}_aligned.jpg') if aligned
             else os.path.join(root, 'Image', 'original', name))
    if not os.path.isfile(image):
      col.bad(where, f'image {image} not found')
      continue
    extra = {}
    if not aligned:
      manual = manual_path(root, name)
      if os.path.isfile(manual):
        try:
          points, attrs = read_manual(manual)
        except ValueError as e:  # 'file:line: reason'
          col.bad(*str(e).split(': ', 1))
          continue
        extra = dict(eyes=points[:2], points5=points, **attrs)
      else:
        without_eyes += 1
    col.add(where=where, image=image, expression=label_maps.RAFDB[code], **extra)
  if without_eyes:
    col.note(f'{without_eyes} original images have no Annotation/manual/'
             '<stem>_manu_attri.txt; their eyes are NaN (crop=\'eyes\' falls back '
             'to the face detector)')
  if skip_bad:
    base.check_images(col, channels)
  return RafdbSource('rafdb', split, col, domain='wild',
                     image_size=image_size, channels=channels)
