"""Config-driven training: one loop that every method reuses.

    train_and_evaluate(config, workdir)

builds the task, model, data and optimiser named in `config`, resumes from the
newest checkpoint in `workdir` if there is one, trains with a jitted data-parallel
step, evaluates every `eval_every_steps`, keeps the best checkpoint by
`best_metric`, and writes `metrics.jsonl` and `results.json`.

The training data, one source or a mixture, comes from one entry point
(`fer_jax.data.train_data.build_train`). Data options this loop reads beyond
one train source:
  data.mixture       several training datasets mixed by grain
                     (fer_jax/data/mixing.py); a task without union labels
                     (`task.union_labels`: the 'affect' task) needs every
                     entry to annotate one of its targets
  data.test_sources  {prefix: data section} evaluated after training on
                     other datasets than `data.name/source` (e.g. 004 trains on
                     KDEF + AffectNet, validates on KDEF and tests on FER-2013):
                     each section names `name`, `source`, optional `split`
                     ('test'), `crop` and `eval_records`; metrics land in
                     results.json as '<prefix>/<metric>'
  data.normalize='featurewise' and task.class_weights='balanced' need
  statistics of the training data; `derived_config` computes them once and
  they are written into the run's config.json (data.featurewise_stats,
  task.class_counts), so evaluation and prediction reuse them.
  frozen_bn='inference': Keras-style frozen BatchNorm, the BatchNorm layers of
  the frozen part (config.trainable) run on their moving statistics and do not
  update them (fer_jax/train/step.py).
"""
import copy
import functools
import os
import time
from typing import Dict

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from fer_jax.data import pipeline
from fer_jax.data import statistics
from fer_jax.data.sources import get_source
from fer_jax.data.train_data import build_train
from fer_jax.evaluate.evaluator import Evaluator
from fer_jax.face import points
from fer_jax.models import get_model
from fer_jax.tasks import get_task
from fer_jax.train import callbacks as callbacks_lib
from fer_jax.train import checkpoint as ckpt_lib
from fer_jax.train.checkpoint import NonFiniteError  # noqa: F401  (re-exported)
from fer_jax.train import distributed
from fer_jax.train import mesh as mesh_lib
from fer_jax.train import optim
from fer_jax.train.logging import MetricLog, write_json
from fer_jax.train import init as init_lib
from fer_jax.train.state import create_state, init_state, variables_of
from fer_jax.train.step import make_eval_step, make_train_step


# The workdir's config: validated before it is written, compared on resume
# (check_workdir_config is re-exported: stages and the study call it here).
from fer_jax.train.workdir import (  # noqa: E402,F401
    check_workdir_config, stored_config as _stored_config)


def derived_config(config: ml_collections.ConfigDict, workdir: str = None):
  """`config` with the statistics of its training data that it asks for:

  data.featurewise_stats  when data.normalize == 'featurewise' (Keras'
                          featurewise centre / std: per-channel mean and std
                          of the training images, pixel units)
  task.class_counts       when the affect task has class_weights='balanced'
                          (004's class balancing; counts of the training
                          expression labels)

  Values already in the config are kept; a workdir's config.json that holds
  them is reused (a resumed run does not recompute them); else they are
  computed once from the training data (`data.featurewise_records` > 0: the
  pixel statistics from that many records per source). Returns `config`
  itself when nothing is missing, else a copy.
  """
  data, task = config.data, config.task
  need_stats = (data.get('normalize') == 'featurewise'
                and not data.get('featurewise_stats'))
  need_counts = (task.get('name') == 'affect'
                 and task.get('class_weights') == 'balanced'
                 and not task.get('class_counts'))
  if not (need_stats or need_counts):
    return config
  stored = _stored_config(workdir)
  c = copy.deepcopy(config)
  with c.unlocked():
    if need_stats:
      stats = stored.get('data', {}).get('featurewise_stats')
      if not stats:
        stats = statistics.featurewise_stats_of_config(data, points.find_points)
        print(f'Feature-wise normalisation: mean {np.round(stats["mean"], 3)}, '
              f'std {np.round(stats["std"], 3)} (training images).', flush=True)
      c.data.featurewise_stats = ml_collections.ConfigDict(
          {'mean': tuple(stats['mean']), 'std': tuple(stats['std'])})
    if need_counts:
      counts = stored.get('task', {}).get('class_counts')
      if not counts:
        counts = statistics.class_counts(
            data, num_classes=c.task.get('expression_classes', 7))
        print(f'Class balancing: training class counts {np.round(counts, 1)}.',
              flush=True)
      c.task.class_counts = tuple(float(v) for v in counts)
  return c


def eval_data_config(data_config, section=None):
  """`config.data` for evaluating on the dataset a `data.test_sources`
  section names (name, source, crop, eval_records); itself when None."""
  if not section:
    return data_config
  d = copy.deepcopy(data_config)
  with d.unlocked():
    for k in ('name', 'source', 'crop', 'eval_records'):
      if k in section:
        d[k] = copy.deepcopy(section[k])
  return d


def check_expression_classes(task, source, name: str):
  """A source declaring contempt (8 expression names) needs an 8-class task,
  and a 7-class source a 7-class one: label 7 must never meet 7 outputs."""
  names = getattr(source, 'expression_names', None)
  n = getattr(task, 'expression_classes', None)
  if names is None or n is None or 'expression' not in getattr(task, 'targets', ()):
    return
  if len(names) != n:
    raise ValueError(
        f'Dataset {name!r} declares {len(names)} expression classes {tuple(names)}, '
        f'but task.expression_classes is {n}; set --config.task.expression_classes='
        f'{len(names)} (or pick the 7-class subset of the dataset).')


def build_model(config, task):
  kwargs = dict(config.model)
  name = kwargs.pop('name')
  dtype = jnp.bfloat16 if config.get('bf16', False) else jnp.float32
  return get_model(name, num_outputs=task.num_outputs, dtype=dtype, **kwargs)


def trainable_mask(model, params, sample, spec: str):
  """None (train everything) or the bool mask of `config.trainable`."""
  if spec in (None, 'all'):
    return None
  from fer_jax.models import partition
  order = partition.layer_order(model, sample) if spec.startswith('last:') else None
  return partition.trainable_mask(params, spec, order=order)


FROZEN_BN = ('train', 'inference')


def frozen_batchnorm(config, mask, batch_stats):
  """BatchNorm layers that run in inference mode: with
  `config.frozen_bn='inference'`, those `config.trainable` freezes (Keras'
  frozen BatchNorm); none with 'train' (the default: every BatchNorm in
  training mode, its statistics updated, as in torch)."""
  mode = config.get('frozen_bn', 'train')
  if mode not in FROZEN_BN:
    raise ValueError(f'config.frozen_bn must be one of {FROZEN_BN}, got {mode!r}')
  if mode == 'train' or mask is None:
    return ()
  from fer_jax.models import partition
  return tuple(partition.frozen_batchnorm_layers(mask, batch_stats))


class Trainer:
  """The pieces of one run, built once from its config."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    config = derived_config(config, workdir)
    self.config, self.workdir = config, workdir
    self.task = get_task(**config.task)
    self.model = build_model(config, self.task)
    self.mesh = mesh_lib.data_mesh()
    # One source or a mixture (config.data.mixture); a task without union
    # labels reads the canonical label fields of every mixture entry.
    self.train_data = build_train(config.data, self.task.union_labels,
                                  getattr(self.task, 'targets', ()))
    if self.train_data.source is not None:
      check_expression_classes(self.task, self.train_data.source, config.data.name)
    num_train = self.train_data.num_records
    self.batch_size = config.batch_size
    self.steps_per_epoch = pipeline.steps_per_epoch(num_train, self.batch_size)
    self.total_steps = config.get('total_steps') or (
        config.num_epochs * self.steps_per_epoch)
    sample = jnp.zeros((1, config.data.image_size, config.data.image_size,
                        config.data.channels), jnp.float32)
    rng = jax.random.key(config.seed)
    shapes = jax.eval_shape(
        lambda: self.model.init({'params': rng, 'dropout': rng}, sample))
    mask = trainable_mask(self.model, shapes['params'], sample,
                          config.get('trainable', 'all'))
    self.tx = optim.make_optimizer(config, self.steps_per_epoch, self.total_steps,
                                   mask)
    self.frozen_bn = frozen_batchnorm(config, mask, shapes.get('batch_stats', {}))
    state = init_state(self.model, self.tx, rng, sample)
    # Pretrained weights start a fresh run only: a resumed one restores its own
    # checkpoint, so the file (maybe gone by now) is not read.
    if init_lib.has_init(config) and not ckpt_lib.saved_steps(workdir):
      variables = init_lib.initial_variables(config, variables_of(state))
      state = create_state(variables, self.tx, jax.random.wrap_key_data(state.rng))
    self.state = jax.device_put(state, mesh_lib.replicated(self.mesh))
    repl = mesh_lib.replicated(self.mesh)
    # Only the trainable leaves are differentiated: a frozen base costs no
    # backward pass.
    self.train_step = jax.jit(make_train_step(self.model, self.task, self.tx,
                                              self.frozen_bn, trainable=mask),
                              out_shardings=(repl, repl), donate_argnums=0)
    self.eval_step = jax.jit(make_eval_step(self.model, self.task))

  def preprocess(self, split: str, data_config=None):
    data_config = data_config or self.config.data
    return pipeline.preprocess_from_config(
        data_config, name=f'{data_config.name}/{split}', detector=points.find_points)

  def evaluator(self, split: str, data=None) -> Evaluator:
    """The Evaluator of a whole split, each process reading its share of the
    global batches; `data`: a `data.test_sources` section (another dataset
    than config.data's)."""
    data_config = eval_data_config(self.config.data, data)
    source = pipeline.limit(get_source(data_config, split),
                            data_config.get('eval_records', 0))
    return Evaluator(self.eval_step, source, self.preprocess(split, data_config),
                     self.config.get('eval_batch_size', self.batch_size),
                     report=self.task.report,
                     put_batch=functools.partial(mesh_lib.global_batch, mesh=self.mesh),
                     num_threads=self.config.data.num_threads)

  def evaluate(self, state, split: str, prefix: str = 'val',
               data=None) -> Dict[str, float]:
    """Task metrics of `state` on a whole split, gathered from every process."""
    metrics = self.evaluator(split, data).run(state).metrics
    return {f'{prefix}/{k}': v for k, v in metrics.items()}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run of `config` in `workdir`; returns final metrics.

  On SIGTERM every process saves a checkpoint at one agreed step and this
  raises `distributed.Preempted` (no results.json): run it again to resume.
  """
  with distributed.Preemption() as preemption:
    return _train_and_evaluate(config, workdir, preemption)


def _train_and_evaluate(config, workdir, preemption) -> dict:
  config = derived_config(config, workdir)
  check_workdir_config(config, workdir)
  t = Trainer(config, workdir)
  best_metric, best_mode = config.get('best_metric') or t.task.primary_metric[0], (
      config.get('best_mode') or t.task.primary_metric[1])
  ckpts = ckpt_lib.Checkpoints(workdir, keep=config.get('keep_checkpoints', 2),
                               best_metric=best_metric, best_mode=best_mode)
  state = ckpts.restore_latest(ckpt_lib.abstract_like(t.state)) or t.state
  start = int(state.step)
  log = MetricLog(workdir, resume_step=start)
  if start:
    print(f'Resuming {workdir} from step {start}.', flush=True)

  ds = t.train_data.dataset(t.preprocess(config.data.train_split), t.batch_size,
                            t.total_steps, config.seed, jax.process_index(),
                            jax.process_count())
  batches = pipeline.to_iterator(ds, start=start, num_threads=config.data.num_threads)
  progress = _Progress(start, t.total_steps, t.batch_size, enabled=config.get('progress', True))
  pending = []
  last_eval = None  # (the state evaluated, its metrics): the final one may be it
  cbs = callbacks_lib.from_config(config, workdir, best_metric, best_mode,
                                 steps_per_epoch=t.steps_per_epoch)
  cbs.restore(start)
  preemption.reached(start)  # the preemption sync point counts from here

  def stop_if_nonfinite(step):
    # Before anything of `step` is logged or saved: the losses pulled so far.
    try:
      _check_finite_losses(pending, step, workdir, ckpts.latest_step())
    except NonFiniteError:
      progress.close()
      ckpts.wait()  # the checkpoints already written are good: let them finish
      log.close()
      ckpts.close()
      raise

  def write_train_row(step, state, pending):
    # One fetch for the row: every metric of every pending step, and lr_scale.
    pending, lr_scale = jax.device_get((pending, state.lr_scale))
    row = {k: float(np.mean([m[k] for m in pending])) for k in pending[0]}
    row.update(epoch=step / t.steps_per_epoch, lr_scale=float(lr_scale))
    log.write(step, {f'train/{k}': v for k, v in row.items()})
    progress.update(step, row['loss'])
    return []

  for step in range(start + 1, t.total_steps + 1):
    if cbs.stopped:  # a resumed run that had already stopped early
      break
    batch = mesh_lib.global_batch(next(batches), t.mesh)
    state, metrics = t.train_step(state, batch)
    pending.append(metrics)
    if step % config.log_every_steps == 0 or step == t.total_steps:
      stop_if_nonfinite(step)
      pending = write_train_row(step, state, pending)
    if step % config.eval_every_steps == 0 or step == t.total_steps:
      stop_if_nonfinite(step)
      evals = t.evaluate(state, config.data.eval_split)
      if best_metric not in evals:  # else no best checkpoint, silently
        raise KeyError(f'best_metric {best_metric!r} is not among the metrics '
                       f'of this task: {sorted(evals)}')
      log.write(step, evals)
      ckpts.save_best(step, state, evals)
      last_eval = (state, evals)
      state = cbs.on_eval(step, state, evals)
    if (step % config.checkpoint_every_steps == 0 or step == t.total_steps
        or cbs.stopped):
      stop_if_nonfinite(step)
      # A checkpoint's steps are all logged, so a run resumed from it writes
      # the same train rows as an uninterrupted one.
      if pending:
        pending = write_train_row(step, state, pending)
      ckpts.save(step, state, force=cbs.stopped)
    if cbs.stopped:
      print(f'Early stopping at step {step}.', flush=True)
      break
    if preemption.reached(step):  # every process, every step (SIGTERM)
      if ckpts.latest_step() != step:
        stop_if_nonfinite(step)
        if pending:
          pending = write_train_row(step, state, pending)
        ckpts.save(step, state, force=True)
      ckpts.wait()
      progress.close()
      log.close()
      ckpts.close()
      print(f'Preempted: saved step {step}.', flush=True)
      raise distributed.Preempted(step)
  progress.close()
  ckpts.wait()
  state = cbs.on_train_end(state, ckpts)

  # The last evaluation holds the final state's metrics unless that state is
  # another one (the best checkpoint restored, or trained on since).
  if last_eval is not None and _same_variables(last_eval[0], state):
    evals = dict(last_eval[1])
  else:
    evals = t.evaluate(state, config.data.eval_split)
  results = {'step': int(state.step), 'best_step': ckpts.best_step(),
             **({'stopped_step': cbs.early_stopping.state['stopped_step']}
                if cbs.early_stopping else {}),
             **evals}
  for split in config.data.get('test_splits', ()):
    results.update(t.evaluate(state, split, prefix=split))
  for prefix, section in (config.data.get('test_sources') or {}).items():
    results.update(t.evaluate(state, section.get('split', 'test'), prefix=prefix,
                              data=section))
  write_json(os.path.join(workdir, 'results.json'), results)
  log.close()
  ckpts.close()
  return results


def _same_variables(a, b) -> bool:
  """Whether two states hold the very same arrays of parameters and batch
  statistics (e.g. one is the other with another lr_scale)."""
  la, lb = jax.tree.leaves(variables_of(a)), jax.tree.leaves(variables_of(b))
  return len(la) == len(lb) and all(x is y for x, y in zip(la, lb))


def _check_finite_losses(pending, step: int, workdir: str, last_saved):
  """Raises NonFiniteError naming the first step whose train loss is not
  finite; `pending`: the train metrics of the steps up to `step`, on device.
  Called only where the loop pulls metrics or saves, so it adds no host sync
  per step, and no state of or after that step is ever saved."""
  if not pending:
    return
  losses = np.asarray(jax.device_get([m['loss'] for m in pending]), np.float64)
  bad = np.flatnonzero(~np.isfinite(losses))
  if bad.size:
    first = step - len(pending) + 1 + int(bad[0])
    raise NonFiniteError(
        f'The training loss is {losses[bad[0]]} at step {first} of {workdir}; '
        f'stopped, saving nothing from that step on (latest checkpoint: '
        f'{"none" if last_saved is None else f"step {last_saved}"}). Check the '
        'data, or lower optim.learning_rate in a new --workdir.')


class _Progress:
  """A tqdm bar with images/s, on process 0."""

  def __init__(self, start, total, batch_size, enabled=True):
    self.bar = None
    self.batch_size = batch_size
    self.last = (start, time.perf_counter())
    if enabled and jax.process_index() == 0:
      from tqdm import tqdm
      self.bar = tqdm(total=total, initial=start, unit='step', dynamic_ncols=True)

  def update(self, step, loss):
    if self.bar is None:
      return
    s0, t0 = self.last
    now = time.perf_counter()
    self.bar.update(step - s0)
    self.bar.set_postfix(loss=f'{loss:.4f}',
                         img_s=f'{(step - s0) * self.batch_size / max(now - t0, 1e-9):.0f}')
    self.last = (step, now)

  def close(self):
    if self.bar is not None:
      self.bar.close()
