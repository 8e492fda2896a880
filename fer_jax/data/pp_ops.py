"""The preprocessing ops, registered by name (`OPS`); `fer_jax.data.pp`
composes them from a string.

An op is registered as a factory of its arguments; the op it returns maps
(image, record, Context) to the next image: the record gives a crop its points,
the context the augmentation rng (None outside training: random ops do
nothing), the face detector and the record's name for errors. A value op turns
the uint8 image into the float32 example.

  crop_eyes(size)       eye-aligned box (001), size x size; the record's eyes,
                        else the detector's
  crop_landmarks(size)  landmark box (002), size x size; the record's 68
                        landmarks, else the detector's
  gray, rgb             1 or 3 channels (BT.601 luma; gray repeated)
  resize(size)          size x size (area shrinking, bilinear growing), unless
                        it is already
  rotate(degrees)       random rotation within +-degrees      (training only)
  shift(fraction)       random shift up to fraction of a side (training only)
  flip_lr               random horizontal flip, p = 0.5       (training only)
  pad_crop(pad)         pad, then a random crop back          (training only)
  unit                  x / 255
  minmax                per-image stretch to [0, 255], then / 255 (001)
  mean_std(mean, std)   (x / 255 - mean) / std, per channel for tuples (002)
  featurewise(mean, std)  Keras' (x - mean) / (std + 1e-6), pixel units (004)
  float                 float32 pixels, 0..255
"""
import dataclasses
import functools
from typing import Callable, Optional

import numpy as np

from fer_jax.data import crops, transforms
from fer_jax.registry import Registry

OPS = Registry('pp op')
# Op names by role: value ops end a pipeline; crop ops read a record's points.
VALUE_OPS = ('unit', 'minmax', 'mean_std', 'featurewise', 'float')
# Value ops of a pixel's value and channel alone (not minmax, which reads the
# whole image): a [256, C] table of their outputs computes them.
PIXELWISE_VALUE_OPS = ('unit', 'mean_std', 'featurewise', 'float')
CROP_OPS = {'crop_eyes': 'eyes', 'crop_landmarks': 'landmarks'}
RANDOM_OPS = ('rotate', 'shift', 'flip_lr', 'pad_crop')


@dataclasses.dataclass(frozen=True)
class Context:
  """What an op may need besides the image and its record."""
  rng: Optional[np.random.Generator] = None
  detector: Optional[Callable[[np.ndarray, str, str], np.ndarray]] = None
  where: str = 'record'


def _points(image, record, ctx, what):
  """The record's eyes / landmarks, else the detector's."""
  points = record.get(what)
  if points is not None:
    points = np.asarray(points, np.float64)
    if points.size and np.all(np.isfinite(points)):
      return points
  if ctx.detector is None:  # photographs without landmarks (SFEW)
    raise ValueError(f'{ctx.where}: the {what} crop needs {what}; the record has '
                     'none and no face detector was given (Preprocess.detector)')
  return ctx.detector(image, what, ctx.where)


def _crop_eyes(image, record, ctx, size):
  return crops.align_by_eyes(image, _points(image, record, ctx, 'eyes'), int(size))


def _crop_landmarks(image, record, ctx, size):
  points = _points(image, record, ctx, 'landmarks')
  return crops.landmark_box_crop(image, points, int(size))


def _gray(image, record, ctx):
  return transforms.to_channels(image, 1)


def _rgb(image, record, ctx):
  return transforms.to_channels(image, 3)


def _resize(image, record, ctx, size):
  size = int(size)
  return image if image.shape[:2] == (size, size) else transforms.resize(image, size)


def _random_op(fn, image, record, ctx, *args):
  return image if ctx.rng is None else fn(image, ctx.rng, *args)


def _value_op(fn, image, record, ctx, *args):
  return fn(image, *args)


def _random(fn):
  """An augmentation op: applied only with an rng (training)."""
  return functools.partial(_random_op, fn)


def _value(fn):
  """A value op: a function of the image alone."""
  return functools.partial(_value_op, fn)


def _unit(image):
  return image.astype(np.float32) / 255.0


def _minmax(image):
  return transforms.minmax_stretch(image) / 255.0


def _featurewise(image, mean, std):
  # Keras ImageDataGenerator.standardize: x -= mean; x /= (std + 1e-6).
  x = image.astype(np.float32) - np.asarray(mean, np.float32)
  return x / (np.asarray(std, np.float32) + np.float32(1e-6))


def _float(image):
  return image.astype(np.float32)


def _call(fn, values, image, record, ctx):
  return fn(image, record, ctx, *values)


def _register(name, fn, *params, **defaults):
  """Registers op `name(params)`: its arguments, bound by position or
  keyword, follow (image, record, context) in the calls of `fn`."""
  def factory(*args, **kwargs):
    if len(args) > len(params):
      raise TypeError(f'takes {len(params)} arguments, got {len(args)}')
    bound = dict(zip(params, args))
    for k, v in kwargs.items():
      if k not in params or k in bound:
        raise TypeError(f'unexpected or repeated argument {k!r}')
      bound[k] = v
    missing = [p for p in params if p not in bound and p not in defaults]
    if missing:
      raise TypeError(f'missing argument {", ".join(missing)}')
    values = tuple(bound.get(p, defaults.get(p)) for p in params)
    return functools.partial(_call, fn, values)
  OPS.register(name)(factory)


_register('crop_eyes', _crop_eyes, 'size')
_register('crop_landmarks', _crop_landmarks, 'size')
_register('gray', _gray)
_register('rgb', _rgb)
_register('resize', _resize, 'size')
_register('rotate', _random(transforms.random_rotation), 'degrees')
_register('shift', _random(transforms.random_shift), 'fraction')
_register('flip_lr', _random(transforms.random_hflip))
_register('pad_crop', _random(transforms.pad_random_crop), 'pad')
_register('unit', _value(_unit))
_register('minmax', _value(_minmax))
_register('mean_std', _value(transforms.normalize), 'mean', 'std', mean=0.5, std=0.5)
_register('featurewise', _value(_featurewise), 'mean', 'std')
_register('float', _value(_float))
