"""FER-2013 and FER+ from files written in their distributed formats."""
import csv
import os

import cv2
import numpy as np
import pytest

from fer_jax.data.adapters import shared
from fer_jax.data.adapters.fer2013 import fer2013, ferplus
from tests.data.adapters import helpers

# (emotion code, Usage), in the csv's order: Training, PublicTest, PrivateTest.
ROWS = [(k, 'Training') for k in range(7)] + [(3, 'PublicTest'), (6, 'PrivateTest')]
# ../shared/DATASETS.md section 1: 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad
# 5=Surprise 6=Neutral, in the canonical names.
FER2013_CODES = ('anger', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')


def row_pixels(row):
  """48x48 row-major gray values of the csv row `row` (0 = first data row):
  (30 * row + 5 + x + 2 * y) % 256 at column x, line y; each row its own."""
  y, x = np.divmod(np.arange(48 * 48), 48)
  return (30 * row + 5 + x + 2 * y) % 256


def write_fer_csv(d, rows=ROWS, extra=()):
  path = os.path.join(d, 'fer2013.csv')
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['emotion', 'pixels', 'Usage'])
    for i, (code, usage) in enumerate(rows):
      w.writerow([code, ' '.join(map(str, row_pixels(i))), usage])
    for row in extra:
      w.writerow(row)
  return path


def test_csv_labels_map_to_canonical_names(tmp_path):
  write_fer_csv(tmp_path)
  train = fer2013('train', str(tmp_path))
  assert len(train) == 7
  assert [helpers.name_of(r) for r in train] == list(FER2013_CODES)
  assert [int(r['expression']) for r in train] == [6, 5, 4, 1, 2, 3, 0]
  for i, r in enumerate(train):
    helpers.check_record(r)
    assert r['image'].shape == (48, 48, 1)
    # row i's pixels, row-major: (x, y) = (0, 0), (5, 0), (0, 1), (47, 47)
    assert [int(r['image'][y, x, 0]) for y, x in ((0, 0), (0, 5), (1, 0), (47, 47))] \
        == [30 * i + 5, 30 * i + 10, 30 * i + 7, (30 * i + 146) % 256]
  assert np.isnan(train[0]['landmarks']).all() and not train[0]['has_va']
  assert [helpers.name_of(fer2013(s, str(tmp_path))[0])
          for s in ('validation', 'test')] == ['happy', 'neutral']
  assert fer2013('test', str(tmp_path))[0]['image'][0, 0, 0] == 30 * 8 + 5


def test_csv_first_real_row(tmp_path):
  """The first row of the real file (DATASETS.md: `0,70 80 82 ...,Training`),
  its known 15 values followed by made-up ones."""
  head = [70, 80, 82, 72, 58, 58, 60, 63, 54, 58, 60, 48, 89, 115, 121]
  pixels = head + [j % 251 for j in range(15, 2304)]
  with open(tmp_path / 'fer2013.csv', 'w') as f:
    f.write('emotion,pixels,Usage\n0,' + ' '.join(map(str, pixels))
            + ',Training\n')
  r = fer2013('train', str(tmp_path))[0]
  assert helpers.name_of(r) == 'anger'
  assert list(r['image'][0, :15, 0]) == head
  assert r['image'][1, 0, 0] == 48 and r['image'][47, 47, 0] == 2303 % 251


@pytest.mark.parametrize('row,reason', [
    (['9', ' '.join(['1'] * 2304), 'Training'], 'emotion 9 outside 0-6'),
    (['1', ' '.join(['1'] * 100), 'Training'], '2304 pixel values'),
    (['1', ' '.join(['1'] * 2304), 'Train'], "unknown Usage 'Train'"),
    (['x', ' '.join(['1'] * 2304), 'Training'], 'is not an integer'),
])
def test_csv_bad_rows_are_named_or_skipped(tmp_path, row, reason):
  path = write_fer_csv(tmp_path, ROWS[:2], extra=[row])
  with pytest.raises(shared.AdapterError, match=f'fer2013.csv:4: .*{reason}'):
    fer2013('train', str(tmp_path))
  src = fer2013('train', str(tmp_path), skip_bad=True)
  assert len(src) == 2 and len(src.skipped) == 1
  assert src.skipped[0].startswith(f'{path}:4')


def test_missing_csv_says_what_layout_is_expected(tmp_path):
  with pytest.raises(shared.LayoutError, match='fer2013.csv'):
    fer2013('train', str(tmp_path))


def test_folder_variant(tmp_path):
  for split, cls, v in [('train', 'angry', 10), ('train', 'happy', 20),
                        ('test', 'surprise', 30)]:
    os.makedirs(tmp_path / split / cls, exist_ok=True)
    cv2.imwrite(str(tmp_path / split / cls / 'im0.png'), np.full((48, 48), v, np.uint8))
  train = fer2013('train', str(tmp_path))
  assert [helpers.name_of(r) for r in train] == ['anger', 'happy']
  assert train[1]['image'][0, 0, 0] == 20
  assert [helpers.name_of(r) for r in fer2013('test', str(tmp_path))] == ['surprise']
  os.makedirs(tmp_path / 'train' / 'bored')
  with pytest.raises(shared.AdapterError, match='bored'):
    fer2013('train', str(tmp_path))


def test_fer2013_through_tfds_and_pipeline(tmp_path):
  write_fer_csv(tmp_path)
  kwargs = {'manual_dir': str(tmp_path)}
  builder = helpers.through_tfds('fer2013', kwargs, tmp_path,
                                 ('train', 'validation', 'test'))
  assert builder.info.splits['train'].num_examples == 7
  batch = helpers.through_pipeline(fer2013('train', **kwargs), channels=1)
  np.testing.assert_array_equal(batch['expression'], [6, 5, 4, 1])


# FER+ votes: neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF
VOTES = [
    # the real first line (DATASETS.md): single votes out, neutral has 4 of 9
    ('fer0000000.png', [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]),   # no majority
    ('fer0000001.png', [0, 0, 0, 1, 9, 0, 0, 0, 0, 0]),   # anger
    ('', [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]),                # blank name: non-face
    ('fer0000002.png', [2, 5, 1, 1, 1, 0, 0, 0, 0, 0]),   # happy (single votes out)
    ('fer0000003.png', [0, 0, 0, 0, 0, 0, 0, 8, 2, 0]),   # contempt
    ('fer0000004.png', [2, 0, 0, 0, 0, 0, 0, 0, 8, 0]),   # unknown
    ('fer0000005.png', [0, 0, 0, 0, 0, 0, 10, 0, 0, 0]),  # fear
]


def write_ferplus(d, votes=VOTES):
  # FER-2013's own labels (all 'happy') must not leak into FER+'s
  write_fer_csv(d, [(3, 'Training')] * len(votes))
  with open(os.path.join(d, 'fer2013new.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['Usage', 'Image name', 'neutral', 'happiness', 'surprise', 'sadness',
                'anger', 'disgust', 'fear', 'contempt', 'unknown', 'NF'])
    for name, v in votes:
      w.writerow(['Training', name, *v])


def test_ferplus_majority_and_drops(tmp_path):
  write_ferplus(tmp_path)
  src = ferplus('train', str(tmp_path))
  assert [helpers.name_of(r) for r in src] == ['anger', 'happy', 'fear']
  assert src.dropped == {'NF': 1, 'contempt': 1, 'no_majority': 1, 'unknown': 1}
  # joined by row: the kept rows are 1, 3 and 6 of fer2013.csv
  assert [int(r['image'][0, 0, 0]) for r in src] == [35, 95, 185]
  assert [int(r['image'][1, 2, 0]) for r in src] == [39, 99, 189]
  plus = ferplus('train', str(tmp_path), contempt=True)
  assert [int(r['expression']) for r in plus] == [6, 1, 7, 4]
  assert [int(r['image'][0, 0, 0]) for r in plus] == [35, 95, 125, 185]
  helpers.through_pipeline(src, channels=1)


def test_ferplus_bad_votes_and_missing_file(tmp_path):
  write_ferplus(tmp_path, VOTES[:2] + [('fer0000009.png', ['a'] * 10)])
  with pytest.raises(shared.AdapterError, match='fer2013new.csv:4: vote counts'):
    ferplus('train', str(tmp_path))
  assert len(ferplus('train', str(tmp_path), skip_bad=True).skipped) == 1
  os.remove(tmp_path / 'fer2013new.csv')
  with pytest.raises(shared.LayoutError, match='fer2013new.csv'):
    ferplus('train', str(tmp_path))


def write_ferplus_folders(d, votes=VOTES, box=True):
  for split, folder in (('train', 'FER2013Train'), ('test', 'FER2013Test')):
    (d / 'data' / folder).mkdir(parents=True)
    with open(d / 'data' / folder / 'label.csv', 'w', newline='') as f:
      w = csv.writer(f)
      for k, (name, v) in enumerate(votes if split == 'train' else votes[1:2]):
        w.writerow([name] + (['(0, 0, 48, 48)'] if box else []) + v)
        if name:
          cv2.imwrite(str(d / 'data' / folder / name), np.full((48, 48), 10 * k,
                                                              np.uint8))


@pytest.mark.parametrize('box', [True, False])
def test_ferplus_folders(tmp_path, box):
  write_ferplus_folders(tmp_path, box=box)
  src = ferplus('train', str(tmp_path))
  assert [helpers.name_of(r) for r in src] == ['anger', 'happy', 'fear']
  assert src.dropped == {'NF': 1, 'contempt': 1, 'no_majority': 1, 'unknown': 1}
  assert [int(r['image'][0, 0, 0]) for r in src] == [10, 30, 60]
  assert [helpers.name_of(r) for r in ferplus('test', str(tmp_path))] == ['anger']
  plus = ferplus('train', str(tmp_path), contempt=True)
  assert [int(r['expression']) for r in plus] == [6, 1, 7, 4]
  assert plus.expression_names[7] == 'contempt'
  helpers.through_pipeline(plus, channels=1)
  with pytest.raises(shared.LayoutError, match='FER2013Valid/label.csv'):
    ferplus('validation', str(tmp_path))


def test_ferplus_folders_bad_row(tmp_path):
  write_ferplus_folders(tmp_path, VOTES[:1] + [('fer0000009.png', [1] * 9)])
  with pytest.raises(shared.AdapterError, match=r'FER2013Train/label.csv:2: expected '
                     r'12 fields \(name, a face box, 10 vote counts\), got 11'):
    ferplus('train', str(tmp_path))
