"""Trainable masks, forward order, head swaps and merging weights."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fer_jax.models import get_model
from fer_jax.models import partition

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
X64 = jnp.zeros((1, 64, 64, 1))


def abstract_params(name, size=64, channels=3, **kw):
  model = get_model(name, **kw)
  x = jnp.zeros((1, size, size, channels))
  return jax.eval_shape(lambda: model.init(RNGS, x))['params']


def true_paths(mask):
  return sorted('/'.join(p) for p, v in partition.flatten(mask).items() if v)


def test_head_on_alexnet_is_exactly_the_dense_part():
  mask = partition.trainable_mask(abstract_params('alexnet'), 'head')
  assert true_paths(mask) == [
      f'head/{l}/{k}' for l in ('fc6', 'fc7', 'out') for k in ('bias', 'kernel')]
  feats = partition.trainable_mask(abstract_params('alexnet'), 'features')
  assert not set(true_paths(feats)) & set(true_paths(mask))
  assert len(true_paths(feats)) == 10  # conv1..conv5, kernel + bias


def test_all_none_and_regex():
  params = abstract_params('resnet32', 32)
  n = len(jax.tree.leaves(params))
  assert len(true_paths(partition.trainable_mask(params, 'all'))) == n
  assert true_paths(partition.trainable_mask(params, 'none')) == []
  bn = true_paths(partition.trainable_mask(params, 're:/bn\\d/'))
  assert bn and all('/bn' in p for p in bn)
  assert true_paths(partition.trainable_mask(params, 're:^features/layer3_4/')) \
      == ['features/layer3_4/bn1/bias', 'features/layer3_4/bn1/scale',
          'features/layer3_4/bn2/bias', 'features/layer3_4/bn2/scale',
          'features/layer3_4/conv1/kernel', 'features/layer3_4/conv2/kernel']
  with pytest.raises(ValueError, match='last:N'):
    partition.trainable_mask(params, 'some')


def test_dict_order_is_call_order_only_before_jax_transforms():
  # A tiny net, since an eager (un-jitted) init runs op by op.
  model = get_model('small_cnn', widths=(4, 8), hidden=8)
  x = jnp.zeros((1, 8, 8, 1))
  eager = model.init(RNGS, x)['params']  # not jitted: call order kept
  order = partition.layer_order(model, x)
  assert partition.layer_paths(eager) == order == [
      'features/conv0', 'features/bn0', 'features/conv1', 'features/bn1',
      'head/fc1', 'head/out']
  # jit (like eval_shape, tree.map, optax, checkpoints) sorts dict keys.
  jitted = jax.jit(model.init)(RNGS, x)['params']
  assert partition.layer_paths(jitted) != order
  assert sorted(partition.layer_paths(jitted)) == sorted(order)


def test_mini_xception_forward_order_follows_keras_layers():
  order = partition.layer_order(get_model('mini_xception'), X64)
  assert order[:5] == ['features/conv1', 'features/bn1', 'features/conv2',
                       'features/bn2', 'features/module1/sep1']
  assert order[4:10] == [f'features/module1/{n}' for n in (
      'sep1', 'sep1_bn', 'sep2', 'sep2_bn', 'res_conv', 'res_bn')]
  assert order[-1] == 'head/out' and len(order) == 29


def test_last_n_layers():
  model = get_model('mini_xception')
  params = jax.eval_shape(model.init, RNGS, X64)['params']
  order = partition.layer_order(model, X64)
  mask = partition.trainable_mask(params, 'last:2', order=order)
  assert true_paths(mask) == [
      'features/module4/res_bn/bias', 'features/module4/res_bn/scale',
      'features/module4/res_conv/kernel', 'head/out/bias', 'head/out/kernel']
  # A SeparableConv2D is one layer (as Keras counts it): two kernels.
  mask = partition.trainable_mask(params, 'last:6', order=order)
  assert 'features/module4/sep1/depthwise_kernel' in true_paths(mask)
  assert 'features/module4/sep1/pointwise_kernel' in true_paths(mask)
  assert 'features/module3/res_bn/scale' not in true_paths(mask)
  assert true_paths(partition.trainable_mask(params, 'last:0', order=order)) \
      == true_paths(partition.trainable_mask(params, 'head'))
  with pytest.raises(ValueError, match='layer_order'):
    partition.trainable_mask(params, 'last:2')
  for bad in ('last:two', 'last:-1', 'last:'):
    with pytest.raises(ValueError, match='whole number'):
      partition.trainable_mask(params, bad, order=order)


def test_frozen_params_stay_bit_identical_after_an_update():
  model = get_model('small_cnn', num_outputs=3, widths=(4, 8), hidden=8)
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 1))
  v = jax.jit(model.init)(RNGS, x)
  params = v['params']
  mask = partition.trainable_mask(params, 'head')
  tx = partition.freeze(optax.sgd(0.1, momentum=0.9), mask)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state):
    def loss(p):
      out, _ = model.apply({'params': p, 'batch_stats': v['batch_stats']}, x,
                           train=True, mutable=['batch_stats'])
      return jnp.mean(out ** 2)
    grads = jax.grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  new = params
  for _ in range(2):
    new, opt_state = step(new, opt_state)
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                       params, new)
  assert jax.tree.leaves(moved['head']) and all(jax.tree.leaves(moved['head']))
  assert not any(jax.tree.leaves(moved['features']))  # bit-identical
  # Plain optax.masked would let the raw gradients through on frozen leaves.
  grads = jax.tree.map(jnp.ones_like, params)
  masked = optax.masked(optax.sgd(0.1), mask)
  upd, _ = masked.update(grads, masked.init(params), params)
  assert np.all(np.asarray(upd['features']['conv0']['kernel']) == 1.0)


def test_reinit_head():
  model7 = get_model('resnet32', num_outputs=7, head='zaitouny')
  model2 = get_model('resnet32', num_outputs=2, head='zaitouny')
  x = jnp.zeros((1, 32, 32, 3))
  pre = jax.eval_shape(model7.init, RNGS, x)
  fresh = jax.eval_shape(model2.init, RNGS, x)
  out = partition.reinit_head(pre, fresh)  # full variables
  assert out['params']['features'] is pre['params']['features']
  assert out['params']['head'] is fresh['params']['head']
  assert out['batch_stats']['head'] is fresh['batch_stats']['head']
  assert jax.eval_shape(model2.apply, out, x).shape == (1, 2)
  p = partition.reinit_head(pre['params'], fresh['params'])  # params only
  assert p['head']['out']['kernel'].shape == (256, 2)


def test_load_into_reports_every_mismatch_at_once():
  target = {'features': {'a': {'kernel': jnp.zeros((3, 4))},
                         'b': {'bias': jnp.zeros((4,))}},
            'head': {'out': {'kernel': jnp.zeros((4, 2))}}}
  source = {'features': {'a': {'kernel': np.ones((3, 5))},
                         'c': {'bias': np.ones((4,))}},
            'head': {'out': {'kernel': np.ones((4, 2))}}}
  with pytest.raises(partition.WeightMismatchError) as e:
    partition.load_into(target, source)
  msg = str(e.value)
  for name in ('features/b/bias', 'features/c/bias', 'features/a/kernel',
               '(3, 5) vs (3, 4)'):
    assert name in msg
  # Non-strict: missing/unexpected tolerated, wrong shapes are still errors.
  with pytest.raises(partition.WeightMismatchError, match='a/kernel'):
    partition.load_into(target, source, strict=False)
  source['features']['a']['kernel'] = np.ones((3, 4))
  out = partition.load_into(target, source, strict=False)
  assert float(out['features']['a']['kernel'][0, 0]) == 1.0
  assert float(out['features']['b']['bias'][0]) == 0.0  # kept from target
  assert 'c' not in out['features']
