"""The pre-trained regressors of paper 000's study: twin nets (valence,
arousal) or one joint net, trained on the AffectNet-like data with the ordinary
train loop in workdir/pretrain/<net> (resumable like any run)."""
import copy
import dataclasses
import os
import time
from typing import Any, Dict, List

import ml_collections
import numpy as np

from fer_jax.protocols.personal.data import TARGETS
from fer_jax.protocols.personal.files import log
from fer_jax.train import distributed
from fer_jax.train import loop
from fer_jax.train import trained


@dataclasses.dataclass
class Net:
  """One pre-trained regressor: its run config, flax module and numpy weights."""
  name: str                 # 'valence', 'arousal' or 'joint'
  targets: tuple
  config: ml_collections.ConfigDict
  model: Any
  variables: Dict[str, Any]

  @property
  def head(self):
    return self.variables['params']['head']


def net_specs(config) -> List[tuple]:
  """(name, targets) of the nets: twins, one per target, or one joint net."""
  targets = tuple(config.targets)
  unknown = [t for t in targets if t not in TARGETS]
  if unknown:
    raise ValueError(f'Unknown targets {unknown}; valid: {TARGETS}')
  if config.get('joint', False):
    return [('joint', targets)]
  return [(t, (t,)) for t in targets]


def pretrain_config(config, targets) -> ml_collections.ConfigDict:
  c = copy.deepcopy(config.pretrain)
  with c.unlocked():
    c.task.targets = tuple(targets)
  return c


def pretrain(config, workdir: str) -> List[Net]:
  """Trains (or resumes, or reuses) each net; returns them with their weights."""
  root = config.get('pretrain_dir') or os.path.join(workdir, 'pretrain')
  nets = []
  for name, targets in net_specs(config):
    cfg = pretrain_config(config, targets)
    wd = os.path.join(root, name)
    # Process 0's view: every process must take the same branch (all of them
    # train together).
    finished = os.path.exists(os.path.join(wd, 'results.json'))
    if distributed.from_lead(np.asarray(finished)):
      # A finished run of another config, or one asked for more steps than it
      # ran (it is reused, not trained further; config.json keeps its length).
      loop.check_workdir_config(cfg, wd, allow_longer=False)
    else:
      log(config, f'Pre-training {name} in {wd}')
      t = time.perf_counter()
      res = loop.train_and_evaluate(cfg, wd)
      log(config, f'  {name}: val rmse '
          f'{res.get("val/rmse_mean", float("nan")):.4f} '
          f'({time.perf_counter() - t:.0f} s)')
    # wd/config.json is `cfg` (checked above, or written by the training) but
    # for fields that build no network (run-only, length, data statistics).
    run = trained.load_run(wd, config.get('pretrain_checkpoint', 'best'))
    nets.append(Net(name, targets, cfg, run.model, run.variables))
  if any(n.model != nets[0].model for n in nets):
    raise ValueError('The nets differ in architecture; the batched fine-tuning '
                     'stacks their dense parts, so they must match.')
  return nets
