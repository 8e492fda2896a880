"""Batched fine-tuning: many small models trained by one jitted call.

Paper 000 fine-tunes one model per subject x fold x training-set fraction x
sampler x dimension: thousands of copies of the same dense part, each on its own
subset of one subject's frames. Here they are stacked along a leading model axis
and trained by `jax.vmap` over models of a `lax.scan` over steps. How many fit a
chunk: train/memory.py; how a chunk is split over devices and hosts: the
model mesh of train/mesh.py.

Shapes every model shares:
  * data: one array `x` (cached features, or images for whole nets) and one label
    array `y` [Ny, P]; model i reads x[x_off[i] + r], y[y_off[i] + r] for the
    frame rows r of its training list;
  * training list: `rows` [M, N] padded row indices, `n` [M] how many are real.

The step rule, a contract (tests/protocols/reference_finetune.py re-derives it
to train one model plainly, and the engine must match it):
  * a model's key is fold_in(study key, model id), so batched == alone; under
    it, streams fold_in(key, tag): 1 order, 2 dropout, 4 rounding;
  * the loss is the affect task's: per output the mean squared error over the
    batch's examples, summed over outputs;
  * an epoch is ceil(n_i / B) steps (floor with `drop_remainder`, for nets with
    BatchNorm, whose batch statistics padding would bias); model i runs
    epochs * that many steps and is frozen (state unchanged) after them;
  * epoch e visits the real entries in a random order: entry j gets 32 bits from
    fold_in(fold_in(order stream, e), j) and entries are sorted by them (ties
    keep list order), so the order does not depend on how much padding follows
    (padded == unpadded);
  * the last batch of an epoch may be partial: its padded slots are masked out of
    the mean loss (so it equals the mean over the real examples);
  * dropout draws per example: slot b of step t (counted over all epochs) uses
    the key fold_in(fold_in(dropout stream, t), b), so a slot's mask does not
    depend on the batch it sits in, nor on how many models train beside it; a
    whole net's backbone draws from fold_in(slot 0's key, 1);
  * bfloat16 parameters are updated with stochastic rounding, at step t keyed
    by fold_in(rounding stream, t) (`apply_updates`).
"""
import dataclasses
from typing import Any, Callable, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from fer_jax.models import partition
from fer_jax.train.mesh import jit_shardings, per_device, to_host
from fer_jax.train.step import inference_batchnorm

# Stream tags under a model's key.
_ORDER, _DROPOUT, _ROUND = 1, 2, 4

# apply_fn(params, extra, x [B, ...], keys [B] or None, train) -> (pred [B, P],
# new extra). `extra` holds non-trained state (BatchNorm statistics), or {}.
ApplyFn = Callable[..., Tuple[jax.Array, Any]]


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How each model trains: batch size, epochs, full batches only or not."""
  batch_size: int = 16
  epochs: int = 10
  drop_remainder: bool = False

  def steps_per_epoch(self, n):
    """ceil(n / B) (floor with drop_remainder); numpy or jax integers."""
    b = self.batch_size
    return n // b if self.drop_remainder else (n + b - 1) // b

  def total_steps(self, n):
    return self.epochs * self.steps_per_epoch(n)


def model_keys(key: jax.Array, ids) -> jax.Array:
  """One key per model, fold_in(key, id): the same whatever chunk it is in."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(
      jnp.asarray(ids, jnp.int32))


def epoch_order(key: jax.Array, epoch, n, n_pad: int) -> jax.Array:
  """The order [n_pad] in which epoch `epoch` visits entries 0..n-1 (then pads)."""
  k = jax.random.fold_in(jax.random.fold_in(key, _ORDER), epoch)
  bits = jax.vmap(lambda j: jax.random.bits(jax.random.fold_in(k, j)))(
      jnp.arange(n_pad))
  # Real entries first, then by bits; lexsort is stable, ties keep index order.
  return jnp.lexsort((bits, jnp.arange(n_pad) >= n)).astype(jnp.int32)


def example_keys(key: jax.Array, step, ids) -> jax.Array:
  """Dropout keys of the batch slots (or frames) `ids` at step `step`."""
  k = jax.random.fold_in(jax.random.fold_in(key, _DROPOUT), step)
  return jax.vmap(lambda i: jax.random.fold_in(k, i))(jnp.asarray(ids))


def masked_mse(pred, y, mask):
  """Sum over outputs of the mean squared error over the unmasked rows.

  With one output this is the MSE; with several it is the affect task's loss
  (a mean per target, summed).
  """
  w = mask.astype(jnp.float32)[:, None]
  se = jnp.square(pred.astype(jnp.float32) - y.astype(jnp.float32))
  se = jnp.where(w > 0, se, 0.)  # padding may hold anything
  return jnp.sum(se * w) / jnp.maximum(jnp.sum(w), 1.)


# ------------------------------------------------------------- apply functions


def per_example(model, variables, x, keys, method=None):
  """`model.apply(variables, x[i:i+1], train=True)` for every example i, with
  its own dropout key keys[i] (vmapped), so an example's mask does not depend on
  the batch it sits in."""
  def one(xi, k):
    out = model.apply(variables, xi[None], True, rngs={'dropout': k},
                      method=method)
    return jax.tree.map(lambda a: a[0], out)
  return jax.vmap(one)(x, keys)


def head_apply(model) -> ApplyFn:
  """The dense part `model.predict_head` on features; params = the 'head' tree.

  Training vmaps the head over examples so each gets its own dropout key.
  """
  def apply(params, extra, x, keys, train):
    variables = {'params': {'head': params}}
    if not train:
      return model.apply(variables, x, False, method='predict_head'), extra
    return per_example(model, variables, x, keys, 'predict_head'), extra
  return apply


def full_apply(model) -> ApplyFn:
  """The whole net on images; params = all params, extra = batch_stats (or {}).

  The backbone runs on the whole batch (BatchNorm needs it; its dropout key is
  fold_in(keys[0], 1)), the head per example, as in `head_apply`.
  """
  def apply(params, extra, x, keys, train):
    variables = {'params': params}
    if extra:
      variables['batch_stats'] = extra
    if not train:
      return model.apply(variables, x, False), extra
    f, upd = model.apply(variables, x, True, method='embed',
                         mutable=['batch_stats'],
                         rngs={'dropout': jax.random.fold_in(keys[0], 1)})
    variables = {'params': {'head': params['head']}}
    one = lambda fi, k: model.apply(variables, fi[None], True,
                                    rngs={'dropout': k},
                                    method='predict_head')[0]
    return jax.vmap(one)(f, keys), upd.get('batch_stats', extra)
  return apply


def mc_dropout_predict(model, variables, x, keys, frame_ids=None,
                       method=None):
  """T stochastic passes [T, N, ...] of x [N, ...], ONE call vmapped over the T
  dropout keys: the study's MCDUE, the participant's proposals and the
  predictor's spread columns all sample here.

  A pass is `model.apply(..., train=True, method=method)` with every BatchNorm
  layer on its running statistics (`step.inference_batchnorm`): dropout samples,
  nothing else changes. Frame i of pass t draws its masks from
  example_keys(keys[t], 0, frame_ids)[i] (`per_example`), so splitting frames
  into batches does not change the result.
  """
  ids = jnp.arange(x.shape[0]) if frame_ids is None else frame_ids
  bn = partition.layer_paths(variables.get('batch_stats', {}))

  def one(k):
    with inference_batchnorm(bn):
      return per_example(model, variables, x, example_keys(k, 0, ids), method)
  return jax.vmap(one)(keys)


# ------------------------------------------------------------------- engine


def round_key(key: jax.Array, step) -> jax.Array:
  """The key of step `step`'s stochastic rounding (bf16 parameters only)."""
  return jax.random.fold_in(jax.random.fold_in(key, _ROUND), step)


def apply_updates(params, updates, key: jax.Array):
  """params + updates; bfloat16 leaves are rounded stochastically.

  With bf16 weights (8 mantissa bits) an SGD update of lr 1e-3 is mostly below
  half an ulp of the weight, so round-to-nearest drops it and training stalls.
  Rounding up with probability equal to the remainder keeps every update in
  expectation, so bf16 parameters, gradients and momentum train like float32.
  """
  leaves, treedef = jax.tree.flatten(params)
  ups = treedef.flatten_up_to(updates)
  keys = jax.random.split(key, len(leaves))
  out = []
  for p, u, k in zip(leaves, ups, keys):
    if p.dtype != jnp.bfloat16:
      out.append((p + u).astype(p.dtype))
      continue
    x = p.astype(jnp.float32) + u.astype(jnp.float32)
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = jax.random.bits(k, x.shape, jnp.uint32) & jnp.uint32(0xFFFF)
    bits = (bits + noise) & jnp.uint32(0xFFFF0000)  # exact in bf16
    out.append(jax.lax.bitcast_convert_type(bits, jnp.float32)
               .astype(jnp.bfloat16))
  return jax.tree.unflatten(treedef, out)


def _where(cond, new, old):
  return jax.tree.map(lambda a, b: jnp.where(cond, a, b), new, old)


@flax.struct.dataclass
class State:
  params: Any
  extra: Any
  opt_state: Any


@flax.struct.dataclass
class Subsets:
  """Per-model training lists: rows [M, N] (padded), n [M], offsets and keys."""
  rows: jax.Array
  n: jax.Array
  x_off: jax.Array
  y_off: jax.Array
  key: jax.Array


class BatchedTrainer:
  """Jitted, vmapped train / eval of stacked models sharing one apply function.

  Build once per (net part, recipe); shapes (models per chunk, padded list
  length) are the only things that trigger recompilation, so pad every chunk to
  the same sizes.
  """

  def __init__(self, apply_fn: ApplyFn, tx: optax.GradientTransformation,
               recipe: Recipe, segment_steps: int = 64, map_batch: int = 0,
               unroll: bool = False, mesh: Optional[jax.sharding.Mesh] = None):
    """map_batch: 0 vmaps all models of a chunk at once; k > 0 runs them k at a
    time (`lax.map(..., batch_size=k)`) inside the same jitted call. Same
    results, less memory.
    unroll: unroll the scan over a segment's steps. XLA:CPU runs convolutions
    inside a loop body ~10x slower than outside one (jax-ml/jax#12868), so
    whole nets on a CPU want unroll=True, a short segment and map_batch=0.
    mesh: a 1-D mesh (axis 'model', see `mesh.model_mesh`): the stacked models
    are split over its devices, the shared data replicated, and each device runs
    the vmapped code on its own share (`per_device`: shard_map), so the
    compiled programs hold no communication; chunks must be a multiple of its
    size."""
    self.apply_fn, self.tx, self.recipe = apply_fn, tx, recipe
    self.segment_steps, self.map_batch = segment_steps, map_batch
    self.unroll = unroll
    # With a mesh over several processes, build the inputs with
    # `stack_on_mesh` / `replicate`; results come back whole on every process.
    self.mesh = mesh

    def segment(state, t0, x, y, sub, orders):
      one = lambda s, sb, o: self._train_segment(s, t0, x, y, sb, o)  # noqa: E731
      return self._map(one, state, sub, orders)

    def evaluate(params, extra, x, y, rows, valid, x_off, y_off):
      one = lambda *a: self._eval_one(*a[:2], x, y, *a[2:])  # noqa: E731
      return self._map(one, params, extra, rows, valid, x_off, y_off)

    def orders(key, n, n_pad):
      return per_device(jax.vmap(lambda k, m: jax.vmap(
          lambda e: epoch_order(k, e, m, n_pad))(jnp.arange(recipe.epochs))),
                        mesh, 'mm', 'm', jit=False)(key, n)

    # 'm': split along the model axis, 'r': replicated (shared data, t0).
    self._segment = per_device(segment, mesh, 'mrrrmm', ('m', 'm'),
                               donate_argnums=0)
    self._eval = per_device(evaluate, mesh, 'mmrrmmmm', ('m', 'm', 'm'))
    self._init = per_device(jax.vmap(self._init_one), mesh, 'mm', 'm')
    # Sorting is slow next to a small head's step: one order per epoch, made
    # once per chunk, not one per step.
    self._orders = jax.jit(orders, static_argnums=2,
                           **jit_shardings(mesh, 'mm', 'm'))
    # Each model's last loss, kept on its device across segments (no host sync
    # per segment, nothing gathered until the chunk ends).
    self._no_loss = per_device(
        lambda n: jnp.full(n.shape, jnp.nan, jnp.float32), mesh, 'm', 'm')
    self._last_loss = per_device(_last_loss, mesh, 'mm', 'm')

  def _map(self, fn, *args):
    if self.map_batch:
      return jax.lax.map(lambda a: fn(*a), args, batch_size=self.map_batch)
    return jax.vmap(fn)(*args)

  # --- one model, vmapped above

  def _init_one(self, params, extra):
    return State(params, extra, self.tx.init(params))

  def _step(self, state, t, x, y, sub, orders):
    rec, b = self.recipe, self.recipe.batch_size
    n_pad = sub.rows.shape[0]
    spe = rec.steps_per_epoch(sub.n)
    active = t < rec.epochs * spe
    spe = jnp.maximum(spe, 1)  # dummy models (n = 0) never step
    order = orders[jnp.minimum(t // spe, rec.epochs - 1)]
    pos = (t % spe) * b + jnp.arange(b)
    valid = pos < sub.n
    r = sub.rows[order[jnp.minimum(pos, n_pad - 1)]]
    xb, yb = x[sub.x_off + r], y[sub.y_off + r]
    keys = example_keys(sub.key, t, jnp.arange(b))

    def loss_fn(params):
      pred, extra = self.apply_fn(params, state.extra, xb, keys, True)
      return masked_mse(pred, yb, valid), extra

    (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    new = State(apply_updates(state.params, updates, round_key(sub.key, t)),
                extra, opt_state)
    return _where(active, new, state), jnp.where(active, loss, jnp.nan)

  def _train_segment(self, state, t0, x, y, sub, orders):
    steps = t0 + jnp.arange(self.segment_steps)
    return jax.lax.scan(lambda s, t: self._step(s, t, x, y, sub, orders), state,
                        steps, unroll=self.unroll)

  def _eval_one(self, params, extra, x, y, rows, valid, x_off, y_off):
    pred, _ = self.apply_fn(params, extra, x[x_off + rows], None, False)
    err = jnp.square(pred - y[y_off + rows].astype(jnp.float32))
    err = jnp.where(valid[:, None], err, 0.)
    return jnp.sum(err, axis=0), jnp.sum(valid), pred

  # --- public

  def init(self, params, extra) -> State:
    """Stacked params [M, ...] (and extra) -> stacked optimiser state."""
    return self._init(params, extra)

  def train(self, state: State, x, y, sub: Subsets) -> Tuple[State, np.ndarray]:
    """Runs every model of the chunk to its last step; returns (state, last
    loss [M], numpy, whole on every process)."""
    total = int(np.max(self.recipe.total_steps(to_host(sub.n))))
    last = self._no_loss(sub.n)
    orders = self._orders(sub.key, sub.n, sub.rows.shape[1])
    for t0 in range(0, total, self.segment_steps):
      state, losses = self._segment(state, jnp.int32(t0), x, y, sub, orders)
      last = self._last_loss(last, losses)
    return state, to_host(last)

  def evaluate(self, state: State, x, y, rows, valid, x_off, y_off):
    """Per model: (sum of squared errors [M, P], count [M], predictions), numpy,
    whole on every process."""
    return tuple(to_host(self._eval(state.params, state.extra, x, y, rows,
                                    valid, x_off, y_off)))


def _last_loss(last, losses):
  """The last non-NaN loss of each row of `losses` [M, T] (else `last` [M])."""
  seen = ~jnp.isnan(losses)
  idx = losses.shape[1] - 1 - jnp.argmax(seen[:, ::-1], axis=1)
  val = jnp.take_along_axis(losses, idx[:, None], axis=1)[:, 0]
  return jnp.where(seen.any(axis=1), val, last)


def stack_trees(trees):
  return jax.tree.map(lambda *l: np.stack(l), *trees)


def pad_models(a: np.ndarray, m: int, fill=0) -> np.ndarray:
  """Pads axis 0 of `a` to m entries with `fill` (dummy models never step)."""
  a = np.asarray(a)
  if a.shape[0] == m:
    return a
  pad = np.full((m - a.shape[0],) + a.shape[1:], fill, a.dtype)
  return np.concatenate([a, pad])
