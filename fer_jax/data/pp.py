"""Preprocessing ops by name, composed from a string (big_vision's `pp` syntax).

    crop_eyes(256)|gray|resize(48)|flip_lr|minmax

`|` chains ops; an op is `name` or `name(args)` with Python literal arguments
(numbers, strings, tuples; keywords allowed). Each op maps (image, record,
context) to the next image: record gives a crop its points, context the
augmentation rng (None outside training: random ops do nothing), the face
detector and the record's name for errors. The last op, and only it, is a
value op: it turns the uint8 image into the float32 example.

The ops and what each does: `fer_jax.data.pp_ops`.
"""
import ast
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from fer_jax.data import pp_ops
from fer_jax.data.pp_ops import CROP_OPS, VALUE_OPS

Op = Tuple[str, tuple, dict]  # name, positional and keyword arguments


def parse(spec: str) -> List[Op]:
  """[(name, args, kwargs)] of a pp string; ValueError naming a bad op."""
  out = []
  for text in (s.strip() for s in spec.split('|')):
    try:
      node = ast.parse(text, mode='eval').body
      if isinstance(node, ast.Name):
        out.append((node.id, (), {}))
        continue
      if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError('not a name or a call')
      args = tuple(ast.literal_eval(a) for a in node.args)
      kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
      if None in kwargs:
        raise ValueError('** is not allowed')
    except (SyntaxError, ValueError) as e:
      raise ValueError(f'pp {spec!r}: op {text!r} is not name or '
                       f'name(literal args) ({e})') from None
    out.append((node.func.id, args, kwargs))
  return out


def unparse(ops: List[Op]) -> str:
  """The pp string of parsed ops (parse(unparse(ops)) == ops)."""
  def one(name, args, kwargs):
    if not args and not kwargs:
      return name
    items = [repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()]
    return f'{name}({", ".join(items)})'
  return '|'.join(one(*op) for op in ops)


def build(spec: str) -> List[Callable]:
  """The ops of a pp string as callables (image, record, Context) -> image."""
  ops = parse(spec)
  names = [name for name, _, _ in ops]
  values = [i for i, n in enumerate(names) if n in VALUE_OPS]
  if values != [len(ops) - 1]:
    raise ValueError(f'pp {spec!r}: must end with one value op '
                     f'({", ".join(VALUE_OPS)}) and have no other')
  out = []
  for name, args, kwargs in ops:
    try:
      factory = pp_ops.OPS.get(name)
    except KeyError as e:
      raise ValueError(f'pp {spec!r}: {e.args[0]}') from None
    try:
      out.append(factory(*args, **kwargs))
    except TypeError as e:
      raise ValueError(f'pp {spec!r}: {name}: {e}') from None
  return out


def crop_of(spec: str) -> Tuple[str, Optional[int]]:
  """('none' | 'eyes' | 'landmarks', its size) of a pp string."""
  for name, args, kwargs in parse(spec):
    if name in CROP_OPS:
      return CROP_OPS[name], _size_arg(args, kwargs)
  return 'none', None


def output_size(spec: str) -> Optional[int]:
  """The side of the last resize or crop op (None: the record's own)."""
  size = None
  for name, args, kwargs in parse(spec):
    if name == 'resize' or name in CROP_OPS:
      size = _size_arg(args, kwargs)
  return size


def output_channels(spec: str) -> Optional[int]:
  """1 or 3 from the last gray / rgb op (None: the record's own)."""
  channels = None
  for name, _, _ in parse(spec):
    channels = {'gray': 1, 'rgb': 3}.get(name, channels)
  return channels


def fields_of(spec: str) -> dict:
  """The `config.data` fields a pp string implies (crop, image_size,
  channels, augment, normalize and, for mean_std, mean and std): what code
  that reads those fields must see."""
  ops = parse(spec)
  out = {'crop': crop_of(spec)[0]}
  if output_size(spec) is not None:
    out['image_size'] = output_size(spec)
  if output_channels(spec) is not None:
    out['channels'] = output_channels(spec)
  aug = {'hflip': False, 'rotation': 0.0, 'shift': 0.0, 'pad_crop': 0}
  for name, args, kwargs in ops:
    if name == 'flip_lr':
      aug['hflip'] = True
    elif name in ('rotate', 'shift'):
      key = 'rotation' if name == 'rotate' else 'shift'
      aug[key] = float(_arg(args, kwargs, 'degrees' if name == 'rotate'
                            else 'fraction'))
    elif name == 'pad_crop':
      aug['pad_crop'] = int(_arg(args, kwargs, 'pad'))
  out['augment'] = aug
  name, args, kwargs = ops[-1]
  out['normalize'] = 'none' if name == 'float' else name
  if name == 'mean_std':
    out['mean'] = _arg(args, kwargs, 'mean', 0, 0.5)
    out['std'] = _arg(args, kwargs, 'std', 1, 0.5)
  return out


def _arg(args, kwargs, key, index=0, default=None):
  if key in kwargs:
    return kwargs[key]
  return args[index] if len(args) > index else default


def with_crop(spec: str, crop: str) -> str:
  """`spec` with its crop op replaced by `crop` ('none' drops it) at the
  pipeline's output size."""
  ops = [op for op in parse(spec) if op[0] not in CROP_OPS]
  if crop == 'none':
    return unparse(ops)
  op = next((n for n, kind in CROP_OPS.items() if kind == crop), None)
  if op is None:
    raise ValueError(f'Unknown crop {crop!r}; valid: none, '
                     f'{", ".join(CROP_OPS.values())}')
  size = output_size(spec)
  if size is None:
    raise ValueError(f'pp {spec!r}: a {crop} crop needs a size (add resize)')
  return unparse([(op, (size,), {})] + ops)


def with_value(spec: str, value: str) -> str:
  """`spec` with its value op replaced by `value` (e.g. 'float')."""
  ops = parse(spec)
  return unparse(ops[:-1] + parse(value))


def _size_arg(args, kwargs) -> Optional[int]:
  size = _arg(args, kwargs, 'size')
  return None if size is None else int(size)



def from_fields(data) -> str:
  """The pp string of a `config.data` section's fields (crop, channels,
  image_size, augment, normalize, mean, std): how runs written before
  `data.pp` existed preprocess. featurewise gets no arguments here (the
  statistics are added where they are known)."""
  size = int(data['image_size'])
  crop = data.get('crop', 'none') or 'none'
  if crop not in ('none',) + tuple(CROP_OPS.values()):
    raise ValueError(f'Unknown crop {crop!r}; valid: none, eyes, landmarks')
  ops = [] if crop == 'none' else [f'crop_{crop}({size})']
  channels = data.get('channels', 3)
  if channels not in (1, 3):
    raise ValueError(f'data.channels must be 1 or 3, got {channels}')
  ops += ['gray' if channels == 1 else 'rgb', f'resize({size})']
  aug = data.get('augment', None) or {}
  # The order of the random draws of the runs before pp.
  if aug.get('rotation', 0.0):
    ops.append(f'rotate({float(aug["rotation"])!r})')
  if aug.get('shift', 0.0):
    ops.append(f'shift({float(aug["shift"])!r})')
  if aug.get('hflip', False):
    ops.append('flip_lr')
  if aug.get('pad_crop', 0):
    ops.append(f'pad_crop({int(aug["pad_crop"])})')
  normalize = data.get('normalize', 'unit')
  if normalize == 'mean_std':
    mean, std = data.get('mean', 0.5), data.get('std', 0.5)
    ops.append(unparse([('mean_std', (_literal(mean), _literal(std)), {})]))
  elif normalize == 'none':
    ops.append('float')
  elif normalize in VALUE_OPS:
    ops.append(normalize)
  else:
    raise ValueError(f'Unknown normalize {normalize!r}; valid: unit, minmax, '
                     'mean_std, featurewise, none')
  return '|'.join(ops)


def _literal(value: Any):
  """A config value as a pp literal (lists and arrays as tuples)."""
  if isinstance(value, (list, tuple, np.ndarray)):
    return tuple(float(v) for v in value)
  return float(value)
