"""One personal model trained alone, written from the recipe, not from the engine.

Paper 000 (section 3.3, and 3.2 for the optimiser): the dense part, initialised
with the pre-trained weights, is trained on the subject's frames with the mean
squared error, mini-batches of 16, SGD with Nesterov momentum. The batched
engine (fer_jax/train/batched.py) trains thousands of such models at once; this
module trains one, with nothing of the engine: a Python loop over epochs and
mini-batches, its own loss, `optax.apply_updates`, and the minibatch order and
dropout keys re-derived from the engine's documented key rule:

  * model key k; order stream fold_in(k, 1), dropout stream fold_in(k, 2);
  * epoch e visits entry j of the training list in the order of the 32 bits of
    fold_in(fold_in(order stream, e), j) (a stable sort: ties keep list order);
  * an epoch is ceil(n / B) batches, floor(n / B) with drop_remainder; the last
    batch may be short, and the loss is the mean over its real examples;
  * slot b of step t (steps counted over all epochs) draws its dropout mask from
    fold_in(fold_in(dropout stream, t), b); a whole net's backbone (BatchNorm
    statistics from the batch) draws from fold_in(slot 0's key, 1).

Float32 only: a bfloat16 run of the engine is compared with this float32 one.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

ORDER, DROPOUT = 1, 2


def epoch_order(key, epoch: int, n: int) -> np.ndarray:
  """The order in which epoch `epoch` visits entries 0..n-1."""
  k = jax.random.fold_in(jax.random.fold_in(key, ORDER), epoch)
  bits = [int(_bits(k, j)) for j in range(n)]
  return np.argsort(np.asarray(bits, np.uint64), kind='stable')


@jax.jit
def _bits(k, j):
  return jax.random.bits(jax.random.fold_in(k, j))


def slot_keys(key, step: int, size: int) -> list:
  k = jax.random.fold_in(jax.random.fold_in(key, DROPOUT), step)
  return [jax.random.fold_in(k, b) for b in range(size)]


def mse(pred, y):
  """The affect task's loss: per output, the mean over the batch of the squared
  error; summed over outputs (one output: the MSE)."""
  return jnp.sum(jnp.mean(jnp.square(pred - y), axis=0))


def _head_forward(model, head, f, keys):
  """The dense part in training mode, one example at a time (its own mask)."""
  return jnp.concatenate([
      model.apply({'params': {'head': head}}, f[b:b + 1], True,
                  rngs={'dropout': keys[b]}, method='predict_head')
      for b in range(f.shape[0])])


@functools.lru_cache(maxsize=None)  # one compile per model
def _example_grad(model):
  """d/d head of one example's squared error (summed over outputs)."""
  @jax.jit
  def grad(head, f, y, key):
    def loss(h):
      pred = model.apply({'params': {'head': h}}, f[None], True,
                         rngs={'dropout': key}, method='predict_head')[0]
      return jnp.sum(jnp.square(pred - y))
    return jax.grad(loss)(head)
  return grad


@functools.lru_cache(maxsize=None)
def _update(tx):
  @jax.jit
  def update(params, grads, opt_state):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state
  return update


def _head_step(model, tx):
  """A dense part's step: the loss is a mean over the batch's examples, so its
  gradient is the mean of the examples' gradients, each taken alone."""
  def step(params, stats, opt_state, xb, yb, keys):
    grads = [_example_grad(model)(params, xb[b], yb[b], keys[b])
             for b in range(len(xb))]
    grads = jax.tree.map(lambda *g: sum(g) / len(g), *grads)
    params, opt_state = _update(tx)(params, grads, opt_state)
    return params, stats, opt_state
  return step


@functools.lru_cache(maxsize=None)  # one compile per (model, optimiser)
def _whole_net_step(model, tx):
  """A whole net's step: BatchNorm normalises with the batch's statistics, so
  the batch goes through the backbone at once, then the head per example."""
  @jax.jit
  def step(params, stats, opt_state, xb, yb, keys):
    def loss(p):
      variables = {'params': p}
      if stats:
        variables['batch_stats'] = stats
      f, upd = model.apply(variables, xb, True, method='embed',
                           mutable=['batch_stats'],
                           rngs={'dropout': jax.random.fold_in(keys[0], 1)})
      pred = _head_forward(model, p['head'], f, keys)
      return mse(pred, yb), upd.get('batch_stats', stats)

    (_, new_stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), new_stats, opt_state
  return step


def train_one(model, tx, params, x, y, rows, key, *, batch_size: int,
              epochs: int, drop_remainder: bool = False, batch_stats=None):
  """Trains one model; returns (params, batch_stats).

  params: the dense part's tree ('head'), or a whole net's params when
  batch_stats is given (then the backbone is trained too: No Transfer).
  rows: the model's rows of x and y, in training-list order.
  """
  whole_net = batch_stats is not None
  stats = batch_stats if whole_net else {}
  step = _whole_net_step(model, tx) if whole_net else _head_step(model, tx)
  x, y, rows = np.asarray(x), np.asarray(y, np.float32), np.asarray(rows)
  n = len(rows)
  per_epoch = n // batch_size if drop_remainder else -(-n // batch_size)
  opt_state = tx.init(params)
  t = 0
  for e in range(epochs):
    order = epoch_order(key, e, n)
    for j in range(per_epoch):
      batch = rows[order[j * batch_size:(j + 1) * batch_size]]
      keys = jnp.stack(slot_keys(key, t, len(batch)))
      params, stats, opt_state = step(params, stats, opt_state, x[batch],
                                      y[batch], keys)
      t += 1
  return params, (stats if whole_net else None)


def evaluate_one(model, variables, x, y, rows):
  """(sum of squared errors per output [P], count, predictions [n, P]) of one
  model on its test rows, dropout off; `variables` as model.apply takes them
  for a whole net, or {'params': {'head': ...}} for a dense part on features."""
  whole_net = 'features' in variables['params']
  xr = np.asarray(x)[np.asarray(rows)]
  if whole_net:
    pred = model.apply(variables, xr, False)
  else:
    pred = model.apply(variables, xr, False, method='predict_head')
  pred = np.asarray(pred, np.float64)
  err = np.square(pred - np.asarray(y, np.float64)[np.asarray(rows)])
  return err.sum(axis=0), len(rows), pred
