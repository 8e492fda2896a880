"""grain pipelines: deterministic, restartable at a step, sharded per process,
padded evaluation, and bad records named."""
import numpy as np
import pytest

from fer_jax.data import pipeline
from fer_jax.data.synthetic import SyntheticSource


def _pp(ops='', value='unit'):
  return pipeline.Preprocess(f'gray|resize(24){ops}|{value}')


@pytest.fixture(scope='module')
def source():
  return pipeline.limit(SyntheticSource('affectnet_like', 'train', image_size=24), 100)


def test_same_seed_same_batches_and_restart_at_a_step(source):
  ds = pipeline.train_dataset(source, _pp('|rotate(10)|flip_lr'), 8, 30, seed=3)
  again = pipeline.train_dataset(source, _pp('|rotate(10)|flip_lr'), 8, 30, seed=3)
  it = pipeline.to_iterator(again, start=5, num_threads=2)
  for k in range(5, 9):
    a, b = ds[k], next(it)
    np.testing.assert_array_equal(a['image'], b['image'])
    np.testing.assert_array_equal(a['valence'], b['valence'])
  other = pipeline.train_dataset(source, _pp(), 8, 30, seed=4)
  assert not np.array_equal(ds[0]['expression'], other[0]['expression'])


def test_each_epoch_is_a_new_permutation_of_the_whole_source(source):
  ds = pipeline.train_dataset(source, _pp(), 10, 20, seed=0)
  ref = np.sort([source[i]['valence'] for i in range(100)])
  vals = [np.concatenate([ds[k]['valence'] for k in range(e * 10, (e + 1) * 10)])
          for e in range(2)]
  for v in vals:
    np.testing.assert_array_equal(np.sort(v), ref)
  assert not np.array_equal(vals[0], vals[1])


def test_processes_read_disjoint_shares_of_each_global_batch(source):
  full = pipeline.train_dataset(source, _pp(), 8, 10, seed=1)
  shards = [pipeline.train_dataset(source, _pp(), 8, 10, seed=1, process_index=p,
                                   process_count=2) for p in range(2)]
  assert shards[0][0]['image'].shape[0] == 4
  for k in range(4):
    got = np.concatenate([s[k]['valence'] for s in shards])
    np.testing.assert_array_equal(np.sort(got), np.sort(full[k]['valence']))
  with pytest.raises(ValueError, match='not divisible'):
    pipeline.train_dataset(source, _pp(), 9, 10, seed=1, process_count=2)


def test_eval_dataset_pads_the_last_batch_with_a_mask(source):
  ds = pipeline.eval_dataset(source, _pp(), 32)
  batches = [ds[k] for k in range(len(ds))]
  assert len(batches) == 4 and all(b['image'].shape[0] == 32 for b in batches)
  mask = np.concatenate([b['mask'] for b in batches])
  assert mask.sum() == 100 and mask[:100].all()
  vals = np.concatenate([b['valence'] for b in batches])[:100]
  np.testing.assert_array_equal(vals, [source[i]['valence'] for i in range(100)])


def test_preprocess_output_and_normalisations(source):
  rec = source[0]
  ex = _pp(value='unit')(rec)
  assert ex['image'].shape == (24, 24, 1) and ex['image'].dtype == np.float32
  assert 0 <= ex['image'].min() and ex['image'].max() <= 1
  mm = _pp(value='minmax')(rec)['image']
  assert mm.min() == 0 and abs(mm.max() - 1) < 1e-6
  ms = _pp(value='mean_std(0.5, 0.5)')(rec)['image']
  np.testing.assert_allclose(ms, (ex['image'] - 0.5) / 0.5, atol=1e-6)


def test_bad_records_are_named():
  rec = dict(SyntheticSource('affectnet_like', 'train', image_size=24)[7])
  rec['valence'] = np.float32('nan')
  with pytest.raises(pipeline.BadRecordError, match='affectnet/train record 7: valence'):
    pipeline.Preprocess('resize(24)|unit', name='affectnet/train')(rec)
  rec = dict(SyntheticSource('affectnet_like', 'train', image_size=24)[8])
  rec['expression'] = np.int32(9)
  with pytest.raises(pipeline.BadRecordError, match='record 8: expression label 9'):
    pipeline.Preprocess('resize(24)|unit')(rec)
  rec['image'] = np.zeros((0, 5, 3), np.uint8)
  with pytest.raises(pipeline.BadRecordError, match='record 8: image'):
    pipeline.Preprocess('resize(24)|unit')(rec)


def test_a_crop_without_points_asks_the_detector_it_is_given():
  # The pipeline sits below the face stage: the detector comes in as a function.
  from fer_jax.data import crops
  img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8)
  record = {'image': img, 'eyes': np.full((2, 2), np.nan), 'index': 4}
  eyes = np.asarray([[12.0, 15.0], [27.0, 16.0]])
  asked = []

  def detector(image, what, where):
    asked.append((what, where))
    return eyes
  out = pipeline.Preprocess('crop_eyes(24)|float', name='sfew',
                            detector=detector)(record)['image']
  assert asked == [('eyes', 'sfew record 4')]
  np.testing.assert_array_equal(out, crops.align_by_eyes(img, eyes, 24).astype(np.float32))
  with pytest.raises(ValueError, match='sfew record 4: the eyes crop needs eyes; '
                     'the record has none and no face detector was given'):
    pipeline.Preprocess('crop_eyes(24)|unit', name='sfew')(record)
