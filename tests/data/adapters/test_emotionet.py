"""EmotioNet from its three public annotation layouts (xlsx, challenge txt, csv)."""
import csv
import os

import cv2
import numpy as np
import pytest

from fer_jax.data import labels
from fer_jax.data.adapters import base, shared
from fer_jax.data.sources import DATASETS
from tests.data.adapters import helpers

URL = 'https://s3.us-east-2.amazonaws.com/emotionet/Images/{}'
XLSX_AUS = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)
# image, AU values in XLSX_AUS order (999 = not coded)
XLSX_ROWS = [
    ('d1/a.jpg', [1, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1]),
    ('d1/b.jpg', [0, 1, 999, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
    ('d2/c.jpg', [999] * 12),  # nothing coded: dropped
    ('d2/d.jpg', [0] * 12),
]


def _image(d, rel, value=90):
  p = d / 'images' / rel
  p.parent.mkdir(parents=True, exist_ok=True)
  cv2.imwrite(str(p), np.full((30, 40, 3), value, np.uint8))


def write_xlsx_layout(d, rows=XLSX_ROWS):
  header = ['URL'] + [f"'AU {a}'" for a in XLSX_AUS]
  table = [header] + [[URL.format(rel) + "'"] + vals for rel, vals in rows]
  helpers.write_xlsx(d / 'emotionet_facs_24600.xlsx', table)
  for k, (rel, _) in enumerate(rows):
    _image(d, rel, 30 * k)


def test_xlsx_values_masks_and_notes(tmp_path):
  write_xlsx_layout(tmp_path)
  src = DATASETS.get('emotionet')('all', manual_dir=str(tmp_path))
  assert len(src) == 3 and src.dropped == {'no_aus': 1}
  assert src.labels == ('aus',)
  assert any('[43]' in n and 'dropped' in n for n in src.notes)
  assert any('[7, 15, 23]' in n for n in src.notes)
  a, b = src[0], src[1]
  helpers.check_record(a)
  assert int(a['image'][0, 0, 0]) == 0 and int(b['image'][0, 0, 0]) == 30
  assert helpers.au(a, 1) == (1.0, labels.AU_MISSING)  # occurrence only
  assert helpers.au(a, 2)[0] == 0.0 and helpers.au(a, 12)[0] == 1.0
  assert helpers.au(b, 4)[0] == labels.AU_MISSING  # 999: not coded, not negative
  for au in (7, 15, 23):
    assert helpers.au(a, au)[0] == labels.AU_MISSING
  assert labels.au_known(a['aus']).sum() == 11
  helpers.through_pipeline(src)
  split = [[int(r['image'][0, 0, 0]) for r in DATASETS.get('emotionet')(
      s, manual_dir=str(tmp_path), fractions=(1, 1, 1))] for s in base.SPLITS]
  assert sorted(v for s in split for v in s) == [0, 30, 90]  # each image once


def test_missing_image_and_layout(tmp_path):
  write_xlsx_layout(tmp_path)
  os.remove(tmp_path / 'images' / 'd1' / 'b.jpg')
  with pytest.raises(shared.AdapterError, match=r"xlsx:3: image of .*d1/b.jpg.* not "
                     'found.*skip_bad'):
    DATASETS.get('emotionet')('all', manual_dir=str(tmp_path))
  src = DATASETS.get('emotionet')('all', manual_dir=str(tmp_path), skip_bad=True)
  assert len(src) == 2 and len(src.skipped) == 1
  with pytest.raises(shared.LayoutError, match='emotionet_facs_24600.xlsx'):
    DATASETS.get('emotionet')('all', manual_dir=str(tmp_path / 'none'))


def test_challenge_txt_and_emoca_csv(tmp_path):
  txt = tmp_path / 'emotioNet_challenge_files'
  txt.mkdir()
  lines = [[URL.format('d1/a.jpg'), 'x'] + ['1', '0'] * 5 + ['1'],
           [URL.format('d1/b.jpg'), 'x', '1', '0']]
  (txt / 'part1.txt').write_text('\n'.join('\t'.join(l) for l in lines) + '\n')
  _image(tmp_path, 'd1/a.jpg')
  _image(tmp_path, 'd1/b.jpg')
  with pytest.raises(shared.AdapterError, match=r'part1.txt:2: expected 13 '
                     r'tab-separated fields .* found 4; pass txt_aus='):
    DATASETS.get('emotionet')('all', manual_dir=str(tmp_path))
  src = DATASETS.get('emotionet')('all', manual_dir=str(tmp_path), skip_bad=True)
  assert len(src) == 1 and helpers.au(src[0], 26)[0] == 1.0
  assert helpers.au(src[0], 2)[0] == 0.0
  two = DATASETS.get('emotionet')('all', manual_dir=str(tmp_path), txt_aus=(1, 2),
                                  skip_bad=True)
  assert len(two) == 1 and helpers.au(two[0], 4)[0] == labels.AU_MISSING  # line 2

  emoca = tmp_path / 'emoca'
  emoca.mkdir()
  with open(emoca / 'image_list_train.csv', 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['path', 'AU1', 'AU2', 'AU60'])
    w.writerow(['d1/a.jpg', 1, 999, 1])
  _image(emoca, 'd1/a.jpg')
  r = DATASETS.get('emotionet')('all', manual_dir=str(emoca))[0]
  assert helpers.au(r, 1)[0] == 1.0 and helpers.au(r, 2)[0] == labels.AU_MISSING
