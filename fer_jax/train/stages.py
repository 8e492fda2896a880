"""Chained training stages: 001's cascades and 004's freeze-then-unfreeze.

    config = apply_overrides(config, {'num_epochs': '3'})   # the command line's
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
stage 2 goes on in stage 2. Every stage's config is validated before the first
one starts, so a typo in the last stage costs seconds, not the first stages.

Command-line overrides (`--config.KEY=VALUE` of launch/train.py, `--set=KEY=VALUE`
of launch/report.py) go through `apply_overrides`:
  KEY                    the base config and every stage that has the field,
                         winning over the stage's own value: `num_epochs=3`
                         shortens every stage, `data.source.manual_dir=DIR`
                         reaches each stage whose source has a manual_dir.
                         The starting weights (`init.*` but init.checkpoint)
                         reach stage 0 only: later stages start from the
                         previous one.
  stages.<i|name>.KEY    that stage only, e.g. `stages.1.optim.learning_rate=1e-4`
                         or `stages.sfew.data.source.manual_dir=DIR`.
An override that reaches no field, or names no stage, is a `ConfigError`
(`Unreached`).
Keys may index lists (`data.mixture.0.source.manual_dir=DIR`). A VALUE given as
text is read as the type of the field it replaces (a string field takes it as
it is; numbers, tuples, dicts and booleans as Python literals).
"""
import ast
import copy
import json
import os
from typing import Any, Dict, List, Mapping, Tuple

import ml_collections

from fer_jax.train import loop
from fer_jax.train.workdir import ConfigError, validate_config

_MISSING = object()


class StageKeyError(ConfigError, KeyError):
  """A stage overrides a field the config does not have."""


class Unreached(ConfigError):
  """An override that reaches no field (or names no stage)."""


def _child(node, key):
  """node[key] for ConfigDicts, dicts and (by index) lists; _MISSING if none."""
  if isinstance(node, (list, tuple)):
    return node[int(key)] if key.isdigit() and int(key) < len(node) else _MISSING
  if isinstance(node, (dict, ml_collections.ConfigDict)):
    return node[key] if key in node else _MISSING
  return _MISSING


def get_field(config, dotted: str):
  """The value at dotted `key` (list indices allowed); _MISSING if absent."""
  node = config
  for p in dotted.split('.'):
    node = _child(node, p)
    if node is _MISSING:
      return _MISSING
  return node


def _valid_here(config, dotted: str) -> str:
  """The fields next to the first missing part of `dotted` (for errors)."""
  node, parts = config, dotted.split('.')
  for i, p in enumerate(parts):
    nxt = _child(node, p)
    if nxt is _MISSING:
      where = '.'.join(parts[:i]) or 'the config'
      if isinstance(node, (dict, ml_collections.ConfigDict)):
        return f'fields of {where}: {", ".join(sorted(node.keys()))}'
      if isinstance(node, (list, tuple)):
        return f'{where} has {len(node)} entries'
      return f'{where} is a {type(node).__name__}, not a section'
    node = nxt
  return ''


def _coerce(key: str, text, current):
  """`text` as the type of `current` (see the module docstring)."""
  if not isinstance(text, str) or isinstance(current, str):
    return text
  if isinstance(current, bool):
    low = text.strip().lower()
    if low in ('true', '1', 'yes'):
      return True
    if low in ('false', '0', 'no'):
      return False
    raise ConfigError(f'{key}={text!r}: expected True or False')
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(current, (int, float)) and current is not None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
      raise ConfigError(f'{key}={text!r}: expected a number')
    if isinstance(current, int) and not isinstance(value, int):
      raise ConfigError(f'{key}={text!r}: expected an integer')
  if isinstance(current, (tuple, list)):
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
  if isinstance(current, (dict, ml_collections.ConfigDict)) and not isinstance(value, dict):
    raise ConfigError(f'{key}={text!r}: expected a dict')
  return value


def _assign(config, dotted: str, value, stage: str = ''):
  *path, last = dotted.split('.')
  node = config
  for i, p in enumerate(path):
    node = _child(node, p)
    if node is _MISSING:
      raise StageKeyError(f'Stage {stage!r}: {".".join(path[:i + 1])} is not a '
                          f'config field (override {dotted!r}).')
  if isinstance(node, list) and last.isdigit() and int(last) < len(node):
    node[int(last)] = value
    return
  if not isinstance(node, (dict, ml_collections.ConfigDict)) or last not in node:
    raise StageKeyError(f'Stage {stage!r}: {dotted!r} is not a config field.')
  if isinstance(value, dict) and isinstance(node, ml_collections.ConfigDict):
    value = ml_collections.ConfigDict(value)
  try:
    node[last] = value
  except TypeError as e:  # a ConfigDict field keeps its type
    raise ConfigError(f'{dotted}: {e}') from None


def _set(config: ml_collections.ConfigDict, dotted: str, value: Any, stage: str):
  _assign(config, dotted, value, stage)


def _stage_name(i: int, stage) -> str:
  return dict(stage).get('name', f'stage{i}')


def _stage_config(base, stages, i: int, prev_workdir: str):
  """Stage i's complete config: the base, the chaining, then its own keys."""
  stage = dict(stages[i])
  name = stage.pop('name', f'stage{i}')
  c = copy.deepcopy(base)
  if i:  # from the previous stage's weights, not from the base's file
    c.init.torchvision = c.init.keras = c.init.caffe = ''
    c.init.head = 'keep'
    c.init.workdir = prev_workdir
  for k, v in stage.items():
    _set(c, k, v, name)
  return name, c


def _base(config):
  base = copy.deepcopy(config)
  with base.unlocked():
    del base['stages']
  return base


def stage_configs(config: ml_collections.ConfigDict, workdir: str
                  ) -> List[Tuple[str, str, ml_collections.ConfigDict]]:
  """[(name, stage workdir, stage config)] in order; each config is complete."""
  base = _base(config)
  out = []
  for i in range(len(config.stages)):
    name, c = _stage_config(base, config.stages, i, out[-1][1] if i else '')
    out.append((name, os.path.join(workdir, f'{i}_{name}'), c))
  return out


# The starting weights: stage 0's only (later stages chain from the previous).
_FIRST_STAGE_ONLY = ('init',)
_EVERY_STAGE_INIT = ('init.checkpoint',)


def _first_stage_only(key: str) -> bool:
  return (key.split('.')[0] in _FIRST_STAGE_ONLY
          and not any(key == k or key.startswith(k + '.') for k in _EVERY_STAGE_INIT))


def apply_overrides(config: ml_collections.ConfigDict,
                    overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A copy of `config` with the dotted KEY: VALUE `overrides` applied to the
  base and to the stages as the module docstring says; ConfigError for an
  override that reaches nothing."""
  c = copy.deepcopy(config)
  c.unlock()
  stages = [dict(s) for s in (c.get('stages') or ())]
  names = [_stage_name(i, s) for i, s in enumerate(stages)]
  listing = ', '.join(f'{i} {n!r}' for i, n in enumerate(names)) or 'none'

  def view(i):  # stage i as configured so far (the fields it has)
    return _stage_config(_base(c), stages, i, '')[1]

  for key, value in overrides.items():
    if key == 'stages' or key.startswith('stages.'):
      parts = key.split('.', 2)
      if len(parts) < 3:
        raise ConfigError(f'override {key!r}: name a stage and a field, e.g. '
                          'stages.0.optim.learning_rate (stages: ' + listing + ')')
      sel, field = parts[1], parts[2]
      i = (names.index(sel) if sel in names else
           int(sel) if sel.isdigit() and int(sel) < len(stages) else None)
      if i is None:
        raise Unreached(f'override {key!r}: no stage {sel!r} (stages: {listing})')
      current = get_field(view(i), field)
      if current is _MISSING:
        raise Unreached(f'override {key!r}: stage {names[i]!r} has no field '
                          f'{field!r} ({_valid_here(view(i), field)})')
      stages[i].pop(field, None)  # re-added last: applied after the stage's own
      stages[i][field] = _coerce(key, value, current)
      continue
    reached = False
    current = get_field(c, key)
    if current is not _MISSING:
      _assign(c, key, _coerce(key, value, current))
      reached = True
    for i in range(len(stages)):
      if i and _first_stage_only(key):
        continue
      current = get_field(view(i), key)
      if current is not _MISSING:
        stages[i].pop(key, None)
        stages[i][key] = _coerce(key, value, current)
        reached = True
    if not reached:
      raise Unreached(f'override {key!r}: no such config field'
                        f'{" in the base or any stage" if stages else ""} '
                        f'({_valid_here(c, key)})')
  if stages:
    c.stages = tuple(stages)
  return c


def run_stages(config: ml_collections.ConfigDict, workdir: str) -> Dict[str, dict]:
  """Runs (or resumes) every stage; returns {stage name: its results}."""
  if not config.get('stages'):
    raise ValueError('config.stages is empty; use train_and_evaluate.')
  stages = stage_configs(config, workdir)
  for i, (name, _, c) in enumerate(stages):  # before anything is written
    try:
      validate_config(c, check_files=False)
    except ConfigError as e:
      raise ConfigError(f'stage {name!r}: {e}') from None
  loop.check_workdir_config(config, workdir)
  results = {}
  for name, stage_dir, c in stages:
    done = os.path.join(stage_dir, 'results.json')
    if os.path.exists(done):  # not trained again: its length is fixed
      loop.check_workdir_config(c, stage_dir, allow_longer=False)
      with open(done) as f:
        results[name] = json.load(f)
      print(f'Stage {name}: done ({stage_dir}).', flush=True)
      continue
    print(f'Stage {name} in {stage_dir}', flush=True)
    results[name] = loop.train_and_evaluate(c, stage_dir)
  loop.write_json(os.path.join(workdir, 'results.json'), results)
  return results
