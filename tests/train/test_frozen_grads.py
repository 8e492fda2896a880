"""Frozen parameters are not differentiated (`make_train_step(...,
trainable=mask)`): the trainable ones move exactly as with the whole-tree
gradient, the frozen ones not at all, and the logged gradient norm is that of
the trainable parameters."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.models import get_model, partition
from fer_jax.tasks import get_task
from fer_jax.train import optim
from fer_jax.train import step as step_lib
from fer_jax.train.state import init_state


def _flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in partition.flatten(tree).items()}


def _optimizer(mask, **optim_kw):
  import ml_collections
  c = ml_collections.ConfigDict(dict(
      optim=dict(name='sgd', learning_rate=0.05, momentum=0.9, nesterov=True,
                 **optim_kw),
      schedule=dict(name='constant')))
  return optim.make_optimizer(c, 10, 100, mask)


def _batch(n=8, size=16, seed=0):
  rng = np.random.default_rng(seed)
  return {'image': rng.uniform(size=(n, size, size, 3)).astype(np.float32),
          'valence': rng.uniform(-1, 1, n).astype(np.float32),
          'arousal': rng.uniform(-1, 1, n).astype(np.float32),
          'expression': rng.integers(0, 7, n).astype(np.int32),
          'has_va': np.ones(n, bool), 'has_expression': np.ones(n, bool)}


@pytest.mark.parametrize('spec,frozen_bn,optim_kw', [
    ('head', False, {}),
    ('last:1', True, dict(weight_decay=1e-3, grad_clip_norm=0.5)),
])
def test_trainable_subtree_moves_as_with_the_whole_gradient(spec, frozen_bn,
                                                            optim_kw):
  model = get_model('small_cnn', num_outputs=9, widths=(4, 8), hidden=8,
                    dropout=0.5)
  task = get_task(name='affect', targets=('valence', 'arousal', 'expression'))
  x = np.zeros((1, 16, 16, 3), np.float32)
  state = init_state(model, _optimizer(None), jax.random.key(0), x)
  mask = partition.trainable_mask(state.params, spec,
                                  order=partition.layer_order(model, x))
  bn = partition.frozen_batchnorm_layers(mask, state.batch_stats) if frozen_bn \
      else ()
  tx = _optimizer(mask, **optim_kw)
  state = state.replace(opt_state=tx.init(state.params))
  # The whole-tree gradient (the step before frozen leaves were split off) is
  # the reference.
  ref_step = jax.jit(step_lib.make_train_step(model, task, tx, bn))
  new_step = jax.jit(step_lib.make_train_step(model, task, tx, bn,
                                              trainable=mask))
  ref, new = state, state
  for i in range(3):
    batch = _batch(seed=i)
    ref, ref_m = ref_step(ref, batch)
    new, new_m = new_step(new, batch)
    assert float(new_m['loss']) == pytest.approx(float(ref_m['loss']), abs=1e-6)
  marks = _flat(mask)
  start, got, want = _flat(state.params), _flat(new.params), _flat(ref.params)
  assert any(marks.values()) and not all(marks.values())
  for k, trains in marks.items():
    if trains:
      np.testing.assert_allclose(got[k], want[k], rtol=0, atol=1e-6, err_msg=k)
      assert not np.array_equal(got[k], start[k]), k
    else:
      np.testing.assert_array_equal(got[k], start[k], err_msg=k)
  for k, v in _flat(ref.batch_stats).items():
    np.testing.assert_allclose(_flat(new.batch_stats)[k], v, rtol=0, atol=1e-6)
  # The logged norm is the trainable part's: below the whole tree's.
  assert float(new_m['grad_norm']) < float(ref_m['grad_norm'])


class _Linear(nn.Module):
  """features: x V + c (3 units); head: h W + b (1 output)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    h = nn.Dense(3, name='features')(x)
    return nn.Dense(1, name='head')(h)


class _SquaredError:
  def loss(self, outputs, batch):
    return jnp.mean(jnp.square(outputs[:, 0] - batch['y'])), {}


def test_logged_grad_norm_is_the_trainable_one_by_hand():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(5, 4)).astype(np.float32)
  y = rng.normal(size=5).astype(np.float32)
  model = _Linear()
  state = init_state(model, _optimizer(None), jax.random.key(1), x[:1])
  mask = partition.trainable_mask(state.params, 'head')
  tx = _optimizer(mask)
  state = state.replace(opt_state=tx.init(state.params))
  batch = {'image': x, 'y': y}
  _, m_new = jax.jit(step_lib.make_train_step(model, _SquaredError(), tx,
                                              trainable=mask))(state, batch)
  _, m_old = jax.jit(step_lib.make_train_step(model, _SquaredError(), tx))(
      state, batch)

  p = jax.tree.map(lambda a: np.asarray(a, np.float64), state.params)
  V, c = p['features']['kernel'], p['features']['bias']
  W, b = p['head']['kernel'], p['head']['bias']
  h = x @ V + c                       # [5, 3]
  r = (h @ W + b)[:, 0] - y           # residuals
  g = 2 * r / len(y)                  # dL/d output
  head = np.concatenate([(h.T @ g).ravel(), [g.sum()]])
  feats = np.concatenate([(x.T @ np.outer(g, W[:, 0])).ravel(),
                          (np.outer(g, W[:, 0])).sum(0)])
  np.testing.assert_allclose(float(m_new['grad_norm']), np.linalg.norm(head),
                             rtol=1e-5)
  np.testing.assert_allclose(float(m_old['grad_norm']),
                             np.linalg.norm(np.concatenate([head, feats])),
                             rtol=1e-5)
  assert np.linalg.norm(feats) > 0.1 * np.linalg.norm(head)  # they differ


def test_an_all_true_mask_is_the_plain_step():
  model = _Linear()
  x = np.ones((2, 4), np.float32)
  state = init_state(model, _optimizer(None), jax.random.key(1), x[:1])
  mask = partition.trainable_mask(state.params, 'all')
  tx = _optimizer(mask)
  state = state.replace(opt_state=tx.init(state.params))
  batch = {'image': x, 'y': np.zeros(2, np.float32)}
  a, _ = jax.jit(step_lib.make_train_step(model, _SquaredError(), tx))(
      state, batch)
  b, _ = jax.jit(step_lib.make_train_step(model, _SquaredError(), tx,
                                          trainable=mask))(state, batch)
  for k, v in _flat(a.params).items():
    np.testing.assert_array_equal(_flat(b.params)[k], v)
