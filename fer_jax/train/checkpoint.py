"""Orbax checkpoints of a run: the latest few (to resume) and the best by a metric.

Orbax writes each checkpoint into a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact and
the half-written one is ignored (and cleaned up) on restart.

A finished checkpoint can still be damaged later; every save records a
fingerprint and refuses a non-finite state, every restore checks both
(checkpoint_integrity). A checkpoint that fails is named in one warning line,
moved aside to `STEP.damaged-<time>` and the next older one is tried; if none
restores, one error names the folder.

With several processes every one of them calls every save and restore (Orbax
coordinates them; each writes its own shards, process 0 the metadata), so the
directory must be on a file system (or gs:// bucket) that all of them see.
"""
import os
from typing import List, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from fer_jax.train import checkpoint_integrity as integrity
from fer_jax.train.checkpoint_integrity import DamagedCheckpointError
from fer_jax.train.checkpoint_integrity import NonFiniteError


class _Manager(ocp.CheckpointManager):
  """A CheckpointManager that leaves JAX's preemption sync point to the loop.

  Orbax asks `reached_preemption(step)` itself, also from its background
  finalize thread with the step of an older save; each call sets this
  process's step counter in the sync protocol, so a late one could move it
  back and make the processes miss the agreed step. The loop
  (distributed.Preemption) is the one caller and saves with force=True there.
  """

  def reached_preemption(self, step: int) -> bool:
    del step
    return False


def _barrier_prefix(name: str):
  # Both managers may save the same step at once; with several processes their
  # barriers (e.g. `_async_write_complete.<step>`) need distinct names.
  return ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)



class Checkpoints:
  """`latest/` keeps the newest `keep` states; `best/` the best `keep_best`."""

  def __init__(self, workdir: str, keep: int = 2, best_metric: Optional[str] = None,
               best_mode: str = 'min', keep_best: int = 1):
    workdir = os.path.abspath(workdir)
    # One unnamed item, stated up front (`item_handlers`): else the first step
    # folder Orbax reads decides, and an emptied one spoils every later restore.
    self.latest = _Manager(
        os.path.join(workdir, 'checkpoints', 'latest'),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, cleanup_tmp_directories=True,
            multiprocessing_options=_barrier_prefix('latest')))
    self.best_metric, self.best_mode, self.keep_best = best_metric, best_mode, keep_best
    self.best = None
    self._best_kept = {}  # step -> metric of the best/ checkpoints
    if best_metric:
      self.best = _Manager(
          os.path.join(workdir, 'checkpoints', 'best'),
          item_handlers=ocp.StandardCheckpointHandler(),
          options=ocp.CheckpointManagerOptions(
              max_to_keep=keep_best, create=True, cleanup_tmp_directories=True,
              best_fn=lambda m: m[best_metric], best_mode=best_mode,
              keep_checkpoints_without_metrics=False,
              multiprocessing_options=_barrier_prefix('best')))
      self._read_best_kept()

  def _read_best_kept(self):
    """The metrics of the steps in best/, read from their files (on resume,
    and after a damaged one is moved aside)."""
    self._best_kept = {}
    for step in self.best.all_steps():
      metrics = self.best.metrics(step)
      if metrics and self.best_metric in metrics:
        self._best_kept[step] = float(metrics[self.best_metric])

  def _worst_kept(self) -> Optional[int]:
    """The kept best step the next save would drop, ranked as Orbax ranks
    them: by metric, the older of equal ones first."""
    if not self._best_kept:
      return None
    by_step = sorted(self._best_kept.items())
    return sorted(by_step, key=lambda kv: kv[1],
                  reverse=self.best_mode == 'min')[0][0]

  def _checked_save(self, manager, step: int, state, **kwargs):
    fp, finite = integrity.state_summary(state)
    if not finite:
      raise NonFiniteError(f'The state at step {step} holds non-finite values; '
                           f'not saving it to {manager.directory}.')
    manager.save(step, args=ocp.args.StandardSave(state),
                 custom_metadata={'fingerprint': fp}, **kwargs)

  def save(self, step: int, state, force: bool = False):
    self._checked_save(self.latest, step, state, force=force)

  def save_best(self, step: int, state, metrics: dict) -> bool:
    """Saves the state to best/ if it ranks among the `keep_best` best;
    whether it did. Fewer kept, or at least as good as the worst kept (of
    equal ones the newer is best, as Orbax ranks them): the state is written
    and Orbax drops the worst. Worse: nothing is written (Orbax would write
    it in full and delete it at once).

    A non-finite metric is never best (Orbax would rank NaN first and delete
    the real best); a step already there (replayed after falling back to an
    older checkpoint) is kept as it is."""
    if self.best is None or self.best_metric not in metrics:
      return False
    value = float(metrics[self.best_metric])
    if not np.isfinite(value):
      integrity.warn(f'{self.best_metric} is {value} at step {step}; '
                     'not a best checkpoint.')
      return False
    if step in self.best.all_steps():
      return False
    if len(self._best_kept) >= self.keep_best:
      worst = self._best_kept[self._worst_kept()]
      if (value > worst) if self.best_mode == 'min' else (value < worst):
        return False
    self._checked_save(self.best, step, state,
                       metrics={self.best_metric: value}, force=True)
    self._best_kept[step] = value
    if len(self._best_kept) > self.keep_best:
      del self._best_kept[self._worst_kept()]
    return True

  def latest_step(self) -> Optional[int]:
    return self.latest.latest_step()

  def best_step(self) -> Optional[int]:
    return None if self.best is None else self.best.best_step()

  def _step_dir(self, manager, step: int) -> str:
    return os.path.join(str(manager.directory), str(step))

  def _restore_verified(self, manager, step: int, abstract_state):
    """The state of one step, or DamagedCheckpointError naming its folder."""
    path = self._step_dir(manager, step)
    state, error = None, None
    if not (epath.Path(path) / 'default').exists():  # e.g. an emptied folder
      error = DamagedCheckpointError(f'{path} does not restore: it has no default/')
    else:
      try:
        state = manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
      except Exception as e:  # pylint: disable=broad-except
        integrity.quiet_closed_loop()
        error = DamagedCheckpointError(
            f'{path} does not restore: {integrity.reason(e)}')
    if error is None:
      try:
        integrity.verify(path, integrity.state_summary(state))
      except DamagedCheckpointError as e:
        error = e
    if not integrity.all_processes(error is None):
      raise error or DamagedCheckpointError(
          f'{path} does not restore on another process')
    return state

  def restore_latest(self, abstract_state):
    """The newest latest/ checkpoint that restores intact; None if there is
    none at all. Damaged newer ones are named and moved aside; if every one is
    damaged, DamagedCheckpointError names the folder (and nothing moves)."""
    steps = sorted(self.latest.all_steps(), reverse=True)
    if not steps:
      return None
    damaged = []
    for step in steps:
      try:
        state = self._restore_verified(self.latest, step, abstract_state)
      except DamagedCheckpointError as e:
        damaged.append((step, e))
        continue
      for bad, e in damaged:
        dest = integrity.move_aside(self._step_dir(self.latest, bad))
        integrity.warn(f'{e}; moved it to {dest} and resumed from step {step}.')
      if damaged:
        self.latest.reload()
      return state
    raise DamagedCheckpointError(
        f'No checkpoint in {self.latest.directory} restores ('
        + '; '.join(str(e) for _, e in damaged)
        + '). Move the folder aside to start the run afresh.')

  def restore_best(self, abstract_state):
    """The best checkpoint; the latest one (with a warning) when best/ has
    none or its best is damaged (then moved aside)."""
    step = self.best_step()
    if step is None:
      where = (self.best.directory if self.best is not None
               else 'this run (no best_metric)')
      integrity.warn(f'No best checkpoint in {where}; using the latest checkpoint.')
      return self.restore_latest(abstract_state)
    try:
      return self._restore_verified(self.best, step, abstract_state)
    except DamagedCheckpointError as e:
      state = self.restore_latest(abstract_state)
      if state is None:
        raise
      dest = integrity.move_aside(self._step_dir(self.best, step))
      self.best.reload()
      self._read_best_kept()
      integrity.warn(f'{e}; moved it to {dest} and used the latest checkpoint.')
      return state

  def wait(self):
    self.latest.wait_until_finished()
    if self.best is not None:
      self.best.wait_until_finished()

  def close(self):
    self.latest.close()
    if self.best is not None:
      self.best.close()


def abstract_like(state):
  """ShapeDtypeStructs (with shardings) of a state, as a restore target."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)


def saved_steps(workdir: str, which: str = 'latest') -> List[int]:
  """Steps of the finished checkpoints in WORKDIR/checkpoints/WHICH (Orbax
  writes a step under a temporary name and renames it when complete)."""
  root = os.path.join(os.path.abspath(workdir), 'checkpoints', which)
  return sorted(int(d) for d in (os.listdir(root) if os.path.isdir(root) else [])
                if d.isdigit())


def _load_numpy_step(step_dir: str):
  """One checkpoint as host numpy arrays, checked; DamagedCheckpointError
  naming the folder when it does not restore intact."""
  path = os.path.join(step_dir, 'default')
  try:
    with ocp.PyTreeCheckpointer() as ckptr:
      meta = ckptr.metadata(path).item_metadata
      if meta is None:  # Orbax returns none without _METADATA or the manifest
        raise DamagedCheckpointError(
            f'{step_dir} does not restore: its array metadata does not read')
      meta = meta.tree
      args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
      tree = ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=args))
  except DamagedCheckpointError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    integrity.quiet_closed_loop()
    raise DamagedCheckpointError(
        f'{step_dir} does not restore: {integrity.reason(e)}') from None
  integrity.verify(step_dir, integrity.numpy_summary(tree))
  return tree


def load_numpy(workdir: str, which: str = 'latest', step: Optional[int] = None):
  """A run's checkpoint as a tree of host numpy arrays, whatever the topology it
  was saved under (e.g. to use it as pretrained weights or to compare runs).

  Returns (step, tree) with the TrainState's fields as dict keys; see
  `load_checkpoint` for which checkpoint that is.
  """
  _, step, tree = load_checkpoint(workdir, which, step)
  return step, tree


def load_checkpoint(workdir: str, which: str = 'latest', step: Optional[int] = None):
  """(which, step, tree): `load_numpy`'s checkpoint and the folder it came from.

  Without `step`, the newest checkpoint of WORKDIR/checkpoints/WHICH that
  restores intact (a warning names each damaged one skipped; a reader leaves
  the files as they are). `which='best'` falls back to the latest checkpoint,
  with a warning, when best/ has none intact. A given `step` is that one or
  an error. DamagedCheckpointError (one line) when nothing restores.
  """
  root = os.path.join(os.path.abspath(workdir), 'checkpoints', which)
  steps = saved_steps(workdir, which)
  fallback = which == 'best' and step is None and saved_steps(workdir, 'latest')
  if not steps and fallback:
    integrity.warn(f'No best checkpoint in {root}; using the latest checkpoint.')
    return load_checkpoint(workdir, 'latest')
  if not steps or (step is not None and step not in steps):
    raise FileNotFoundError(f'No {which} checkpoint {"" if step is None else step} '
                            f'in {root} (found steps {steps})')
  damaged = []
  for s in ([step] if step is not None else steps[::-1]):
    try:
      tree = _load_numpy_step(os.path.join(root, str(s)))
    except DamagedCheckpointError as e:
      damaged.append(e)
      continue
    for e in damaged:
      integrity.warn(f'{e}; using step {s}.')
    return which, s, tree
  if fallback:
    for e in damaged:
      integrity.warn(f'{e}; using the latest checkpoint.')
    return load_checkpoint(workdir, 'latest')
  if len(damaged) == 1:
    raise damaged[0]
  raise DamagedCheckpointError(f'No checkpoint in {root} restores ('
                               + '; '.join(map(str, damaged)) + ').')
