"""The batched engine against one model trained plainly (reference_finetune.py):
the scanned path, the unrolled path, bfloat16 and the batched evaluation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fer_jax.models import get_model
from fer_jax.train import batched
from tests.protocols import reference_finetune as ref


def _max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(u, np.float64) -
                                 np.asarray(v, np.float64))))
             for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _lists(sizes, n_pad, n_data, seed):
  """Padded training lists [M, n_pad] of distinct random rows; pads hold a real
  row index, which the engine must ignore."""
  rng = np.random.default_rng(seed)
  rows = np.full((len(sizes), n_pad), n_data - 1, np.int32)
  for i, s in enumerate(sizes):
    rows[i, :s] = rng.choice(n_data, s, replace=False)
  return rows


def _subsets(rows, sizes, off, key):
  m = len(sizes)
  return batched.Subsets(jnp.asarray(rows), jnp.asarray(sizes, jnp.int32),
                         jnp.asarray(off, jnp.int32), jnp.asarray(off, jnp.int32),
                         batched.model_keys(key, np.arange(m)))


def _model_key(key, i):
  return jax.random.fold_in(key, i)  # the documented rule: fold_in(key, id)


@functools.lru_cache(maxsize=None)  # one model object: one reference compile
def _heads_setup(num_outputs=2):
  model = get_model('small_cnn', num_outputs=num_outputs, hidden=16,
                    dropout=0.5)
  d, n_data = 12, 90
  rng = np.random.default_rng(0)
  # Two nets' feature / label blocks stacked, as the study stacks twin nets.
  x = rng.normal(size=(2 * n_data, d)).astype(np.float32)
  y = rng.normal(size=(2 * n_data, num_outputs)).astype(np.float32)
  heads = [model.init({'params': jax.random.key(i)}, jnp.zeros((1, d)),
                      method='predict_head')['params']['head'] for i in (0, 1)]
  return model, x, y, heads, n_data


def _train_heads(model, x, y, heads, n_data, sizes, net, recipe, tx, key,
                 **trainer_kwargs):
  rows = _lists(sizes, 40, n_data, seed=1)
  off = net * n_data
  trainer = batched.BatchedTrainer(batched.head_apply(model), tx, recipe,
                                   **trainer_kwargs)
  params = jax.tree.map(lambda *h: jnp.stack(h)[net], *heads)
  state, _ = trainer.train(trainer.init(params, {}), jnp.asarray(x),
                           jnp.asarray(y), _subsets(rows, sizes, off, key))
  return trainer, state, rows, off


# Module-level, so the reference compiles its step once for all parameters.
_SGD = optax.sgd(1e-2, momentum=0.9, nesterov=True)
_NET = get_model('small_cnn', num_outputs=1, widths=(4,), hidden=8, dropout=0.5)


@pytest.mark.parametrize('map_batch', [0, 2])
def test_scanned_heads_match_the_plain_reference(map_batch):
  # Two outputs (a joint valence/arousal net), partial last batches, a model
  # of one frame, an empty dummy, and segments that do not divide the steps;
  # map_batch=2: the models of a chunk two at a time (lax.map), not vmapped.
  model, x, y, heads, n_data = _heads_setup()
  sizes = [1, 9, 16, 33, 0]
  net = np.array([0, 1, 0, 1, 1])
  tx = _SGD
  recipe = batched.Recipe(batch_size=8, epochs=3)
  key = jax.random.key(11)
  _, state, rows, off = _train_heads(model, x, y, heads, n_data, sizes, net,
                                     recipe, tx, key, segment_steps=5,
                                     map_batch=map_batch)
  for i, s in enumerate(sizes):
    want, _ = ref.train_one(model, tx, heads[net[i]], x, y, rows[i, :s] + off[i],
                            _model_key(key, i), batch_size=8, epochs=3)
    got = jax.tree.map(lambda a: a[i], state.params)
    assert _max_diff(got, want) < 1e-5, (i, s)
    if s:  # it trained: not a comparison of two unchanged heads
      assert _max_diff(got, heads[net[i]]) > 1e-3, (i, s)
    else:
      assert _max_diff(got, heads[net[i]]) == 0


@pytest.mark.parametrize('unroll', [False, True])
def test_whole_nets_with_batchnorm_match_the_plain_reference(unroll):
  # unroll=True is the path whole nets take on a CPU; drop_remainder keeps
  # BatchNorm's batch statistics free of padding.
  model = _NET
  n_data = 48
  rng = np.random.default_rng(1)
  x = rng.uniform(size=(n_data, 8, 8, 3)).astype(np.float32)
  y = rng.normal(size=(n_data, 1)).astype(np.float32)
  sizes = [8, 13, 20]
  rows = _lists(sizes, 20, n_data, seed=2)
  tx = _SGD
  recipe = batched.Recipe(batch_size=8, epochs=2, drop_remainder=True)
  vs = [model.init({'params': k}, x[:1])
        for k in jax.random.split(jax.random.key(3), len(sizes))]
  stack = lambda name: jax.tree.map(lambda *a: jnp.stack(a),  # noqa: E731
                                    *[v[name] for v in vs])
  trainer = batched.BatchedTrainer(batched.full_apply(model), tx, recipe,
                                   segment_steps=2, unroll=unroll)
  key = jax.random.key(5)
  state, _ = trainer.train(trainer.init(stack('params'), stack('batch_stats')),
                           jnp.asarray(x), jnp.asarray(y),
                           _subsets(rows, sizes, np.zeros(3), key))
  for i, s in enumerate(sizes):
    p, bs = ref.train_one(model, tx, vs[i]['params'], x, y, rows[i, :s],
                          _model_key(key, i), batch_size=8, epochs=2,
                          drop_remainder=True, batch_stats=vs[i]['batch_stats'])
    assert _max_diff(jax.tree.map(lambda a: a[i], state.params), p) < 1e-5
    assert _max_diff(jax.tree.map(lambda a: a[i], state.extra), bs) < 1e-5
    assert _max_diff(bs, vs[i]['batch_stats']) > 1e-3  # the statistics moved
  # Evaluation with the running statistics, on every frame.
  everything = np.tile(np.arange(n_data, dtype=np.int32), (3, 1))
  sse, count, _ = trainer.evaluate(state, jnp.asarray(x), jnp.asarray(y),
                                   jnp.asarray(everything),
                                   jnp.ones(everything.shape, bool),
                                   jnp.zeros(3, jnp.int32), jnp.zeros(3, jnp.int32))
  for i in range(3):
    one = jax.tree.map(lambda a: a[i], {'params': state.params,
                                        'batch_stats': state.extra})
    want, n, _ = ref.evaluate_one(model, one, x, y, everything[i])
    np.testing.assert_allclose(sse[i], want, rtol=1e-5)
    assert count[i] == n


def test_bf16_heads_stay_within_tolerance_of_the_float32_reference():
  """bfloat16 params, grads, momentum, features and compute, with stochastic
  rounding of the updates, against the float32 reference, at the paper's
  lr 1e-3 (Nesterov 0.9), 3 epochs.

  The measure is the fine-tuning's effect on the predictions of the training
  frames: gap = |p_bf16 - p_ref| / |p_ref - p_pretrained| (L2 over frames).
  Measured for these 3 models: 0.013, 0.057 and 0.011 (largest absolute
  prediction gap 0.030; over 3 seeds x 3 models at most 0.062); the tolerance
  is 0.15, and 0.08 on the absolute gap. The same bf16 run with other model
  keys (another minibatch order and other dropout masks) gives 0.34-0.39 (0.10
  to 0.89 absolute): the tolerance still sees a wrong order or key. (Round to
  nearest instead of stochastic rounding is not visible at this lr and length:
  test_personalization.py checks the rounding itself.)
  """
  model32, x, y, heads, n_data = _heads_setup()
  model16 = model32.clone(dtype=jnp.bfloat16)
  sizes = [9, 24, 33]
  net = np.array([0, 1, 0])
  tx = optax.sgd(1e-3, momentum=0.9, nesterov=True)
  recipe = batched.Recipe(batch_size=8, epochs=3)
  key = jax.random.key(13)
  heads16 = [jax.tree.map(lambda a: a.astype(jnp.bfloat16), h) for h in heads]
  _, state, rows, off = _train_heads(model16, x.astype(jnp.bfloat16), y,
                                     heads16, n_data, sizes, net, recipe, tx,
                                     key, segment_steps=8)
  for i, s in enumerate(sizes):
    tr = rows[i, :s] + off[i]
    want, _ = ref.train_one(model32, tx, heads[net[i]], x, y, tr,
                            _model_key(key, i), batch_size=8, epochs=3)
    got = jax.tree.map(lambda a: a[i], state.params)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(got))
    pred = lambda m, h: np.asarray(m.apply(  # noqa: E731
        {'params': {'head': h}}, x[tr], False, method='predict_head'),
                                       np.float64)
    p16, p32 = pred(model16, got), pred(model32, want)
    moved = np.linalg.norm(p32 - pred(model32, heads[net[i]]))
    assert np.linalg.norm(p16 - p32) / moved < 0.15, (i, s)
    assert np.max(np.abs(p16 - p32)) < 0.08, (i, s)


def test_batched_evaluate_equals_each_model_evaluated_alone():
  model, x, y, heads, n_data = _heads_setup()
  m = 4
  net = np.array([0, 1, 1, 0])
  rng = np.random.default_rng(3)
  params = [jax.tree.map(lambda a: a + 0.1 * rng.normal(size=a.shape)
                         .astype(np.float32), heads[b]) for b in net]
  sizes = [5, 11, 1, 0]  # padded test lists; the last model tests nothing
  test = _lists(sizes, 12, n_data, seed=4)
  valid = np.arange(12)[None] < np.asarray(sizes)[:, None]
  off = net * n_data
  trainer = batched.BatchedTrainer(batched.head_apply(model),
                                   optax.sgd(1e-2), batched.Recipe(8, 1))
  stacked = jax.tree.map(lambda *a: jnp.stack(a), *params)
  sse, count, pred = trainer.evaluate(
      trainer.init(stacked, {}), jnp.asarray(x), jnp.asarray(y),
      jnp.asarray(test), jnp.asarray(valid), jnp.asarray(off, jnp.int32),
      jnp.asarray(off, jnp.int32))
  assert sse.shape == (m, 2) and count.tolist() == sizes
  for i, s in enumerate(sizes):
    want_sse, want_n, want_pred = ref.evaluate_one(
        model, {'params': {'head': params[i]}}, x, y, test[i, :s] + off[i])
    np.testing.assert_allclose(sse[i], want_sse, rtol=1e-5, atol=1e-6)
    assert count[i] == want_n
    np.testing.assert_allclose(pred[i, :s], want_pred, rtol=1e-5, atol=1e-6)
