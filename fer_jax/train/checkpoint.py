"""Orbax checkpoints of a run: the latest few (to resume) and the best by a metric.

Orbax writes each checkpoint into a temporary directory and renames it when
complete, so a run killed mid-save leaves the previous checkpoints intact and
the half-written one is ignored (and cleaned up) on restart.

With several processes every one of them calls every save and restore (Orbax
coordinates them; each writes its own shards, process 0 the metadata), so the
directory must be on a file system (or gs:// bucket) that all of them see.
"""
import os
from typing import List, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp


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
    self.latest = _Manager(
        os.path.join(workdir, 'checkpoints', 'latest'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, cleanup_tmp_directories=True,
            multiprocessing_options=_barrier_prefix('latest')))
    self.best_metric = best_metric
    self.best = None
    if best_metric:
      self.best = _Manager(
          os.path.join(workdir, 'checkpoints', 'best'),
          options=ocp.CheckpointManagerOptions(
              max_to_keep=keep_best, create=True, cleanup_tmp_directories=True,
              best_fn=lambda m: m[best_metric], best_mode=best_mode,
              keep_checkpoints_without_metrics=False,
              multiprocessing_options=_barrier_prefix('best')))

  def save(self, step: int, state, force: bool = False):
    self.latest.save(step, args=ocp.args.StandardSave(state), force=force)

  def save_best(self, step: int, state, metrics: dict):
    """Offers the state to the best-checkpoint manager, which keeps it if better."""
    if self.best is not None and self.best_metric in metrics:
      self.best.save(step, args=ocp.args.StandardSave(state),
                     metrics={self.best_metric: float(metrics[self.best_metric])},
                     force=True)

  def latest_step(self) -> Optional[int]:
    return self.latest.latest_step()

  def best_step(self) -> Optional[int]:
    return None if self.best is None else self.best.best_step()

  def restore_latest(self, abstract_state):
    step = self.latest_step()
    if step is None:
      return None
    return self.latest.restore(step, args=ocp.args.StandardRestore(abstract_state))

  def restore_best(self, abstract_state):
    step = self.best_step()
    if step is None:
      return None
    return self.best.restore(step, args=ocp.args.StandardRestore(abstract_state))

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


def load_numpy(workdir: str, which: str = 'latest', step: Optional[int] = None):
  """A run's checkpoint as a tree of host numpy arrays, whatever the topology it
  was saved under (e.g. to use it as pretrained weights or to compare runs).

  Returns (step, tree) with the TrainState's fields as dict keys.
  """
  root = os.path.join(os.path.abspath(workdir), 'checkpoints', which)
  steps = saved_steps(workdir, which)
  if not steps or (step is not None and step not in steps):
    raise FileNotFoundError(f'No {which} checkpoint {step or ""} in {root} '
                            f'(found steps {steps})')
  step = steps[-1] if step is None else step
  path = os.path.join(root, str(step), 'default')
  with ocp.PyTreeCheckpointer() as ckptr:
    meta = ckptr.metadata(path).item_metadata.tree
    args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
    return step, ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=args))
