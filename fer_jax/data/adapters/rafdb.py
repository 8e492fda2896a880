"""RAF-DB basic: EmoLabel/list_patition_label.txt ('name label', labels 1-7).

Layout: <manual_dir>/basic/ (or manual_dir itself = basic/) holding
EmoLabel/list_patition_label.txt (the misspelling is the dataset's) and
Image/aligned/<stem>_aligned.jpg (aligned=True, 100x100) or
Image/original/<name>. Split by name prefix: train_* -> train, test_* -> test;
there is no validation split (an empty source). Labels 1-7 = surprise, fear,
disgust, happiness, sadness, anger, neutral (`label_maps.RAFDB`).
"""
import os

from fer_jax.data.adapters import base, label_maps

LAYOUT = ('  <manual_dir>/basic/EmoLabel/list_patition_label.txt  ("train_00001.jpg 5")\n'
          '  <manual_dir>/basic/Image/aligned/train_00001_aligned.jpg (or original/)')
PREFIX = {'train': 'train_', 'test': 'test_'}


def rafdb(split: str, manual_dir: str, aligned: bool = True, image_size=None,
          channels: int = 3, skip_bad: bool = False):
  base.check_split(split)
  root = os.path.join(manual_dir, 'basic')
  root = root if os.path.isdir(root) else manual_dir
  path = base.require(os.path.join(root, 'EmoLabel', 'list_patition_label.txt'),
                      'rafdb', manual_dir, LAYOUT)
  col = base.Collector(skip_bad)
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
    col.add(where=where, image=image, expression=label_maps.RAFDB[code])
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource('rafdb', split, col, domain='wild',
                            image_size=image_size, channels=channels)
