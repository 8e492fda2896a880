"""Keras-style frozen BatchNorm (config.frozen_bn='inference'): the frozen
base's BatchNorm layers normalise with their moving statistics and never
update them, while the head trains (its own BatchNorm in training mode)."""
import jax
import numpy as np
import pytest

from fer_jax.data import pipeline
from fer_jax.models import get_model, partition
from fer_jax.train import checkpoint as ckpt_lib
from fer_jax.train import loop
from fer_jax.train import step as step_lib


def _config(**kw):
  from tests.conftest import tiny_config
  return tiny_config(**{'task.targets': ('expression',), 'trainable': 'head',
                        'frozen_bn': 'inference', 'total_steps': 4,
                        'eval_every_steps': 4, 'checkpoint_every_steps': 4,
                        'data.eval_records': 16, 'data.train_records': 64,
                        **kw})


def _flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in partition.flatten(tree).items()}


def test_frozen_batchnorm_layers_follow_the_trainable_mask():
  model = get_model('small_cnn', num_outputs=7, widths=(8, 16), hidden=16)
  x = np.zeros((1, 32, 32, 3), np.float32)
  shapes = jax.eval_shape(lambda: model.init(
      {'params': jax.random.key(0), 'dropout': jax.random.key(0)}, x))
  order = partition.layer_order(model, x)
  frozen = lambda spec: partition.frozen_batchnorm_layers(  # noqa: E731
      partition.trainable_mask(shapes['params'], spec, order=order),
      shapes['batch_stats'])
  assert frozen('head') == ['features/bn0', 'features/bn1']
  assert frozen('last:1') == ['features/bn0']  # bn1 is the last layer
  assert frozen('all') == []
  assert partition.frozen_batchnorm_layers(None, shapes['batch_stats']) == []
  # 004's head has its own BatchNorm layers: they train with the head.
  mnv2 = get_model('mobilenet_v2', num_outputs=7, head='zaitouny')
  shapes = jax.eval_shape(lambda: mnv2.init(
      {'params': jax.random.key(0), 'dropout': jax.random.key(0)}, x))
  layers = partition.frozen_batchnorm_layers(
      partition.trainable_mask(shapes['params'], 'head'), shapes['batch_stats'])
  bns = partition.layer_paths(shapes['batch_stats'])
  assert layers == [p for p in bns if p.startswith('features/')]
  assert any(p.startswith('head/') for p in bns) and len(layers) > 30


def test_head_only_stage_leaves_the_base_batch_stats_bit_identical(tmp_path):
  c = _config()
  start = jax.device_get(loop.Trainer(c, str(tmp_path / 'probe')).state)
  results = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert results['step'] == 4
  _, last = ckpt_lib.load_numpy(str(tmp_path / 'run'), 'latest')
  before, after = _flat(start.batch_stats), _flat(last['batch_stats'])
  assert before.keys() == after.keys()
  for k in before:  # every BatchNorm here is in the (frozen) base
    assert k.startswith('features/')
    np.testing.assert_array_equal(before[k], after[k], err_msg=k)
  assert all(np.array_equal(v, _flat(last['params'])[k]) for k, v in
             _flat(start.params).items() if k.startswith('features/'))
  assert not all(np.array_equal(v, _flat(last['params'])[k]) for k, v in
                 _flat(start.params).items() if k.startswith('head/'))


def test_train_mode_base_equals_eval_mode_and_the_default_still_updates(tmp_path):
  c = _config()
  t = loop.Trainer(c, str(tmp_path / 'a'))
  assert t.frozen_bn == ('features/bn0', 'features/bn1')
  state = jax.device_get(t.state)
  # Moving statistics far from any batch's, so batch statistics would show.
  stats = jax.tree.map(lambda v: v * 0.5 + 0.25, state.batch_stats)
  variables = {'params': state.params, 'batch_stats': stats}
  ds = pipeline.train_dataset(t.train_data.source, t.preprocess('train'), 16, 2, 0)
  x = ds[0]['image']
  eval_out = t.model.apply(variables, x, train=False, method='embed')
  with step_lib.inference_batchnorm(t.frozen_bn):
    train_out, new = t.model.apply(variables, x, train=True, method='embed',
                                   mutable=['batch_stats'])
  np.testing.assert_array_equal(np.asarray(train_out), np.asarray(eval_out))
  for k, v in _flat(new['batch_stats']).items():
    np.testing.assert_array_equal(v, _flat(stats)[k])
  # Without it (torch's way, the default) the base normalises with the
  # batch's statistics and moves its running ones.
  plain_out, plain = t.model.apply(variables, x, train=True, method='embed',
                                   mutable=['batch_stats'])
  assert np.abs(np.asarray(plain_out) - np.asarray(eval_out)).max() > 1e-3
  assert not np.array_equal(_flat(plain['batch_stats'])['features/bn0/mean'],
                            _flat(stats)['features/bn0/mean'])
  # ... and the train step with the default mode updates the base's stats.
  t2 = loop.Trainer(_config(frozen_bn='train'), str(tmp_path / 'b'))
  assert t2.frozen_bn == ()
  batch = {k: np.asarray(v) for k, v in ds[0].items()}
  s2, _ = t2.train_step(t2.state, batch)
  assert not np.array_equal(
      np.asarray(s2.batch_stats['features']['bn0']['mean']),
      np.asarray(state.batch_stats['features']['bn0']['mean']))
  with pytest.raises(ValueError, match='frozen_bn'):
    loop.Trainer(_config(frozen_bn='frozen'), str(tmp_path / 'c'))
