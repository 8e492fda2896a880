"""Training the plan's models in chunks, and resuming.

Every model of a kind (dense parts on features, or whole nets on images) trains
in chunks of stacked models (train/batched.py); each chunk is saved atomically
as workdir/personal/chunk-<kind>-<first id>-<count>.npz, so a study that is
stopped resumes with the models it has not finished. Chunks are cut from the
sorted list of all the kind's models, so a resumed study trains the same chunks
as an uninterrupted one; a damaged chunk file is moved aside and its models
train again.
"""
import glob
import os
import time
from typing import Callable, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from fer_jax import atomic
from fer_jax.protocols.personal import files
from fer_jax.protocols.personal import plan as plan_lib
from fer_jax.protocols.personal.data import float_images
from fer_jax.protocols.personal.plan import Plan
from fer_jax.train import batched
from fer_jax.train import distributed
from fer_jax.train import memory
from fer_jax.train import mesh as mesh_lib
from fer_jax.train import optim

# A stream under the models' key: whole nets' initial weights.
_INIT = 4
_DUMMY_ID = 2**31 - 1


class StudyInterrupted(RuntimeError):
  """Raised by `run_study` when `max_chunks` stops it before the end."""


class StudyPreempted(distributed.Preempted):
  """Raised by `run_study` after a SIGTERM: the chunks trained so far are
  saved; the same command resumes with the rest."""

  def __init__(self, chunks: int, done: int, total: int):
    Exception.__init__(  # pylint: disable=non-parent-init-called
        self, f'Preempted: saved {chunks} chunk(s) of personal models ({done} '
        f'of {total} models done) and stopped. Run the same command again to '
        'resume.')
    self.step = chunks


# Schedules that count steps only: the models of a chunk have epochs of
# different lengths, so no schedule in epochs or in a run's length fits them.
STEP_SCHEDULES = ('constant', 'exponential')


def make_tx(section):
  """The optimiser of a study section (finetune / no_transfer): its `optim`
  (grad_clip_norm included) and its `schedule` (default constant), counted
  in each model's own steps."""
  schedule = dict(section.get('schedule', None) or {'name': 'constant'})
  if schedule['name'] not in STEP_SCHEDULES:
    raise ValueError(f'schedule {schedule["name"]!r}: the study trains models '
                     'of different sizes together; use one of '
                     f'{", ".join(STEP_SCHEDULES)} (counted in steps).')
  config = ml_collections.ConfigDict({'optim': dict(section.optim),
                                      'schedule': schedule})
  return optim.make_optimizer(config, steps_per_epoch=None, total_steps=None)


def _recipe(section, drop_remainder=False) -> batched.Recipe:
  return batched.Recipe(batch_size=section.batch_size, epochs=section.epochs,
                        drop_remainder=drop_remainder)


def _chunk_problem(z: dict) -> Optional[str]:
  n = len(z['ids'])
  if z['ids'].ndim != 1 or any(len(z[k]) != n for k in ('sse', 'count', 'loss')):
    return ('members of different lengths: ' +
            ', '.join(f'{k} {z[k].shape}' for k in ('ids', 'sse', 'count', 'loss')))
  return None


def done_models(workdir: str) -> Dict[int, dict]:
  """Finished models from the chunk files: id -> {sse, count, loss}. A damaged
  chunk file is moved aside (one warning line): its models train again."""
  done = {}
  for path in sorted(glob.glob(os.path.join(workdir, 'personal', 'chunk-*.npz'))):
    z = files.read_npz(path, ('ids', 'sse', 'count', 'loss'),
                       'train its models again', check=_chunk_problem)
    if z is None:
      continue
    for i, sse, cnt, loss in zip(z['ids'], z['sse'], z['count'], z['loss']):
      done[int(i)] = dict(sse=sse, count=int(cnt), loss=float(loss))
  return done


def agreed_done_models(workdir: str, plan: Plan, nets) -> Dict[int, dict]:
  """`done_models` as process 0 reads them, on every process: all of them
  then skip the same models and cut the same chunks."""
  if jax.process_count() == 1:
    return done_models(workdir)
  outputs = [len(nets[b].targets) for b in plan.net]
  p = max(outputs, default=1)
  has = np.zeros(len(plan), bool)
  sse = np.full((len(plan), p), np.nan, np.float32)
  count = np.zeros(len(plan), np.int32)
  loss = np.full(len(plan), np.nan, np.float32)
  if distributed.is_lead():
    for i, r in done_models(workdir).items():
      if 0 <= i < len(plan):
        has[i], count[i], loss[i] = True, r['count'], r['loss']
        sse[i, :len(r['sse'])] = r['sse']
  has, sse, count, loss = distributed.from_lead((has, sse, count, loss))
  return {i: dict(sse=sse[i, :outputs[i]], count=int(count[i]),
                  loss=float(loss[i])) for i in np.flatnonzero(has).tolist()}


def _on_pixels(apply: batched.ApplyFn, lookup: np.ndarray) -> batched.ApplyFn:
  """`apply` on uint8 images: each batch becomes its float32 values by a
  gather from `lookup` (PersonalData.lookup), bitwise the preprocessed images."""
  def on_pixels(params, extra, x, keys, train):
    return apply(params, extra, float_images(x, jnp.asarray(lookup)), keys,
                 train)
  return on_pixels


class Runner:
  """Trains the plan's models of one kind in chunks; saves each chunk.

  lookup: with uint8 images `x` (kind 'full'), their value table
  (PersonalData.lookup): the images stay uint8 on every device and each
  batch is looked up inside the step."""

  def __init__(self, config, workdir, kind, plan, nets, x, y, x_block: int,
               y_block: int, lookup: Optional[np.ndarray] = None):
    self.config, self.workdir, self.kind, self.plan = config, workdir, kind, plan
    self.nets = nets
    model = nets[0].model
    section = config.finetune if kind == 'head' else config.no_transfer
    has_bn = kind == 'full' and 'batch_stats' in jax.eval_shape(
        lambda: model.init({'params': jax.random.key(0)},
                           jnp.zeros((1,) + x.shape[1:])))
    self.recipe = _recipe(section, drop_remainder=has_bn)
    # bfloat16 dense parts: params, grads, momentum, features and compute in
    # bf16 halve the bytes every step moves (the loss and RMSE stay float32).
    self.dtype = jnp.dtype(section.get('dtype', 'float32'))
    if self.dtype != jnp.float32:
      if kind != 'head':
        raise ValueError('no_transfer.dtype must be float32; only the dense '
                         'parts (finetune.dtype) train in reduced precision.')
      model = model.clone(dtype=self.dtype)
      x = np.asarray(x).astype(self.dtype)
    apply = (batched.head_apply(model) if kind == 'head'
             else batched.full_apply(model))
    if lookup is not None:
      apply = _on_pixels(apply, lookup)
    rt = config.runtime
    # Several devices (of one process or of all, after jax.distributed): each
    # trains its share of a chunk's models (no communication); chunks are then
    # a multiple of the device count. (shard_models=False: every process
    # trains every model on its first device.)
    self.mesh = (mesh_lib.model_mesh() if jax.device_count() > 1
                 and rt.get('shard_models', True) else None)
    self.trainer = batched.BatchedTrainer(
        apply, make_tx(section), self.recipe,
        rt.get(f'{kind}_segment_steps', rt.segment_steps),
        rt.get(f'{kind}_map_batch', 0), rt.get(f'{kind}_unroll', False),
        mesh=self.mesh)
    # Shared by all models: on every device, once (pixels: uint8, looked up).
    self.x = mesh_lib.replicate(self.mesh, x)
    self.y = mesh_lib.replicate(self.mesh, y)
    # Model i reads rows x[net_i * x_block + r] and y[net_i * y_block + r].
    self.x_block, self.y_block = x_block, y_block
    self.key = jax.random.fold_in(jax.random.key(config.seed), plan_lib.MODELS)
    self.model = model
    self.sample_shape = x.shape[1:]
    self._heads = (batched.stack_trees([n.head for n in nets])
                   if kind == 'head' else None)
    sample = jnp.zeros((1,) + self.sample_shape)
    self._init_fn = jax.vmap(lambda k: model.init(
        {'params': k, 'dropout': k}, sample, False))
    # Per-model keys from model ids, and whole nets from their keys: each
    # device makes its own models'.
    self._fresh = mesh_lib.per_device(self._init_fn, self.mesh, 'm', 'm')
    self._keys = mesh_lib.per_device(
        lambda ids: batched.model_keys(self.key, ids), self.mesh, 'm', 'm')
    self._init_keys = mesh_lib.per_device(lambda ids: batched.model_keys(
        jax.random.fold_in(self.key, _INIT), ids), self.mesh, 'm', 'm')

  def init_params(self, nets_idx, ids):
    """Stacked initial params/extra of the models: the pre-trained dense part of
    their net (heads), or a fresh init from the model's key (whole nets), on
    the default device."""
    if self.kind == 'head':
      return jax.tree.map(jnp.asarray, self._head_params(nets_idx)), {}
    v = self._init_fn(batched.model_keys(jax.random.fold_in(self.key, _INIT),
                                         ids))
    return v['params'], v.get('batch_stats', {})

  def _head_params(self, nets_idx):
    """The stacked pre-trained heads of nets `nets_idx`, numpy, in self.dtype."""
    return jax.tree.map(lambda h: np.asarray(h[nets_idx]).astype(self.dtype),
                        self._heads)

  def per_model_bytes(self, n_pad, test_pad):
    one = lambda t: jax.tree.map(lambda a: a[0], t)  # noqa: E731
    params, extra = jax.eval_shape(lambda: one(self.init_params(
        np.zeros(1, int), np.zeros(1, int))))
    opt = jax.eval_shape(self.trainer.tx.init, params)
    if self.kind == 'head':
      act = memory.activation_elems(self.model, self.sample_shape,
                                    method='predict_head')
    else:
      act = memory.activation_elems(self.model, self.sample_shape,
                                    mutable=('batch_stats',))
    return memory.bytes_per_model(params, opt, extra, self.recipe.batch_size,
                                  int(np.prod(self.sample_shape)), act,
                                  test_pad,
                                  order_elems=self.recipe.epochs * n_pad)

  def run(self, ids_all: Sequence[int], done: dict, counter: dict,
          max_chunks: Optional[int], on_chunk: Optional[Callable],
          preemption: Optional[distributed.Preemption] = None):
    plan, rt = self.plan, self.config.runtime
    if not len(ids_all):
      return
    n_pad = max(len(plan.train[i]) for i in ids_all)
    test_pad = max(len(plan.test[i]) for i in ids_all)
    # Similar sizes share a chunk, so few steps are spent on finished models.
    todo = sorted((i for i in ids_all if i not in done),
                  key=lambda i: (-len(plan.train[i]), i))
    if not todo:
      return
    per_model = self.per_model_bytes(n_pad, test_pad)
    shared = memory.tree_bytes((self.x, self.y))  # replicated on every device
    # Per device, the same on every process; the chunk fills all of them.
    budget = memory.memory_budget(rt.memory_budget_mb * 2**20) - shared
    devices = self.mesh.size if self.mesh is not None else 1
    m = memory.chunk_size(per_model, max(budget, per_model) * devices,
                          len(ids_all),
                          rt.get(f'{self.kind}_max_models_per_chunk', 0)
                          or rt.get('max_models_per_chunk', 0))
    m = -(-m // devices) * devices  # whole models per device
    # Chunks are cut from the sorted list of ALL the kind's models, so a resumed
    # study trains the same chunks as an uninterrupted one.
    order = sorted(ids_all, key=lambda i: (-len(plan.train[i]), i))
    chunks = [order[i:i + m] for i in range(0, len(order), m)]
    chunks = [[i for i in c if i not in done] for c in chunks]
    chunks = [c for c in chunks if c]
    files.log(self.config, f'[{self.kind}] {len(todo)} of {len(ids_all)} '
              f'models to train, {len(chunks)} chunk(s) of <= {m} '
              f'(~{per_model / 2**20:.2f} MiB per model, budget '
              f'{(budget + shared) / 2**20:.0f} MiB; shared inputs '
              f'{self.x.dtype} {shared / 2**20:.1f} MiB on every device)')
    for ci, ids in enumerate(chunks):
      if max_chunks is not None and counter['chunks'] >= max_chunks:
        raise StudyInterrupted(f'Stopped after {counter["chunks"]} chunk(s).')
      # Every process, before every chunk: the chunk count is the step of the
      # preemption sync point (all processes train the same chunks).
      if preemption is not None and preemption.reached(counter['chunks']):
        raise StudyPreempted(counter['chunks'], len(done), len(plan))
      t = time.perf_counter()
      res = self._train_chunk(ids, m, n_pad, test_pad)  # whole, everywhere
      path = os.path.join(self.workdir, 'personal',
                          f'chunk-{self.kind}-{ids[0]:07d}-{len(ids):05d}.npz')
      if distributed.is_lead():
        atomic.savez(path, ids=np.asarray(ids), **res)
      for j, i in enumerate(ids):
        done[i] = dict(sse=res['sse'][j], count=int(res['count'][j]),
                       loss=float(res['loss'][j]))
      counter['chunks'] += 1
      dt = time.perf_counter() - t
      steps = int(sum(self.recipe.total_steps(len(plan.train[i])) for i in ids))
      if len(chunks) <= 20 or (ci + 1) % (len(chunks) // 10) == 0:
        files.log(self.config, f'[{self.kind}] chunk {ci + 1}/{len(chunks)}: '
                  f'{len(ids)} models, {steps} model-steps in {dt:.1f} s '
                  f'({steps / dt:.0f}/s)')
      if on_chunk is not None:
        on_chunk(dict(kind=self.kind, index=counter['chunks'], ids=list(ids),
                      seconds=dt, path=path))

  def _train_chunk(self, ids, m, n_pad, test_pad):
    """Trains the models `ids` as one chunk of m slots (dummies after them);
    every device gets only its own slots' inputs and starting params."""
    plan, n_real = self.plan, len(ids)
    ids_pad = batched.pad_models(np.asarray(ids), m, _DUMMY_ID)

    def build(slots):  # the chunk's per-model inputs (numpy), for `slots` only
      k = len(slots)
      rows = np.zeros((k, n_pad), np.int32)
      n = np.zeros(k, np.int32)
      test = np.zeros((k, test_pad), np.int32)
      valid = np.zeros((k, test_pad), bool)
      net = np.zeros(k, np.int32)
      for j, s in enumerate(slots):
        if s >= n_real:
          continue  # a dummy: never steps, net 0, empty test set
        i = ids[s]
        tr, te = plan.train[i], plan.test[i]
        rows[j, :len(tr)], n[j] = tr, len(tr)
        test[j, :len(te)], valid[j, :len(te)] = te, True
        net[j] = plan.net[i]
      out = dict(rows=rows, n=n, test=test, valid=valid,
                 x_off=net * np.int32(self.x_block),
                 y_off=net * np.int32(self.y_block),
                 ids=ids_pad[slots].astype(np.int32))
      if self.kind == 'head':
        out['params'] = self._head_params(net)
      return out

    a = mesh_lib.stack_on_mesh(self.mesh, m, build)
    if self.kind == 'head':
      params, extra = a['params'], {}
    else:
      v = self._fresh(self._init_keys(a['ids']))
      params, extra = v['params'], v.get('batch_stats', {})
    state = self.trainer.init(params, extra)
    sub = batched.Subsets(a['rows'], a['n'], a['x_off'], a['y_off'],
                     self._keys(a['ids']))
    state, loss = self.trainer.train(state, self.x, self.y, sub)
    sse, cnt, _ = self.trainer.evaluate(state, self.x, self.y, a['test'],
                                        a['valid'], a['x_off'], a['y_off'])
    return dict(sse=sse[:n_real], count=cnt[:n_real], loss=loss[:n_real])

