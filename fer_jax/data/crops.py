"""Affine warps and face crops (boxes, eye alignment, landmark boxes).

Shared by offline preprocessing, augmentation (`transforms`) and the face
detection stage, so every function here is pure numpy/cv2 and keeps landmarks
in step with the pixels.

Conventions:
  * Images are HxWxC arrays, C in {1, 3}; HxW is read as C = 1 and the channel
    axis is always kept (cv2 drops a size-1 one; we restore it). uint8 and
    float32 keep their dtype; other dtypes become float32 (cv2 has no float64
    for several ops).
  * Points/landmarks are (K, 2) arrays of (x, y) in pixel-centre coordinates:
    pixel (row i, col j) is the point (j, i), the image spans [-0.5, W - 0.5].
  * Boxes are (x0, y0, x1, y1) in pixel-edge coordinates, x1/y1 exclusive like
    slicing: box (0, 0, W, H) is the whole image, (j, i, j + 1, i + 1) pixel
    (i, j). Boxes may leave the image; outside is filled per `border`.
  * A 2x3 `matrix` maps source points to output points (cv2's forward
    convention), in pixel-centre coordinates.
  * Sizes are an int (square) or (h, w).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

Size = Union[int, Tuple[int, int]]

BORDERS = {
    'constant': cv2.BORDER_CONSTANT,    # fill with `value`
    'nearest': cv2.BORDER_REPLICATE,    # aaa|abcd|ddd (Keras' default fill)
    'reflect': cv2.BORDER_REFLECT,      # cba|abcd|dcb (scipy/Keras 'reflect')
    'reflect_101': cv2.BORDER_REFLECT_101,  # dcb|abcd|cba
    'wrap': cv2.BORDER_WRAP,            # bcd|abcd|abc
}


def as_hwc(img: np.ndarray) -> np.ndarray:
  """HxWxC view of `img` (uint8 or float32), C in {1, 3}."""
  img = np.asarray(img)
  if img.ndim == 2:
    img = img[..., None]
  if img.ndim != 3 or img.shape[-1] not in (1, 3):
    raise ValueError(f'Expected HxW, HxWx1 or HxWx3, got {img.shape}.')
  if img.dtype not in (np.uint8, np.float32):
    img = img.astype(np.float32)
  return img


def restore_channels(out: np.ndarray, c: int) -> np.ndarray:
  """Puts back the channel axis cv2 drops for single-channel images."""
  return out[..., None] if out.ndim == 2 and c == 1 else out


def size_hw(size: Size) -> Tuple[int, int]:
  if isinstance(size, (int, np.integer)):
    return int(size), int(size)
  h, w = size
  return int(h), int(w)


def border_mode(border: str) -> int:
  try:
    return BORDERS[border]
  except KeyError:
    raise ValueError(f'Unknown border {border!r}; valid: {sorted(BORDERS)}.'
                     ) from None


def as_points(points) -> np.ndarray:
  """(K, 2) float array (float64 stays float64, anything else float32)."""
  pts = np.asarray(points)
  pts = pts.astype(np.result_type(pts.dtype, np.float32))
  if pts.ndim != 2 or pts.shape[1] != 2:
    raise ValueError(f'Expected (K, 2) points, got {pts.shape}.')
  return pts


def transform_points(points, matrix: np.ndarray) -> np.ndarray:
  """Applies a 2x3 affine `matrix` to (K, 2) points."""
  pts = as_points(points)
  m = np.asarray(matrix, np.float64)
  return (pts @ m[:, :2].T + m[:, 2]).astype(pts.dtype)


def with_points(img: np.ndarray, points):
  """`img` alone, or (img, points) when points were given."""
  return img if points is None else (img, points)


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """2x3 matrix of `a` after `b`."""
  return a[:, :2] @ b + np.concatenate([np.zeros((2, 2)), a[:, 2:]], axis=1)


def warp_affine(img: np.ndarray, matrix: np.ndarray, out_size: Size,
                landmarks=None, *, border: str = 'constant',
                value: float = 0., antialias: bool = True):
  """Samples the output of affine `matrix` (source -> output) with bilinear.

  When the warp shrinks (largest singular value < 1), the image is first
  reduced with INTER_AREA so that bilinear sampling does not alias; the
  geometry (and the returned landmarks) are those of `matrix` exactly.
  Returns img, or (img, landmarks) when landmarks are given.
  """
  img = as_hwc(img)
  out_h, out_w = size_hw(out_size)
  m = np.asarray(matrix, np.float64).reshape(2, 3)
  warp_m = m
  scale = float(np.linalg.svd(m[:, :2], compute_uv=False).max())
  if antialias and scale < 1. - 1e-3:
    h, w = img.shape[:2]
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    img = restore_channels(small, img.shape[-1])
    fx, fy = sw / w, sh / h
    # Small-image point p' came from source point (p' + 0.5) / f - 0.5.
    unshrink = np.array([[1 / fx, 0., 0.5 / fx - 0.5],
                         [0., 1 / fy, 0.5 / fy - 0.5]])
    warp_m = _compose(m, unshrink)
  out = cv2.warpAffine(
      img, warp_m, (out_w, out_h), flags=cv2.INTER_LINEAR,
      borderMode=border_mode(border), borderValue=(value,) * 4)
  out = restore_channels(out, img.shape[-1])
  if landmarks is not None:
    landmarks = transform_points(landmarks, m)
  return with_points(out, landmarks)


# ---------------------------------------------------------------- box crops


def box_matrix(box: Sequence[float], out_size: Size) -> np.ndarray:
  """2x3 matrix mapping `box` (x0, y0, x1, y1) onto an out_size image."""
  x0, y0, x1, y1 = map(float, box)
  out_h, out_w = size_hw(out_size)
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f'Empty box {box}.')
  sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
  # Edge coordinate u = (x + 0.5 - x0) * sx, pixel-centre output u - 0.5.
  return np.array([[sx, 0., (0.5 - x0) * sx - 0.5],
                   [0., sy, (0.5 - y0) * sy - 0.5]])


def crop_box(img: np.ndarray, box: Sequence[float],
             out_size: Optional[Size] = None, landmarks=None, *,
             border: str = 'constant', value: float = 0.):
  """Crops the axis-aligned `box`, padding where it leaves the image.

  `out_size` defaults to the box's own (rounded) size; a box with integer
  corners and no resize is an exact copy of those pixels.
  """
  x0, y0, x1, y1 = map(float, box)
  if out_size is None:
    out_size = (max(1, round(y1 - y0)), max(1, round(x1 - x0)))
  return warp_affine(img, box_matrix(box, out_size), out_size, landmarks,
                     border=border, value=value)


def landmark_box(landmarks, margin: float = 0.,
                 square: bool = False) -> Tuple[float, float, float, float]:
  """Box around (K, 2) points, grown by `margin` x its width/height per side.

  The tight box covers the pixels of the extreme points (hence the + 1).
  `square` grows the shorter side about the centre, so resizing the crop to a
  square does not change the face's aspect ratio.
  """
  pts = as_points(landmarks).astype(np.float64)
  x0, y0 = pts.min(axis=0)
  x1, y1 = pts.max(axis=0) + 1.
  w, h = x1 - x0, y1 - y0
  x0, x1 = x0 - margin * w, x1 + margin * w
  y0, y1 = y0 - margin * h, y1 + margin * h
  if square:
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0, x1, y0, y1 = cx - side / 2, cx + side / 2, cy - side / 2, cy + side / 2
  return float(x0), float(y0), float(x1), float(y1)


def landmark_box_crop(img: np.ndarray, landmarks, out_size: Size,
                      margin: float = 0., *, square: bool = False,
                      border: str = 'constant', return_landmarks: bool = False):
  """Crop to the landmarks' bounding box, resized to out_size (002, sec. 4.3).

  The thesis crops the box of the 68 landmarks ("taking a bit of the scenery
  as well": `margin`) and stretches it to 224x224 (square=False). Returns img,
  or (img, landmarks in output coordinates) with return_landmarks.
  """
  box = landmark_box(landmarks, margin, square)
  out = crop_box(img, box, out_size, landmarks, border=border)
  return out if return_landmarks else out[0]


# ------------------------------------------------------------ eye alignment


def eye_alignment_matrix(eyes, out_size: Size, *, corner_offset: float = 0.25,
                         side: float = 0.62, top: float = 0.9,
                         bottom: float = 1.35) -> np.ndarray:
  """2x3 matrix of the eye-based face crop of 001 (Ng et al., sec. 3.1).

  eyes: (2, 2) eye centres (x, y), eyes[0] the one that ends up on the left of
  the output (the subject's right eye in a frontal photo). The image is
  rotated about the eye midpoint so the eyes are level; with e2e the distance
  between the centres, the box then spans `side` x e2e beyond each outer eye
  corner, `top` x e2e above and `bottom` x e2e below the eye line. 001 uses
  real eye corners; we only have centres, so the outer corner is approximated
  as centre -+ `corner_offset` x e2e horizontally. Box (defaults):
  2 (0.5 + 0.25 + 0.62) = 2.74 e2e wide, 0.9 + 1.35 = 2.25 e2e tall; it is
  stretched to out_size (sx != sy unless out_size has the box's aspect).
  """
  (lx, ly), (rx, ry) = np.asarray(eyes, np.float64)
  e2e = math.hypot(rx - lx, ry - ly)
  if e2e == 0:
    raise ValueError('The two eye centres coincide.')
  c, s = (rx - lx) / e2e, (ry - ly) / e2e  # cos and sin of the eye-line angle
  mid = np.array([(lx + rx) / 2, (ly + ry) / 2])
  half_w = (0.5 + corner_offset + side) * e2e
  box_w, box_h = 2 * half_w, (top + bottom) * e2e
  out_h, out_w = size_hw(out_size)
  scale = np.diag([out_w / box_w, out_h / box_h])
  rot = np.array([[c, s], [-s, c]])  # rotates the eye line onto +x
  corner = np.array([-half_w, -top * e2e])  # box top-left, eye-midpoint frame
  lin = scale @ rot
  offset = scale @ (-rot @ mid - corner) - 0.5
  return np.concatenate([lin, offset[:, None]], axis=1)


def align_by_eyes(img: np.ndarray, eyes, out_size: Size, landmarks=None, *,
                  corner_offset: float = 0.25, side: float = 0.62,
                  top: float = 0.9, bottom: float = 1.35,
                  border: str = 'constant', value: float = 0.):
  """Eye-aligned face crop of 001 (see `eye_alignment_matrix`) in one warp.

  Returns img, or (img, landmarks) when landmarks are given (pass the eye
  centres as landmarks to get where they land).
  """
  m = eye_alignment_matrix(eyes, out_size, corner_offset=corner_offset,
                           side=side, top=top, bottom=bottom)
  return warp_affine(img, m, out_size, landmarks, border=border, value=value)
