"""Keras' feature-wise normalisation (featurewise_center +
featurewise_std_normalization): per-channel statistics of the training images,
computed once, then applied to every split; checked against numpy."""
import ml_collections
import numpy as np
import pytest

from fer_jax.data import pipeline
from fer_jax.data import pp
from fer_jax.data import statistics


class _Images:
  """Random uint8 RGB images with an expression label."""
  labels = ('expression',)

  def __init__(self, n, seed, offset=0):
    rng = np.random.default_rng(seed)
    self.images = rng.integers(offset, 256 - offset, (n, 6, 6, 3), dtype=np.uint8)

  def __len__(self):
    return len(self.images)

  def __getitem__(self, i):
    return {'image': self.images[i], 'expression': np.int32(i % 7),
            'has_expression': np.bool_(True)}


PRE = pipeline.Preprocess('rgb|resize(6)|float')


def _keras(x, mean, std):  # ImageDataGenerator.standardize
  return (x - mean) / (std + 1e-6)


def test_statistics_and_normalisation_match_numpy():
  src = _Images(23, 0)
  x = src.images.astype(np.float64)
  stats = statistics.featurewise_stats_of_source(src, PRE)
  np.testing.assert_allclose(stats['mean'], x.mean((0, 1, 2)), rtol=1e-12)
  np.testing.assert_allclose(stats['std'], x.std((0, 1, 2)), rtol=1e-10)
  pre = pipeline.Preprocess(
      f"rgb|resize(6)|featurewise({stats['mean']!r}, {stats['std']!r})")
  out = np.stack([pre(src[i])['image'] for i in range(len(src))])
  assert out.dtype == np.float32
  np.testing.assert_allclose(out, _keras(x, x.mean((0, 1, 2)), x.std((0, 1, 2))),
                             atol=1e-5)
  np.testing.assert_allclose(out.mean((0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(out.std((0, 1, 2)), 1, atol=1e-5)
  # From a subset: evenly spaced records of the first `limit`.
  sub = statistics.featurewise_stats_of_source(src, PRE, num_records=4, limit=10)
  idx = np.unique(np.linspace(0, 9, 4).round().astype(int))
  np.testing.assert_allclose(sub['mean'], x[idx].mean((0, 1, 2)), rtol=1e-12)
  np.testing.assert_allclose(sub['std'], x[idx].std((0, 1, 2)), rtol=1e-10)
  with pytest.raises(ValueError, match='featurewise: missing argument mean, std'):
    pipeline.Preprocess('resize(6)|featurewise')


def _data(**kw):
  return ml_collections.ConfigDict({
      'name': 'x', 'source': {'which': 'a'}, 'train_split': 'train',
      'train_records': 0, 'image_size': 6, 'channels': 3, 'crop': 'none',
      'normalize': 'featurewise', 'num_threads': 1, **kw})


def _stats(pre):
  """The (mean, std) of a Preprocess's featurewise op."""
  name, args, _ = pp.parse(pre.pp)[-1]
  assert name == 'featurewise'
  return args


def _with_stats(data_config):
  # What the train loop writes into a run's config before preprocessing.
  data_config.featurewise_stats = statistics.featurewise_stats_of_config(data_config)
  return data_config


def test_stats_of_a_config_one_source_or_a_mixture(monkeypatch):
  from fer_jax.data import sources
  fakes = {'a': _Images(12, 1), 'b': _Images(30, 2, offset=60)}
  monkeypatch.setattr(sources, 'get_source',
                      lambda d, split: fakes[d.source.which])
  xa, xb = (fakes[k].images.astype(np.float64) for k in 'ab')
  pre = pipeline.preprocess_from_config(_with_stats(_data(train_records=5)))
  mean, std = _stats(pre)
  np.testing.assert_allclose(mean, xa[:5].mean((0, 1, 2)))
  np.testing.assert_allclose(std, xa[:5].std((0, 1, 2)))
  # A mixture weighted by size: the statistics of the concatenation.
  mix = _data(mixture=[dict(name='x', source=dict(which='a'), weight='size'),
                       dict(name='x', source=dict(which='b'), weight='size')])
  pre = pipeline.preprocess_from_config(_with_stats(mix))
  both = np.concatenate([xa, xb])
  mean, std = _stats(pre)
  np.testing.assert_allclose(mean, both.mean((0, 1, 2)))
  np.testing.assert_allclose(std, both.std((0, 1, 2)))
  # Statistics written in the config are used as they are.
  with pytest.raises(ValueError, match='featurewise_stats'):
    pipeline.preprocess_from_config(_data())  # none given: nothing to normalise by
  given = _data(featurewise_stats={'mean': (1.0, 2.0, 3.0), 'std': (2.0,) * 3})
  pre = pipeline.preprocess_from_config(given)
  assert _stats(pre) == ((1.0, 2.0, 3.0), (2.0, 2.0, 2.0))
  np.testing.assert_allclose(pre(fakes['a'][0])['image'],
                             (xa[0] - [1, 2, 3]) / (2 + 1e-6), atol=1e-5)


def test_the_loop_computes_them_once_and_a_resumed_run_reuses_them(
    monkeypatch, tmp_path):
  from fer_jax.data import sources
  from fer_jax.train import loop
  from tests.conftest import tiny_config
  monkeypatch.setattr(sources, 'get_source',
                      lambda d, split: _Images(9, 3))
  c = tiny_config(**{'task.targets': ('expression',),
                     'data.normalize': 'featurewise'})
  c.data.image_size = 6
  c.data.source = {'preset': 'kdef_like', 'seed': 3}
  resolved = loop.derived_config(c, str(tmp_path))
  x = _Images(9, 3).images.astype(np.float64)
  np.testing.assert_allclose(resolved.data.featurewise_stats.mean,
                             x.mean((0, 1, 2)))
  assert 'featurewise_stats' not in c.data  # the given config is not changed
  loop.check_workdir_config(resolved, str(tmp_path))  # writes config.json
  loop.check_workdir_config(c, str(tmp_path))  # derived fields: no mismatch
  # Resumed (a new process: empty cache): read back from config.json, the
  # training images not touched.
  monkeypatch.setattr(sources, 'get_source', lambda d, split: 1 / 0)
  monkeypatch.setattr(statistics, '_STATS_CACHE', {})
  again = loop.derived_config(c, str(tmp_path))
  assert again.data.featurewise_stats.to_dict() == (
      resolved.data.featurewise_stats.to_dict())
