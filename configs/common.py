"""Pieces shared by every experiment config."""
import ml_collections

from fer_jax.data import pp


def _convert(key: str, value: str, default):
  if isinstance(default, bool):
    if value.lower() in ('true', '1'):
      return True
    if value.lower() in ('false', '0'):
      return False
    raise ValueError(f'Config argument {key}={value!r}: not true or false')
  try:
    return type(default)(value)
  except ValueError:
    raise ValueError(f'Config argument {key}={value!r}: not '
                     f'{type(default).__name__}') from None


def parse_arg(arg, **defaults) -> ml_collections.ConfigDict:
  """The argument of get_config(arg) (`--config=file.py:ARG`), a comma-separated
  list of tokens, as a ConfigDict with the keys of `defaults`.

  A default is a value (bool, int, float or str: the token `key=value` sets
  it, converted to the default's type) or a tuple of choices (the first is the
  default; '' as the first: none given). A bare token is a bool key (True) or
  one of a key's choices. `a,model=vgg16,size=64` and `a,vgg16,size=64` are
  the same. An unknown or repeated key, a value not among the choices or of
  the wrong type: a one-line ValueError.
  """
  bare = {}  # token -> (key, value)
  for key, default in defaults.items():
    if isinstance(default, bool):
      bare[key] = (key, True)
    elif isinstance(default, tuple):
      for choice in default:
        if choice in bare:
          raise ValueError(f'parse_arg: {choice!r} names two keys')
        if choice:
          bare[choice] = (key, choice)
  out = {k: (d[0] if isinstance(d, tuple) else d) for k, d in defaults.items()}
  given, unknown = set(), []
  for token in filter(None, (t.strip() for t in (arg or '').split(','))):
    if '=' in token:
      key, value = (s.strip() for s in token.split('=', 1))
      if key not in defaults:
        unknown.append(token)
        continue
      default = defaults[key]
      if isinstance(default, tuple):
        if value not in default:
          raise ValueError(f'Config argument {key}={value!r}: valid: '
                           f'{", ".join(c for c in default if c)}')
      else:
        value = _convert(key, value, default)
    elif token in bare:
      key, value = bare[token]
    else:
      unknown.append(token)
      continue
    if key in given:
      raise ValueError(f'Config argument {key!r} given twice in {arg!r}')
    given.add(key)
    out[key] = value
  if unknown:
    valid = ', '.join(
        f'{k}=' + '|'.join(c for c in d if c) if isinstance(d, tuple)
        else k if isinstance(d, bool) else f'{k}=<{type(d).__name__}>'
        for k, d in defaults.items())
    raise ValueError(f'Unknown arguments {unknown}; valid: {valid}')
  return ml_collections.ConfigDict(out)


def pp_fields(spec: str) -> dict:
  """{dotted config key: value}: data.pp and the fields it implies, which
  the model's input shape, the predictor's crop and the featurewise
  statistics read (a stage's overrides, or `set_pp`)."""
  out = {'data.pp': spec}
  for key, value in pp.fields_of(spec).items():
    if isinstance(value, dict):
      out.update({f'data.{key}.{k}': v for k, v in value.items()})
    else:
      out[f'data.{key}'] = value
  return out


def set_pp(c: ml_collections.ConfigDict, spec: str):
  """Sets config `c`'s data.pp and the fields it implies."""
  for key, value in pp_fields(spec).items():
    *path, last = key.split('.')
    node = c
    for part in path:
      node = node[part]
    node[last] = value


def base_config() -> ml_collections.ConfigDict:
  """The defaults every run has; experiment configs override what they need."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 64
  c.num_epochs = 10
  c.total_steps = 0           # > 0 overrides num_epochs
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  c.best_metric = ''          # '' = the task's primary metric
  c.best_mode = ''
  c.bf16 = False              # bfloat16 compute, float32 parameters
  c.progress = True
  c.trainable = 'all'         # see fer_jax.models.partition.trainable_mask
  # Starting weights (fer_jax/train/init.py): a fer_jax workdir's checkpoint,
  # or a torchvision / Keras / Caffe file; head 'keep' or 'reinit'.
  c.init = ml_collections.ConfigDict({'workdir': '', 'checkpoint': 'best',
                                      'torchvision': '', 'keras': '',
                                      'caffe': '', 'head': 'keep'})

  c.data = ml_collections.ConfigDict()
  c.data.name = 'synthetic'
  c.data.source = ml_collections.ConfigDict({'preset': 'affectnet_like', 'seed': 0})
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.test_splits = ()
  # The preprocessing as one pp string (fer_jax/data/pp.py), set with
  # `set_pp`; '' = the pipeline the fields below spell (image_size, channels,
  # crop, augment, normalize, mean, std), as runs written before pp.
  c.data.pp = ''
  c.data.image_size = 64
  c.data.channels = 3
  c.data.crop = 'none'
  c.data.normalize = 'unit'
  c.data.mean = 0.5
  c.data.std = 0.5
  c.data.augment = ml_collections.ConfigDict(
      {'hflip': False, 'rotation': 0.0, 'shift': 0.0, 'pad_crop': 0})
  c.data.num_threads = 4
  c.data.train_records = 0    # > 0: use only the first N records (quick runs)
  c.data.eval_records = 0

  c.model = ml_collections.ConfigDict({'name': 'small_cnn'})
  c.task = ml_collections.ConfigDict({'name': 'affect',
                                      'targets': ('valence', 'arousal')})
  c.optim = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 1e-3,
                                       'momentum': 0.9, 'nesterov': True})
  c.schedule = ml_collections.ConfigDict({'name': 'constant'})
  # early_stopping / reduce_on_plateau sections, see fer_jax/train/callbacks.py
  c.callbacks = ml_collections.ConfigDict()
  # Chained stages (cascades, freeze-then-unfreeze): fer_jax/train/stages.py.
  c.stages = ()
  return c
