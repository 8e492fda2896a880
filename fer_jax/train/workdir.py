"""A run's workdir holds one config, checked before anything is written there.

    validate_config(config)               # every name the run will look up
    check_workdir_config(config, workdir) # validate, then write or compare

`check_workdir_config` validates a training config first and only then writes
`workdir/config.json` (a fresh run) or compares it with the stored one (a
resume). So a typo such as `model.name=resnet9000` is one error and leaves no
workdir behind: the corrected command starts cleanly instead of being refused
as a config mismatch.

A resume may change what does not change results:
  RUN_ONLY_FIELDS  the progress bar, reader threads, how often metrics are
                   logged and checkpoints saved, how many are kept: the
                   parameters and metrics at every step stay the same (the data
                   order is a pure function of seed and step, and a restore is
                   exact at any step);
  a longer run     a larger total_steps (or num_epochs, when total_steps is 0)
                   if the lr schedule does not depend on the run's length
                   (LENGTH_FREE_SCHEDULES: batch k and the lr of step k are then
                   the same as before, so the run just goes on). Cosine decays
                   over total_steps: a longer cosine run is another run.
The new values are stored in config.json. Everything else is refused with the
differences listed; eval_every_steps too, since it picks the best checkpoint and
drives early stopping and the lr plateaus.
"""
import copy
import inspect
import json
import os
import re


class ConfigError(ValueError):
  """A config names something that does not exist (key, model, dataset, ...)."""


class ConfigMismatchError(ValueError):
  """A workdir holds a run of another config."""


# Config fields computed from the rest of the config (`loop.derived_config`): a
# config that does not hold them yet matches a workdir that does.
DERIVED_FIELDS = (('data', 'featurewise_stats'), ('task', 'class_counts'))
RUN_ONLY_FIELDS = ('progress', 'data.num_threads', 'log_every_steps',
                   'checkpoint_every_steps', 'keep_checkpoints')
LENGTH_FIELDS = ('total_steps', 'num_epochs')
# Schedules whose lr at step k does not depend on total_steps (fer_jax/train/
# optim.py): constant, step decay every N epochs, exponential every N steps.
LENGTH_FREE_SCHEDULES = ('constant', 'step', 'exponential')

CROPS = ('none', 'eyes', 'landmarks')       # data.pipeline.Preprocess.crop
NORMALIZE = ('unit', 'minmax', 'mean_std', 'featurewise', 'none')


def is_training_config(config) -> bool:
  """A config `train_and_evaluate` runs (not, e.g., a personalization study)."""
  return all(k in config for k in ('model', 'task', 'data', 'optim'))


def _with_pp(stored: dict) -> dict:
  """A config written before its data section stated `pp` gets the pp string
  its fields spell, so a run of the same pipeline still resumes."""
  from fer_jax.data import pp as pp_lib  # pylint: disable=g-import-not-at-top
  sections = [stored.get('data')]
  if isinstance(stored.get('pretrain'), dict):
    sections.append(stored['pretrain'].get('data'))
  for data in sections:
    if isinstance(data, dict) and not data.get('pp') and 'image_size' in data:
      try:
        data['pp'] = pp_lib.from_fields(data)
      except (ValueError, KeyError):
        pass  # left as written: the comparison names the difference
  return stored


def check_workdir_config(config, workdir: str, allow_longer: bool = True):
  """Validates `config`, then writes it to a fresh `workdir` or refuses to
  resume a workdir written by a result-changing different config.

  allow_longer: a larger total_steps / num_epochs may resume (see the module
    docstring); False for a finished run (a stage, a study's pre-trained
    net), which is not trained again.
  """
  from fer_jax.train.logging import write_json  # jax: not for a mere error
  path = os.path.join(workdir, 'config.json')
  fresh = not os.path.exists(path)
  if is_training_config(config) and not config.get('stages'):
    validate_config(config, check_files=fresh)
  new = json.loads(config.to_json_best_effort(sort_keys=True))
  if fresh:
    os.makedirs(workdir, exist_ok=True)
    write_json(path, new)
    return
  old, new = _with_pp(stored_config(workdir)), _with_pp(new)
  for section, key in DERIVED_FIELDS:
    if key not in new.get(section, {}) and isinstance(old.get(section), dict):
      if key in old[section]:
        new.setdefault(section, {})[key] = old[section][key]
  if old == new:
    return
  drop = RUN_ONLY_FIELDS
  why_not = _longer_run(old, new) if allow_longer else ''
  if why_not is None:
    drop += LENGTH_FIELDS
  a, b = _comparable(old, drop), _comparable(new, drop)
  if a != b:
    diff = _diff(a, b)
    hint = ''
    if why_not is not None and any(d.split(':')[0] in LENGTH_FIELDS for d in diff):
      hint = (f' A longer run resumes only with {why_not}.' if why_not else
              ' A finished run is not trained again: its length stays.')
    raise ConfigMismatchError(
        f'{workdir} holds a run of a different config; refusing to resume over '
        f'it. Differences (workdir vs now): {"; ".join(diff)}.{hint} Use a new '
        '--workdir.')
  write_json(path, new)  # run-only settings / a longer run: the new values


def _longer_run(old: dict, new: dict):
  """None when `new` may resume `old` with another length; else why not."""
  if new.get('stages'):
    return None  # each stage's own workdir decides
  sched = (new.get('schedule') or {}).get('name', 'constant')
  if sched not in LENGTH_FREE_SCHEDULES:
    return (f'a schedule that does not depend on it ({", ".join(LENGTH_FREE_SCHEDULES)};'
            f' this run\'s {sched!r} does)')
  ot, nt = old.get('total_steps') or 0, new.get('total_steps') or 0
  if ot and nt >= ot:
    return None
  if not ot and not nt and (new.get('num_epochs') or 0) >= (old.get('num_epochs') or 0):
    return None
  return 'a larger total_steps (or num_epochs when total_steps is 0)'


def _pop(d: dict, dotted: str):
  *path, last = dotted.split('.')
  for p in path:
    d = d.get(p) if isinstance(d, dict) else None
  if isinstance(d, dict):
    d.pop(last, None)


def _comparable(cfg: dict, drop) -> dict:
  """`cfg` without the fields in `drop`, also inside stage overrides."""
  c = copy.deepcopy(cfg)
  for f in drop:
    _pop(c, f)
  for stage in c.get('stages') or ():
    if isinstance(stage, dict):
      for f in drop:
        stage.pop(f, None)
        _pop(stage, f)
  return c


def _diff(a, b, prefix=''):
  out = []
  for k in sorted(set(a) | set(b)):
    va, vb = a.get(k, '<absent>'), b.get(k, '<absent>')
    if isinstance(va, dict) and isinstance(vb, dict):
      out += _diff(va, vb, f'{prefix}{k}.')
    elif va != vb:
      out.append(f'{prefix}{k}: {va!r} vs {vb!r}')
  return out


def stored_config(workdir) -> dict:
  """The config.json of `workdir` as a dict; {} when there is none."""
  path = os.path.join(workdir or '', 'config.json')
  if workdir and os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  return {}


def check_trained_run(workdir: str) -> dict:
  """The config of the trained run in `workdir`; ConfigError if it is none."""
  if not os.path.isdir(workdir or ''):
    raise ConfigError(f'--workdir={workdir!r} does not exist.')
  cfg = stored_config(workdir)
  if not cfg:
    raise ConfigError(f'{workdir} is not a trained run: it has no config.json.')
  if cfg.get('stages'):
    raise ConfigError(f'{workdir} is a staged run; give one of its stage folders '
                      f'(e.g. {os.path.join(workdir, "<i>_<name>")}).')
  if not all(k in cfg for k in ('model', 'task', 'data')):
    raise ConfigError(f'{workdir} is not a trained run: its config.json has no '
                      'model/task/data (a study or report folder?).')
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    raise ConfigError(f'{workdir} has no checkpoints/: it was never trained.')
  return cfg


# ---- validation: every name a run looks up, before anything is written.

def _message(e: BaseException) -> str:
  return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def _bind(fn, what: str, *args, **kwargs):
  """Checks that `fn` accepts these arguments (no call)."""
  try:
    inspect.signature(fn).bind(*args, **kwargs)
  except TypeError as e:
    raise ConfigError(f'{what}: {e}') from None


def _check_source(where: str, name: str, source, problems, label=''):
  from fer_jax.data.sources import DATASETS
  if name not in DATASETS:
    problems.append(f'{where}.name: unknown dataset {name!r}; valid: '
                    f'{", ".join(DATASETS.names())}')
    return
  source = dict(source or {})
  label = label or f'{where}.source'
  if name == 'kfold':
    _check_source(f'{where}.source.base', source.get('base_name'),
                  source.get('base_source'), problems)
    return
  from fer_jax.data.adapters import ADAPTERS, get_adapter
  factory = get_adapter(name) if name in ADAPTERS else DATASETS.get(name)
  try:
    _bind(factory, f'{label} (dataset {name!r})', split='train', **source)
  except ConfigError as e:
    problems.append(str(e))
    return
  if name == 'synthetic':
    from fer_jax.data.synthetic.presets import PRESETS
    if source.get('preset') not in PRESETS:
      problems.append(f'{label}.preset: unknown preset {source.get("preset")!r};'
                      f' valid: {", ".join(PRESETS.names())}')
  for key in ('manual_dir', 'data_dir'):
    if key in source:  # read on every run, resumed ones too
      d = source[key]
      if not d:
        problems.append(f'{label}.{key} is empty: give the folder of '
                        f'{name!r} ({label}.{key}=DIR)')
      elif not os.path.isdir(d):
        problems.append(f'{label}.{key}={d!r} is not a folder')


def check_source(where: str, name: str, source):
  """ConfigError unless dataset `name` exists and takes `source` as its
  arguments (its folders existing); `where` names the config section."""
  problems = []
  _check_source(where, name, source, problems, label=where)
  if problems:
    raise ConfigError('; '.join(problems))


def _check_data(data, problems):
  sections = [('data', data)]
  sections += [(f'data.mixture.{i}', e) for i, e in enumerate(data.get('mixture') or ())]
  sections += [(f'data.test_sources.{k}', s)
               for k, s in (data.get('test_sources') or {}).items()]
  for where, sec in sections:
    if 'name' in sec or where == 'data':
      _check_source(where, sec.get('name'), sec.get('source'), problems)
    crop = sec.get('crop', 'none')
    if crop not in CROPS:
      problems.append(f'{where}.crop: unknown crop {crop!r}; valid: {", ".join(CROPS)}')
  if data.get('normalize', 'unit') not in NORMALIZE:
    problems.append(f'data.normalize: unknown {data.get("normalize")!r}; valid: '
                    f'{", ".join(NORMALIZE)}')


def _check_trainable(spec) -> str:
  """'' or why `config.trainable` is not a spec `partition.trainable_mask`
  knows (asked on a two-layer stand-in, so new spec forms need no change here;
  what depends on the real net, e.g. keras_last's layer list, is not judged)."""
  from fer_jax.models import partition
  if spec is None:
    return ''
  stand_in = {'features': {'a': {'kernel': 0}}, 'head': {'b': {'kernel': 0}}}
  try:
    partition.trainable_mask(stand_in, spec, order=['features/a', 'head/b'])
  except re.error as e:
    return f'trainable: bad pattern {spec!r} ({e})'
  except (ValueError, AttributeError, TypeError) as e:
    text = str(e)
    if text.startswith('Unknown trainable') or 'whole number' in text or \
        not isinstance(spec, str):
      return f'trainable: {text}'
  return ''


def validate_config(config, check_files: bool = True):
  """Raises ConfigError listing every name in `config` that does not exist:
  task, model and head, datasets and presets (also in data.mixture and
  data.test_sources) and their source arguments, crop, normalize, optimizer,
  schedule, trainable, frozen_bn, init.head, callbacks; the data folders it
  names; with `check_files` also its starting weights (only a fresh run reads
  them)."""
  import jax.numpy as jnp
  from fer_jax.models import get_model
  from fer_jax.models.heads import KINDS
  from fer_jax.tasks import get_task
  from fer_jax.train import callbacks as callbacks_lib
  from fer_jax.train import init as init_lib
  from fer_jax.train import optim
  problems = []

  def attempt(what, fn):
    try:
      return fn()
    except ConfigError as e:
      problems.append(str(e))
    except (KeyError, ValueError, TypeError) as e:
      problems.append(f'{what}: {_message(e)}')
    return None

  task = attempt('task', lambda: get_task(**config.task))
  model = dict(config.model)
  name = model.pop('name', None)
  from fer_jax.models.registry import MODELS
  if name not in MODELS:
    problems.append(f'model.name: unknown model {name!r}; valid: '
                    f'{", ".join(MODELS.names())}')
  elif model.get('head') is not None and model['head'] not in KINDS:
    problems.append(f'model.head: unknown head {model["head"]!r}; valid: '
                    f'{", ".join(KINDS)}')
  elif task is not None:
    dtype = jnp.bfloat16 if config.get('bf16', False) else jnp.float32
    attempt('model', lambda: get_model(name, num_outputs=task.num_outputs,
                                       dtype=dtype, **model))
  _check_data(config.data, problems)
  opt = dict(config.optim)
  opt_name = opt.pop('name', None)
  opt.pop('learning_rate', None)
  opt.pop('grad_clip_norm', None)
  if opt_name not in optim.OPTIMIZERS:
    problems.append(f'optim.name: unknown optimizer {opt_name!r}; valid: '
                    f'{", ".join(optim.OPTIMIZERS.names())}')
  else:
    attempt('optim', lambda: _bind(optim.OPTIMIZERS.get(opt_name),
                                   f'optim ({opt_name})', None, **opt))
  sched = dict(config.get('schedule') or {'name': 'constant'})
  sched_name = sched.pop('name', None)
  if sched_name not in optim.SCHEDULES:
    problems.append(f'schedule.name: unknown schedule {sched_name!r}; valid: '
                    f'{", ".join(optim.SCHEDULES.names())}')
  else:
    attempt('schedule', lambda: _bind(optim.SCHEDULES.get(sched_name),
                                      f'schedule ({sched_name})', 0.1, 1, 1, **sched))
  msg = _check_trainable(config.get('trainable', 'all'))
  if msg:
    problems.append(msg)
  frozen_bn = config.get('frozen_bn', 'train')
  if frozen_bn not in ('train', 'inference'):  # loop.FROZEN_BN
    problems.append(f"frozen_bn: unknown {frozen_bn!r}; valid: train, inference")
  init = config.get('init') or {}
  if init.get('head', 'keep') not in init_lib.HEADS:
    problems.append(f'init.head: unknown {init.get("head")!r}; valid: '
                    f'{", ".join(init_lib.HEADS)}')
  if init.get('checkpoint', 'best') not in ('best', 'latest'):
    problems.append(f'init.checkpoint: unknown {init.get("checkpoint")!r}; valid: '
                    'best, latest')
  if check_files:
    for key in ('torchvision', 'keras', 'caffe', 'workdir'):
      path = init.get(key)
      if path and not os.path.exists(path):
        problems.append(f'init.{key}: {path!r} does not exist')
  if task is not None:
    best = config.get('best_metric') or task.primary_metric[0]
    mode = config.get('best_mode') or task.primary_metric[1]
    attempt('callbacks', lambda: callbacks_lib.from_config(config, None, best, mode))
  if problems:
    raise ConfigError('config: ' + '; '.join(problems))
