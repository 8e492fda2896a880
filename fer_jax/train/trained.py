"""A trained run, read back: its config, task, model and weights.

    run = load_run(workdir)                    # best checkpoint (else latest)
    run.model.apply(run.variables, images, train=False)

Whatever reads a workdir of the train loop (evaluation on other data, the
predictor, the personalization study's pre-trained nets, warm starts) loads
it here, so all of them see the same config and the same checkpoint:
`checkpoint.load_numpy`'s (best falls back to latest; a damaged checkpoint is
skipped with a warning).
"""
import dataclasses
import json
import os
from typing import Any, Dict, Optional

import ml_collections

from fer_jax.tasks import get_task
from fer_jax.train import checkpoint as ckpt_lib
from fer_jax.train.loop import build_model


@dataclasses.dataclass
class TrainedRun:
  """One checkpoint of a run and what it takes to use it."""
  workdir: str
  config: ml_collections.ConfigDict  # its config.json (lists back to tuples)
  task: Any
  model: Any                         # the flax module
  variables: Dict[str, Any]          # numpy: {'params'} (+ 'batch_stats' if any)
  step: int


def run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with (JSON's lists back to tuples)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: --workdir must be a directory '
                            'written by launch/train.py')
  with open(path) as f:
    return ml_collections.ConfigDict(_tuples(json.load(f)))


def _tuples(x):
  if isinstance(x, dict):
    return {k: _tuples(v) for k, v in x.items()}
  if isinstance(x, list):
    return tuple(_tuples(v) for v in x)
  return x


def load_run(workdir: str, which: str = 'best',
             step: Optional[int] = None) -> TrainedRun:
  """The run in `workdir` at its `which` ('best' or 'latest') checkpoint, or
  at `step`; see `checkpoint.load_checkpoint` for which one that is."""
  config = run_config(workdir)
  task = get_task(**config.task)
  model = build_model(config, task)
  step, tree = ckpt_lib.load_numpy(workdir, which, step)
  variables = {'params': tree['params']}
  if tree.get('batch_stats'):
    variables['batch_stats'] = tree['batch_stats']
  return TrainedRun(workdir, config, task, model, variables, step)
