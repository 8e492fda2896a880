"""Chained training stages: 001's cascades and 004's freeze-then-unfreeze.

    results = run_stages(config, workdir)

`config.stages` is a sequence of dicts, one per stage: a 'name' and overrides of
the base config as dotted keys, e.g.

    dict(name='fer2013', **{'data.source.preset': 'fer2013_like',
                            'optim.learning_rate': 1e-3, 'num_epochs': 30})
    dict(name='sfew', **{'data.source.preset': 'sfew_like',
                         'init.head': 'reinit', 'trainable': 'last:4'})

Stage i is an ordinary run (`train_and_evaluate`) in workdir/<i>_<name>, its own
config written there. Stage 0 starts from the base config's `init` (random, or
ImageNet / FER weights); stage i > 0 starts from stage i-1's checkpoint
(`init.checkpoint`, 'best' by default), head kept unless the stage says
`'init.head': 'reinit'` (a new label space). A finished stage (results.json) is
skipped, an unfinished one resumes from its own checkpoint: a run killed in
stage 2 goes on in stage 2.
"""
import copy
import json
import os
from typing import Any, Dict, List, Tuple

import ml_collections

from fer_jax.train import loop


def _set(config: ml_collections.ConfigDict, dotted: str, value: Any, stage: str):
  *path, last = dotted.split('.')
  node = config
  for i, p in enumerate(path):
    if p not in node:
      raise KeyError(f'Stage {stage!r}: {".".join(path[:i + 1])} is not a '
                     f'config field (override {dotted!r}).')
    node = node[p]
  if last not in node:
    raise KeyError(f'Stage {stage!r}: {dotted!r} is not a config field.')
  if isinstance(value, dict):
    node[last] = ml_collections.ConfigDict(value)
  else:
    node[last] = value


def stage_configs(config: ml_collections.ConfigDict, workdir: str
                  ) -> List[Tuple[str, str, ml_collections.ConfigDict]]:
  """[(name, stage workdir, stage config)] in order; each config is complete."""
  base = copy.deepcopy(config)
  with base.unlocked():
    del base['stages']
  out = []
  for i, stage in enumerate(config.stages):
    stage = dict(stage)
    name = stage.pop('name', f'stage{i}')
    c = copy.deepcopy(base)
    if i:  # from the previous stage's weights, not from the base's file
      c.init.torchvision = c.init.keras = c.init.caffe = ''
      c.init.head = 'keep'
      c.init.workdir = out[-1][1]
    for k, v in stage.items():
      _set(c, k, v, name)
    out.append((name, os.path.join(workdir, f'{i}_{name}'), c))
  return out


def run_stages(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, dict]:
  """Runs (or resumes) every stage; returns {stage name: its results}."""
  if not config.get('stages'):
    raise ValueError('config.stages is empty; use train_and_evaluate.')
  loop.check_workdir_config(config, workdir)
  results = {}
  for name, stage_dir, c in stage_configs(config, workdir):
    done = os.path.join(stage_dir, 'results.json')
    if os.path.exists(done):
      loop.check_workdir_config(c, stage_dir)
      with open(done) as f:
        results[name] = json.load(f)
      print(f'Stage {name}: done ({stage_dir}).', flush=True)
      continue
    print(f'Stage {name} in {stage_dir}', flush=True)
    results[name] = loop.train_and_evaluate(c, stage_dir)
  loop.write_json(os.path.join(workdir, 'results.json'), results)
  return results
