"""RAF-DB's manual 5-point annotation: eyes of original images, bad files."""
import numpy as np
import pytest

from fer_jax.data import crops
from fer_jax.data.adapters import shared
from fer_jax.data.pipeline import BadRecordError, Preprocess, eval_dataset
from fer_jax.data.sources import DATASETS
from fer_jax.face import points
from tests.data.adapters import helpers

# 5 manual points (left eye, right eye, nose, mouth corners) in a 160x200 image.
POINTS = [(70.5, 60.25), (130.0, 64.0), (100.0, 95.0), (80.0, 125.0), (120.0, 127.0)]
SHAPE = (160, 200, 3)


def manu_attri(points=POINTS, attrs=(1, 2, 2)):
  """A manu_attri.txt as distributed: tab-separated 'x y' lines, then ints."""
  return ''.join(f'{x:.2f}\t{y:.2f}\n' for x, y in points) + ''.join(
      f'{a}\n' for a in attrs)


def write_rafdb(d, lines, manual):
  """Label file, original + aligned images; manual: stem -> file text."""
  basic = d / 'basic'
  (basic / 'EmoLabel').mkdir(parents=True)
  (basic / 'EmoLabel' / 'list_patition_label.txt').write_text('\n'.join(lines) + '\n')
  for line in lines:
    name = line.split()[0]
    stem = name.split('.')[0]
    helpers.write_marked_image(basic / 'Image' / 'original' / name, POINTS[:2], SHAPE,
                               radius=8)
    helpers.write_marked_image(basic / 'Image' / 'aligned' / f'{stem}_aligned.jpg',
                               [], (100, 100, 3))
  (basic / 'Annotation' / 'manual').mkdir(parents=True)
  for stem, text in manual.items():
    (basic / 'Annotation' / 'manual' / f'{stem}_manu_attri.txt').write_text(text)


LINES = ['train_00001.jpg 5', 'train_00002.jpg 1', 'test_0001.jpg 7']


def test_eyes_from_manual_points_of_original_images(tmp_path):
  write_rafdb(tmp_path, LINES, {'train_00001': manu_attri(),
                                'test_0001': manu_attri(attrs=(0, 0, 4))})
  src = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path), aligned=False)
  assert [helpers.name_of(r) for r in src] == ['sad', 'surprise']
  r = src[0]
  helpers.check_record(r)
  np.testing.assert_array_equal(r['eyes'], np.float32(POINTS[:2]))
  assert r['eyes'][0, 0] < r['eyes'][1, 0]  # eyes[0] on the image's left
  assert np.isnan(r['landmarks']).all()     # 5 points are not the iBUG 68
  assert helpers.dark_at(r['image'], r['eyes'][0]) and helpers.dark_at(
      r['image'], r['eyes'][1])
  assert (src.entries[0]['gender'], src.entries[0]['race'],
          src.entries[0]['age']) == (1, 2, 2)
  # No manual file: NaN eyes, counted in the notes.
  assert np.isnan(src[1]['eyes']).all()
  assert any(note.startswith('1 original images have no') for note in src.notes)
  # Aligned images: the original-image points do not apply.
  aligned = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path))
  assert all(np.isnan(r['eyes']).all() for r in aligned) and not aligned.notes
  # image_size stretches the whole image; the eyes move with the pixels.
  small = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path), aligned=False,
                                image_size=80)[0]
  want = crops.transform_points(np.float32(POINTS[:2]),
                                crops.box_matrix((0, 0, 200, 160), 80))
  np.testing.assert_allclose(small['eyes'], want, atol=1e-5)
  assert small['image'].shape == (80, 80, 3)
  assert helpers.dark_at(small['image'], small['eyes'][0]) and helpers.dark_at(
      small['image'], small['eyes'][1])


def test_eye_crop_uses_the_manual_eyes(tmp_path):
  write_rafdb(tmp_path, LINES, {'train_00001': manu_attri(),
                                'test_0001': manu_attri()})
  src = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path), aligned=False)
  pre = Preprocess('crop_eyes(48)|rgb|float', name='rafdb',
                   detector=points.find_points)
  r = src[0]
  out = pre(r)['image']
  want, eyes_out = crops.align_by_eyes(r['image'], r['eyes'], 48, r['eyes'])
  np.testing.assert_array_equal(out, want.astype(np.float32))
  assert helpers.dark_at(out, eyes_out[0]) and helpers.dark_at(out, eyes_out[1])
  assert not helpers.dark_at(out, (24, 40))  # below the eyes: bright
  # Without manual eyes the crop asks the detector, which finds no face in
  # this flat image: a bad record naming it, not a crop at made-up eyes.
  with pytest.raises(BadRecordError, match='rafdb record 1: the eye-aligned crop '
                     'needs eyes; the record has none'):
    pre(src[1])
  # Through the grain pipeline (the test split has only annotated images).
  test = DATASETS.get('rafdb')('test', manual_dir=str(tmp_path), aligned=False)
  batch = eval_dataset(test, pre, global_batch=2)[0]
  np.testing.assert_array_equal(batch['image'][0], want.astype(np.float32))
  assert batch['expression'][0] == test[0]['expression']


@pytest.mark.parametrize('text, line, reason', [
    (manu_attri().replace('100.00\t95.00', '100.00\tx'), 3, 'nose tip as "x y"'),
    (manu_attri().replace('70.50\t60.25', '70.50 60.25 1'), 1, 'left eye'),
    (manu_attri(POINTS[:4]), 7, 'expected 8 non-empty lines.*found 7'),
    (manu_attri(attrs=(1, 2, 2, 0)), 9, 'found 9'),
    (manu_attri(attrs=(1, 3, 2)), 7, 'race as an integer 0-2'),
    (manu_attri([POINTS[0], (float('nan'), 1.0)] + POINTS[2:]), 2, 'right eye'),
    (manu_attri([POINTS[0], POINTS[0]] + POINTS[2:]), 2, 'eye centres coincide'),
])
def test_bad_manual_file(tmp_path, text, line, reason):
  write_rafdb(tmp_path, LINES, {'train_00001': text, 'test_0001': manu_attri()})
  with pytest.raises(shared.AdapterError,
                     match=f'train_00001_manu_attri.txt:{line}: .*{reason}'):
    DATASETS.get('rafdb')('train', manual_dir=str(tmp_path), aligned=False)
  src = DATASETS.get('rafdb')('train', manual_dir=str(tmp_path), aligned=False,
                              skip_bad=True)
  assert len(src) == 1 and len(src.skipped) == 1
  assert f'train_00001_manu_attri.txt:{line}: ' in src.skipped[0]
  # The aligned images do not read the manual files.
  assert len(DATASETS.get('rafdb')('train', manual_dir=str(tmp_path))) == 2


def test_tfds_stores_the_manual_eyes(tmp_path):
  write_rafdb(tmp_path, LINES, {'train_00001': manu_attri()})
  kwargs = dict(manual_dir=str(tmp_path), aligned=False, image_size=64)
  builder = helpers.through_tfds('rafdb', kwargs, tmp_path, ['train'])
  stored = builder.as_data_source('train')
  assert np.isfinite(stored[0]['eyes']).all() and np.isnan(stored[1]['eyes']).all()
