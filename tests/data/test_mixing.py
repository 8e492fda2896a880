"""Mixed batches of several datasets over the union label space (issue #7)."""
import numpy as np
import pytest

from fer_jax.data import labels, mixing, pipeline


class _Fake:
  """Tiny source: 4x4 images, expression i % 7, fixed AU pattern."""

  def __init__(self, n, groups):
    self.n, self.labels = n, tuple(groups)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {'image': np.full((4, 4, 1), i % 255, np.uint8),
            'expression': np.int32(i % 7 if 'expression' in self.labels else -1),
            'compound': np.int32(-1),
            'aus': (np.arange(14) % 2).astype(np.float32),
            'has_expression': np.bool_('expression' in self.labels),
            'has_aus': np.bool_('aus' in self.labels),
            'has_compound': np.bool_(False)}


_PRE = pipeline.Preprocess('gray|resize(4)|unit')


def _mix(weights, groups, steps=60, batch=10, **kw):
  return mixing.mixture_dataset([_Fake(37 + 11 * i, g) for i, g in enumerate(groups)],
                                weights, groups, _PRE, batch, steps, seed=3, **kw)


@pytest.mark.parametrize('weights', [(0.5, 0.5), (0.8, 0.2), (3.0, 1.0, 1.0)])
def test_observed_ratio_matches_weights(weights):
  groups = [('expression',), ('aus',), ('expression', 'aus')][:len(weights)]
  ds = _mix(weights, groups)
  ids = np.concatenate([ds[k]['dataset_id'] for k in range(60)])
  observed = np.bincount(ids, minlength=len(weights)) / ids.size
  np.testing.assert_allclose(observed, np.asarray(weights) / sum(weights), atol=0.02)


def test_alternate_batches_hold_one_dataset_at_the_weights():
  ds = _mix((0.75, 0.25), [('expression',), ('aus',)], alternate=True)
  ids = [np.unique(ds[k]['dataset_id']) for k in range(40)]
  assert all(len(u) == 1 for u in ids)
  assert np.mean([u[0] for u in ids]) == pytest.approx(0.25, abs=0.03)


def test_union_labels_and_mask():
  b = _mix((0.5, 0.5), [('expression',), ('aus',)])[0]
  assert b['labels'].shape == b['label_mask'].shape == (10, 21)
  for y, m, d, e in zip(b['labels'], b['label_mask'], b['dataset_id'], b['expression']):
    if d == 0:  # expression-only: one-hot over the 7, AUs unknown
      assert m[:7].all() and not m[7:].any()
      np.testing.assert_array_equal(y[:7], np.eye(7)[e])
    else:
      assert m[7:].all() and not m[:7].any()
      np.testing.assert_array_equal(y[7:], np.arange(14) % 2)


def test_exclusive_groups_are_known_negatives():
  # compound_like: a basic record is a known negative for every compound class.
  rec = {'expression': np.int32(3), 'compound': np.int32(-1), 'aus': np.zeros(14),
         'has_expression': True, 'has_compound': False, 'has_aus': False}
  y, m = labels.union_targets(rec, ('expression', 'aus', 'compound'),
                              ('expression', 'compound'))
  assert y.shape == (36,) and y.sum() == 1 and y[3] == 1
  assert m[:7].all() and not m[7:21].any() and m[21:].all()
  _, m = labels.union_targets(rec, ('expression', 'aus', 'compound'))
  assert not m[21:].any()  # without dataset groups only has_* counts


def test_deterministic_and_restartable():
  a = _mix((0.6, 0.4), [('expression',), ('aus',)])
  b = _mix((0.6, 0.4), [('expression',), ('aus',)])
  it = pipeline.to_iterator(b, start=7, num_threads=1)
  for k in (7, 8):
    got = next(it)
    for key in ('image', 'dataset_id', 'labels'):
      np.testing.assert_array_equal(a[k][key], got[key])


def test_train_mixture_from_config():
  import ml_collections
  d = ml_collections.ConfigDict({'train_split': 'train', 'mixture': [
      dict(name='synthetic', source=dict(preset='sfew_like', image_size=16), weight=1),
      dict(name='synthetic', source=dict(preset='emotionet_like', image_size=16),
           weight=1, train_records=50)]})
  assert mixing.mixture_groups(d) == ('expression', 'aus')
  pre = pipeline.Preprocess('rgb|resize(16)|unit')
  b = mixing.train_mixture(d, pre, 8, 3, seed=0)[0]
  assert b['image'].shape == (8, 16, 16, 3) and set(b['dataset_id']) == {0, 1}
  np.testing.assert_array_equal(b['label_mask'][:, 0], b['dataset_id'] == 0)
