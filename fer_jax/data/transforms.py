"""Per-image colour, scaling and augmentation ops (numpy/cv2).

Images are HxWxC (C in {1, 3}, RGB order), uint8 or float32; every op returns
a 3-D HxWxC array (see `crops` for the shared conventions on dtypes, points
and border modes). Random ops take an explicit np.random.Generator and are
deterministic given its state. Geometric ops also move an optional (K, 2)
array of (x, y) landmarks with the same matrix and then return
(img, landmarks). Landmark indices are not relabelled by a flip (left-eye
points stay at the same index, now on the right): swap them if a model
relies on index semantics.

Face crops (box, landmark box, eye alignment) live in `fer_jax.data.crops`.
"""
from typing import Iterable, Sequence, Tuple, Union

import cv2
import numpy as np

from fer_jax.data import crops
from fer_jax.data.crops import as_hwc, restore_channels, with_points

Size = crops.Size
Stat = Union[float, Sequence[float], np.ndarray]


# ------------------------------------------------------------------ colour


def to_gray(img: np.ndarray) -> np.ndarray:
  """RGB -> HxWx1 luma with ITU-R BT.601 weights .299 R + .587 G + .114 B."""
  img = as_hwc(img)
  if img.shape[-1] == 1:
    return img
  return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]


def to_rgb(img: np.ndarray) -> np.ndarray:
  """Gray -> HxWx3 by repeating the channel; RGB passes through."""
  img = as_hwc(img)
  return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def to_channels(img: np.ndarray, c: int) -> np.ndarray:
  """HxWxc with c in {1, 3}, converting as needed."""
  if c == 1:
    return to_gray(img)
  if c == 3:
    return to_rgb(img)
  raise ValueError(f'c must be 1 or 3, got {c}.')


# ------------------------------------------------------------ value scaling


def minmax_stretch(img: np.ndarray) -> np.ndarray:
  """Float32 image linearly stretched to [0, 255] (001's min-max normalisation).

  Min and max are taken over the whole image (all channels), so colour
  balance is kept. A constant image has nothing to stretch and becomes zeros.
  """
  x = as_hwc(img).astype(np.float32)
  lo, hi = float(x.min()), float(x.max())
  if hi <= lo:
    return np.zeros_like(x)
  return (x - lo) * np.float32(255. / (hi - lo))


def normalize(img: np.ndarray, mean: Stat = 0.5, std: Stat = 0.5,
              max_value: float = 255.) -> np.ndarray:
  """Float32 ((img / max_value) - mean) / std, per channel if mean/std are [C].

  The image is first scaled to [0, 1] (max_value=1 for images that already
  are); 002's mean 0.5 / std 0.5 then maps pixels to [-1, 1].
  """
  x = as_hwc(img).astype(np.float32) / np.float32(max_value)
  return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
          ).astype(np.float32)


def featurewise_stats(images: Union[np.ndarray, Iterable[np.ndarray]],
                      max_value: float = 255.) -> Tuple[np.ndarray, np.ndarray]:
  """Dataset-wide per-channel (mean [C], std [C]) on the [0, 1] scale.

  Keras' featurewise_center / featurewise_std_normalization (004): moments
  over all images and pixels, population std. Accepts an [N, H, W, C] array or
  any iterable of images (sizes may differ); images are merged one at a time
  (Chan et al.'s pairwise update), so memory stays at one image. Feed the
  result to `normalize(img, mean, std, max_value)`.
  """
  n, mean, m2 = 0, 0., 0.
  for img in images:
    x = as_hwc(img)
    x = x.reshape(-1, x.shape[-1]).astype(np.float64) / max_value
    k, mk = x.shape[0], x.mean(axis=0)
    m2k = ((x - mk) ** 2).sum(axis=0)
    delta = mk - mean
    total = n + k
    mean = mean + delta * k / total
    m2 = m2 + m2k + delta ** 2 * n * k / total
    n = total
  if n == 0:
    raise ValueError('featurewise_stats needs at least one image.')
  return (np.asarray(mean, np.float32),
          np.sqrt(np.asarray(m2) / n).astype(np.float32))


# ----------------------------------------------------------------- resizing


def resize(img: np.ndarray, size: Size, landmarks=None):
  """Resize to size (int: square, or (h, w)); moves landmarks along.

  INTER_AREA when neither side grows (it averages, so no aliasing), else
  INTER_LINEAR (INTER_AREA degrades to nearest when enlarging).
  """
  img = as_hwc(img)
  h, w = img.shape[:2]
  out_h, out_w = crops.size_hw(size)
  interp = (cv2.INTER_AREA if out_h <= h and out_w <= w else cv2.INTER_LINEAR)
  out = restore_channels(
      cv2.resize(img, (out_w, out_h), interpolation=interp), img.shape[-1])
  if landmarks is not None:
    fx, fy = out_w / w, out_h / h
    landmarks = crops.transform_points(
        landmarks, [[fx, 0., 0.5 * fx - 0.5], [0., fy, 0.5 * fy - 0.5]])
  return with_points(out, landmarks)


# -------------------------------------------------- deterministic geometry


def hflip(img: np.ndarray, landmarks=None):
  """Mirror left-right; x -> W - 1 - x for landmarks."""
  img = as_hwc(img)
  out = np.ascontiguousarray(img[:, ::-1])
  if landmarks is not None:
    landmarks = crops.as_points(landmarks).copy()
    landmarks[:, 0] = img.shape[1] - 1 - landmarks[:, 0]
  return with_points(out, landmarks)


def rotation_matrix(hw: Tuple[int, int], degrees: float) -> np.ndarray:
  """2x3 rotation about the image centre; positive = counter-clockwise as
  displayed (cv2's convention, y pointing down)."""
  h, w = hw
  return cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)


def rotate(img: np.ndarray, degrees: float, landmarks=None, *,
           border: str = 'nearest', value: float = 0.):
  """Rotates about the centre, same output size (see `rotation_matrix`)."""
  img = as_hwc(img)
  m = rotation_matrix(img.shape[:2], degrees)
  return crops.warp_affine(img, m, img.shape[:2], landmarks, border=border,
                           value=value)


def shift(img: np.ndarray, dx: float, dy: float, landmarks=None, *,
          border: str = 'nearest', value: float = 0.):
  """Translates content by (dx, dy) pixels (+x right, +y down)."""
  img = as_hwc(img)
  m = np.array([[1., 0., dx], [0., 1., dy]])
  return crops.warp_affine(img, m, img.shape[:2], landmarks, border=border,
                           value=value)


# ------------------------------------------------------------ augmentations


def random_hflip(img: np.ndarray, rng: np.random.Generator, p: float = 0.5,
                 landmarks=None):
  """`hflip` with probability p."""
  if rng.random() < p:
    return hflip(img, landmarks)
  return with_points(as_hwc(img), None if landmarks is None
                     else crops.as_points(landmarks))


def random_rotation(img: np.ndarray, rng: np.random.Generator,
                    max_degrees: float, landmarks=None, *,
                    border: str = 'nearest', value: float = 0.):
  """Rotation by U(-max_degrees, max_degrees) about the centre (004: 45).

  border 'nearest' is the fill of Keras' ImageDataGenerator, which 004 used.
  """
  degrees = rng.uniform(-max_degrees, max_degrees)
  return rotate(img, degrees, landmarks, border=border, value=value)


def random_shift(img: np.ndarray, rng: np.random.Generator,
                 max_frac: Union[float, Tuple[float, float]],
                 landmarks=None, *, border: str = 'nearest',
                 value: float = 0.):
  """Shift by whole pixels, up to max_frac (or (frac_h, frac_w)) of the size.

  004 shifts by up to 20% of width/height. Offsets are integers drawn
  uniformly from [-floor(frac * size), floor(frac * size)], independently per
  axis (Keras draws real offsets; whole pixels avoid a resampling blur).
  """
  img = as_hwc(img)
  h, w = img.shape[:2]
  fh, fw = (max_frac, max_frac) if np.isscalar(max_frac) else max_frac
  my, mx = int(np.floor(fh * h)), int(np.floor(fw * w))
  dy = int(rng.integers(-my, my, endpoint=True))
  dx = int(rng.integers(-mx, mx, endpoint=True))
  return shift(img, dx, dy, landmarks, border=border, value=value)


def pad_random_crop(img: np.ndarray, rng: np.random.Generator, pad: int,
                    landmarks=None, *, border: str = 'constant',
                    value: float = 0.):
  """Pads `pad` pixels per side, then crops a random window of the input size.

  The CIFAR-style augmentation 003 uses for its ResNets (zero padding).
  """
  img = as_hwc(img)
  h, w, c = img.shape
  padded = restore_channels(cv2.copyMakeBorder(
      img, pad, pad, pad, pad, crops.border_mode(border), value=(value,) * 4),
                            c)
  oy, ox = (int(v) for v in rng.integers(0, 2 * pad, size=2, endpoint=True))
  out = np.ascontiguousarray(padded[oy:oy + h, ox:ox + w])
  if landmarks is not None:
    landmarks = crops.as_points(landmarks) + np.array(
        [pad - ox, pad - oy], np.float32)
  return with_points(out, landmarks)


def random_brightness_contrast(img: np.ndarray, rng: np.random.Generator,
                               max_brightness: float = 0.2,
                               max_contrast: float = 0.2,
                               max_value: float = 255.) -> np.ndarray:
  """Contrast x U(1 -+ max_contrast) about the image mean, then brightness
  + U(-+max_brightness) x max_value; clipped to [0, max_value], dtype kept."""
  img = as_hwc(img)
  contrast = rng.uniform(1. - max_contrast, 1. + max_contrast)
  brightness = rng.uniform(-max_brightness, max_brightness) * max_value
  x = img.astype(np.float32)
  mean = x.mean()
  x = np.clip((x - mean) * contrast + mean + brightness, 0., max_value)
  if img.dtype == np.uint8:
    return np.rint(x).astype(np.uint8)
  return x.astype(np.float32)
