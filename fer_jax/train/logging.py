"""Metric logs of a run: `metrics.jsonl` (one JSON line per logged step or eval)
and TensorBoard event files beside it, written by process 0 only."""
import json
import os
from typing import Dict

import jax
import numpy as np

from fer_jax import atomic


def _scalar(v):
  v = np.asarray(v)
  return float(v) if v.ndim == 0 else v.tolist()


class MetricLog:

  def __init__(self, workdir: str, resume_step: int = 0):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if not self.active:
      return
    # A resumed run replays the steps after its checkpoint: drop their old lines.
    if os.path.exists(self.path):
      with open(self.path) as f:
        keep = [l for l in f if l.strip() and json.loads(l)['step'] <= resume_step]
      with open(self.path, 'w') as f:
        f.writelines(keep)
    from tensorboardX import SummaryWriter
    self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'), purge_step=resume_step + 1 if resume_step else None)

  def write(self, step: int, metrics: Dict[str, float]):
    if not self.active:
      return
    row = {'step': int(step), **{k: _scalar(v) for k, v in metrics.items()}}
    with open(self.path, 'a') as f:
      f.write(json.dumps(row) + '\n')
    for k, v in row.items():
      if k != 'step' and isinstance(v, float):
        self._tb.add_scalar(k, v, int(step))
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str):
  """The rows of a run's metrics.jsonl, in order."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f if l.strip()]


def write_json(path: str, obj):
  """Writes a run's JSON file atomically, from process 0."""
  if jax.process_index() != 0:
    return
  atomic.write_json(path, obj, indent=2, sort_keys=True, default=_scalar)
