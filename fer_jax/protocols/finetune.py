"""Batched fine-tuning: many small personal models trained by one jitted call.

Paper 000 fine-tunes one model per subject x fold x training-set fraction x
sampler x dimension: thousands of copies of the same dense part, each on its own
subset of one subject's frames. Here they are stacked along a leading model axis
and trained by `jax.vmap` over models of a `lax.scan` over steps.

Shapes every model shares:
  * data: one array `x` (cached features, or images for whole nets) and one label
    array `y` [Ny, P]; model i reads x[x_off[i] + r], y[y_off[i] + r] for the
    frame rows r of its training list;
  * training list: `rows` [M, N] padded row indices, `n` [M] how many are real.

The step rule (the same in `train` and in the one-model `reference_train`):
  * an epoch is ceil(n_i / B) steps (floor with `drop_remainder`, for nets with
    BatchNorm, whose batch statistics padding would bias); model i runs
    epochs * that many steps and is frozen (state unchanged) after them;
  * epoch e visits the real entries in a random order: entry j gets 32 bits from
    fold_in(fold_in(order_key, e), j) and entries are sorted by them, so the
    order does not depend on how much padding follows (padded == unpadded);
  * the last batch of an epoch may be partial: its padded slots are masked out of
    the mean loss (so it equals the mean over the real examples);
  * dropout draws per example: slot b of step t uses the key
    fold_in(fold_in(dropout_key, t), b), so a slot's mask does not depend on the
    batch it sits in, nor on how many models train beside it.
A model's keys come from fold_in(study key, model id): batched == alone.

Chunks: `chunk_size` fits as many models as a memory budget allows (params,
grads, optimiser slots and activations per model, estimated analytically).

Devices and hosts: with a mesh (`model_mesh`, over every device of every
process once `jax.distributed` is up) the stacked models are split along its
'model' axis and the shared data replicated. `stack_on_mesh` builds a chunk's
per-model arrays from each device's own share only (no process holds the whole
grid), `replicate` puts the shared data on every device, and `to_host` gathers
per-model results to every process (`process_allgather`), outside the compiled
steps, which hold no collective.
"""
import dataclasses
import functools
import math
from typing import Any, Callable, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils

# Stream tags under a model's key.
_ORDER, _DROPOUT, _INIT, _ROUND = 1, 2, 3, 4

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


def head_apply(model) -> ApplyFn:
  """The dense part `model.predict_head` on features; params = the 'head' tree.

  Training vmaps the head over examples so each gets its own dropout key.
  """
  def apply(params, extra, x, keys, train):
    variables = {'params': {'head': params}}
    if not train:
      return model.apply(variables, x, False, method='predict_head'), extra
    one = lambda xi, k: model.apply(variables, xi[None], True,
                                    rngs={'dropout': k},
                                    method='predict_head')[0]
    return jax.vmap(one)(x, keys), extra
  return apply


def full_apply(model) -> ApplyFn:
  """The whole net on images; params = all params, extra = batch_stats (or {}).

  The backbone runs on the whole batch (BatchNorm needs it), the head per
  example, as in `head_apply`.
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


def mc_dropout_predict(apply_fn: ApplyFn, params, x, keys, frame_ids=None):
  """T stochastic passes [T, N, P] as ONE vmapped call over the T dropout keys.

  Frame i of pass t draws its mask from fold_in(fold_in(keys[t], _DROPOUT)...,
  frame_ids[i]) (see `example_keys`), so splitting frames into batches does not
  change the result.
  """
  ids = jnp.arange(x.shape[0]) if frame_ids is None else frame_ids
  def one(k):
    return apply_fn(params, {}, x, example_keys(k, 0, ids), True)[0]
  return jax.vmap(one)(keys)


# ------------------------------------------------------------------- engine

MODEL_AXIS = 'model'


def model_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: all, of every process) whose axis
  splits the models."""
  devices = np.asarray(jax.devices() if devices is None else devices)
  return jax.sharding.Mesh(devices, (MODEL_AXIS,),
                           axis_types=(jax.sharding.AxisType.Auto,))


def model_sharding(mesh: Optional[jax.sharding.Mesh]):
  """Leading (model) axis split over `mesh`; None without a mesh."""
  if mesh is None:
    return None
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(MODEL_AXIS))


def device_slots(mesh: jax.sharding.Mesh, m: int):
  """[(device, chunk slots it holds)] for this process's devices of `mesh`, for
  a chunk of m stacked models split along the model axis."""
  index = model_sharding(mesh).addressable_devices_indices_map((m,))
  return [(d, np.arange(m)[idx[0]]) for d, idx in index.items()]


def stack_on_mesh(mesh: Optional[jax.sharding.Mesh], m: int, build):
  """A chunk's stacked per-model arrays [m, ...], split along the model axis of
  `mesh`, of which this process builds only its own devices' share.

  build(slots) -> a tree of host (numpy) arrays [len(slots), ...] for the
  chunk slots `slots`; it is called once per device of this process, so no
  more than one device's share is built at a time. Without a mesh:
  build(arange(m)) on the default device.
  """
  if mesh is None:
    return jax.tree.map(jnp.asarray, build(np.arange(m)))
  sharding = model_sharding(mesh)
  per_device = [jax.device_put(build(slots), d)
                for d, slots in device_slots(mesh, m)]
  return jax.tree.map(
      lambda *shards: jax.make_array_from_single_device_arrays(
          (m,) + shards[0].shape[1:], sharding, list(shards)), *per_device)


def _spec(flag: str):
  """'m': split along the model axis; 'r': replicated."""
  return {'m': jax.sharding.PartitionSpec(MODEL_AXIS),
          'r': jax.sharding.PartitionSpec()}[flag]


def _out_specs(outs, f=_spec):
  return tuple(f(o) for o in outs) if isinstance(outs, tuple) else f(outs)


def _jit_shardings(mesh, ins: str, outs) -> dict:
  if mesh is None:
    return {}
  named = lambda flag: jax.sharding.NamedSharding(mesh, _spec(flag))  # noqa: E731
  return dict(in_shardings=tuple(named(f) for f in ins),
              out_shardings=_out_specs(outs, named))


def per_device(fn, mesh: Optional[jax.sharding.Mesh], ins: str, outs,
               jit: bool = True, **jit_kwargs):
  """`fn` run by every device of `mesh` on its own share: the arguments /
  outputs flagged 'm' in `ins` (one letter per argument) / `outs` (a letter, or
  a tuple of them) are split along the model axis, 'r' replicated.
  `jax.shard_map`, so the compiled program holds no collective whatever the
  ops (the SPMD partitioner all-gathers a vmapped conv's grouped kernels, for
  one). jit=False: not jitted (to call inside a jitted function). Without a
  mesh: `fn`, jitted."""
  if mesh is not None:
    fn = jax.shard_map(fn, mesh=mesh, in_specs=tuple(_spec(f) for f in ins),
                       out_specs=_out_specs(outs), check_vma=False)
  if not jit:
    return fn
  return jax.jit(fn, **_jit_shardings(mesh, ins, outs), **jit_kwargs)


def replicate(mesh: Optional[jax.sharding.Mesh], x):
  """`x` (a host array, the same on every process) on every device of `mesh`
  (the default device without one)."""
  if mesh is None:
    return jnp.asarray(x)
  x = np.asarray(x)
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.make_array_from_callback(x.shape, repl, lambda idx: x[idx])


def to_host(tree):
  """numpy copies of a tree of arrays, whole on every process: arrays whose
  shards live on several processes are all-gathered (`process_allgather`;
  every process must call this at the same point)."""
  leaves, treedef = jax.tree.flatten(tree)
  far = [i for i, a in enumerate(leaves)
         if isinstance(a, jax.Array) and not a.is_fully_addressable]
  out = [np.asarray(a) if i not in far else None for i, a in enumerate(leaves)]
  if far:
    got = multihost_utils.process_allgather([leaves[i] for i in far], tiled=True)
    for i, a in zip(far, got):
      out[i] = np.asarray(a)
  return jax.tree.unflatten(treedef, out)


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
    mesh: a 1-D mesh (axis 'model', see `model_mesh`): the stacked models are
    split over its devices, the shared data replicated, and each device runs
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
                           **_jit_shardings(mesh, 'mm', 'm'))
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


# ------------------------------------------------------- one model, plainly


def reference_train(apply_fn: ApplyFn, tx, recipe: Recipe, params, extra, x, y,
                    rows, key, step_fn=None):
  """One model, trained alone with a Python loop over unpadded batches.

  The definition `BatchedTrainer.train` must match (and the naive baseline of
  launch/bench_personalize.py): same orders, keys and masks, no padding.
  rows: [n] the model's rows of x and y (offsets already added).
  """
  step_fn = step_fn or make_reference_step(apply_fn, tx)
  rows = np.asarray(rows)
  n, b = len(rows), recipe.batch_size
  opt_state = tx.init(params)
  t = 0
  for e in range(recipe.epochs):
    order = np.asarray(epoch_order(key, e, n, n))
    for j in range(recipe.steps_per_epoch(n)):
      r = rows[order[j * b:(j + 1) * b]]
      keys = example_keys(key, t, jnp.arange(len(r)))
      params, extra, opt_state, _ = step_fn(params, extra, opt_state, x[r],
                                            y[r], keys, round_key(key, t))
      t += 1
  return params, extra


def make_reference_step(apply_fn: ApplyFn, tx):
  @jax.jit
  def step(params, extra, opt_state, xb, yb, keys, rkey):
    def loss_fn(p):
      pred, new_extra = apply_fn(p, extra, xb, keys, True)
      return masked_mse(pred, yb, jnp.ones(xb.shape[0], bool)), new_extra
    (loss, new_extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return apply_updates(params, updates, rkey), new_extra, opt_state, loss
  return step


# ------------------------------------------------------------ memory / chunks


def tree_bytes(tree) -> int:
  return int(sum(np.prod(np.shape(l)) * jnp.dtype(l.dtype).itemsize
                 for l in jax.tree.leaves(tree)))


def activation_elems(model, x_shape, method=None, mutable=()) -> int:
  """Elements of every intermediate output of one example's forward pass.

  Read from `capture_intermediates` inside `eval_shape`: no compile, no FLOPs.
  """
  def run(x):
    v = model.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)},
                   x, True, method=method)
    _, st = model.apply(v, x, True, method=method, capture_intermediates=True,
                        rngs={'dropout': jax.random.key(1)},
                        mutable=['intermediates', *mutable])
    return st['intermediates']
  inter = jax.eval_shape(run, jax.ShapeDtypeStruct((1,) + tuple(x_shape),
                                                   jnp.float32))
  return int(sum(np.prod(l.shape) for l in jax.tree.leaves(inter)))


def bytes_per_model(params, opt_state, extra, batch_size: int, x_elems: int,
                    act_elems: int, eval_rows: int, order_elems: int = 0) -> int:
  """params + grads + optimiser slots (+ the update's temporaries) + activations.

  Training keeps every intermediate for the backward pass and as much again for
  its gradients; evaluation keeps one forward over the test rows (no grads).
  order_elems: the epochs x padded-list-length int32 visiting orders.
  """
  p = tree_bytes(params)
  state = p + tree_bytes(opt_state) + tree_bytes(extra) + 4 * order_elems
  step = 2 * p + 4 * batch_size * (x_elems + 2 * act_elems)
  evaluation = 4 * eval_rows * (x_elems + act_elems)
  return state + max(step, evaluation)


def memory_budget(cpu_budget_bytes: int, fraction: float = 0.5) -> int:
  """Bytes to spend on a chunk per device: a fraction of the accelerator's free
  memory, or `cpu_budget_bytes` where a device reports none (CPU); the smallest
  over this process's devices and, with several processes, over all of them
  (an all-gather: every process must call it, and all size the same chunks)."""
  budgets = []
  for d in jax.local_devices():
    stats = d.memory_stats() or {}
    limit = stats.get('bytes_limit')
    budgets.append(int(fraction * (limit - stats.get('bytes_in_use', 0)))
                   if limit else int(cpu_budget_bytes))
  budget = min(budgets)
  if jax.process_count() > 1:  # in KiB: int32 on the wire
    kib = multihost_utils.process_allgather(np.int32(min(budget // 1024,
                                                         2**31 - 1)))
    budget = int(np.min(kib)) * 1024
  return budget


def chunk_size(per_model: int, budget: int, num_models: int,
               max_models: int = 0) -> int:
  """How many models fit the budget (at least 1, at most num_models)."""
  m = max(1, budget // max(per_model, 1))
  if max_models:
    m = min(m, max_models)
  return int(max(1, min(m, num_models)))


def stack_trees(trees):
  return jax.tree.map(lambda *l: np.stack(l), *trees)


def pad_models(a: np.ndarray, m: int, fill=0) -> np.ndarray:
  """Pads axis 0 of `a` to m entries with `fill` (dummy models never step)."""
  a = np.asarray(a)
  if a.shape[0] == m:
    return a
  pad = np.full((m - a.shape[0],) + a.shape[1:], fill, a.dtype)
  return np.concatenate([a, pad])
