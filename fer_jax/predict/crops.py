"""Faces of an image cut as a model wants them: the detector's box, 001's
eye-aligned crop or 002's landmark box, and the crop a trained run's data
section implies (`crop_of_training`), so a workdir sees faces cut as in training.
"""
import dataclasses
import sys
from typing import List, Optional

import cv2
import numpy as np

from fer_jax.data import crops as crops_lib
from fer_jax.data import transforms
from fer_jax.face import detect


@dataclasses.dataclass(frozen=True)
class CropSpec:
  """How a detected face becomes the model's input crop.

  method: 'box' (the detector's box, as datasets crop their face boxes),
    'eyes' (001's eye-aligned crop; falls back to 'box' when two eyes are not
    found, and the row's `crop` says so) or 'landmarks' (002's box of the 68
    landmarks dlib finds in the detector's box, `crops.landmark_box_crop`;
    needs the 'landmarks' extra, fer_jax/face/landmarks.py).
  size: crop side in pixels (a box is cut at its own resolution, then
    resized as `transforms.resize` does); None keeps the box's own resolution
    and leaves the resize to the preprocessing (a run's, as in training; the
    fer package's bilinear).
  square: grow the shorter side about the centre first (fer's `tosquare`).
  offset: pixels added on every side (fer: 10).
  pad: 'nearest' (replicate the border), 'zero', or 'bottom_mean' (fer: the
    mean gray level of the image's last two rows) where the crop leaves the image.
  """
  method: str = 'box'
  size: Optional[int] = None
  square: bool = False
  offset: int = 0
  pad: str = 'nearest'


@dataclasses.dataclass
class Faces:
  """Faces of one image: boxes (N, 4) as x, y, w, h; crops; crop method used."""
  boxes: np.ndarray
  crops: List[np.ndarray]
  methods: List[str]

  def __len__(self):
    return len(self.boxes)


# -------------------------------------------------------------------- crops


def _box_crop(image, box, spec: CropSpec, pad_value: float):
  x, y, w, h = box
  if spec.square and w != h:  # fer's tosquare, integer arithmetic as there
    d = abs(h - w)
    x, w = (x - d // 2, w + d) if h > w else (x, w)
    y, h = (y - d // 2, h + d) if w > h else (y, h)
  o = spec.offset
  edges = (x - o, y - o, x + w + o, y + h + o)
  # The box's own pixels (an exact copy, padded where it leaves the image),
  # then the pipeline's resize: what training sees of a dataset's face crop.
  if spec.pad == 'nearest':
    out = crops_lib.crop_box(image, edges, border='nearest')
  else:
    out = crops_lib.crop_box(image, edges, border='constant', value=pad_value)
  return transforms.resize(out, spec.size) if spec.size else out


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
  """HxWx3 uint8 of an RGB or gray image."""
  image = crops_lib.as_hwc(image)
  if image.dtype != np.uint8:
    image = np.clip(image, 0, 255).astype(np.uint8)
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  return image


def crop_faces(image: np.ndarray, boxes, crop: CropSpec = CropSpec(),
               gray: Optional[np.ndarray] = None) -> Faces:
  """Model crops (uint8 HxWx3 RGB) of given (x, y, w, h) boxes of an RGB image.

  gray: `detect.to_gray(image)` when the caller has it (the eye search).
  """
  if crop.pad not in ('nearest', 'zero', 'bottom_mean'):
    raise ValueError(f'Unknown crop pad {crop.pad!r}; valid: nearest, zero, '
                     'bottom_mean')
  image = as_rgb_uint8(image)
  boxes = [tuple(int(v) for v in b) for b in np.asarray(boxes).reshape(-1, 4)]
  pad_value = 0.0
  if crop.pad == 'bottom_mean' and boxes:
    pad_value = float(np.mean(cv2.cvtColor(image[-2:], cv2.COLOR_RGB2GRAY)))
  if crop.method == 'eyes' and gray is None:
    gray = detect.to_gray(image)
  out, methods = [], []
  if crop.method == 'landmarks' and boxes:  # dlib on every box at once
    from fer_jax.face import landmarks  # pylint: disable=g-import-not-at-top
    points = landmarks.dlib_landmarks(
        image, [(x, y, x + w, y + h) for x, y, w, h in boxes])
  for i, box in enumerate(boxes):
    x, y, w, h = box
    method = 'box'
    if crop.method == 'landmarks':
      # As the training pipeline crops: the tight box, stretched to the size.
      out.append(crops_lib.landmark_box_crop(image, points[i], crop.size or w))
      method = 'landmarks'
    elif crop.method == 'eyes':
      eyes = detect.find_eyes(gray, (x, y, x + w, y + h))
      if eyes is not None:
        out.append(crops_lib.align_by_eyes(image, eyes, crop.size or w))
        method = 'eyes'
      else:
        method = 'box_no_eyes'
    if method not in ('eyes', 'landmarks'):
      out.append(_box_crop(image, box, crop, pad_value))
    methods.append(method)
  return Faces(np.asarray(boxes, np.int64).reshape(-1, 4), out, methods)


def faces_in_image(image: np.ndarray, crop: CropSpec = CropSpec(),
                   min_size: int = 20, detect_width: Optional[int] = None,
                   profile: bool = True) -> Faces:
  """Boxes and model crops (uint8 HxWx3 RGB) of every face of an RGB image."""
  image = as_rgb_uint8(image)
  gray = detect.to_gray(image)
  found = detect.detect_faces(gray, min_size, width=detect_width, profile=profile)
  return crop_faces(image, found, crop, gray)


def crop_of_training(train_crop: str, size: int, where: str) -> CropSpec:
  """The CropSpec matching a run's `config.data.crop`.

  'none' (records that are face crops already): the detector's box at its own
  resolution; the run's preprocessing then converts the channels and resizes,
  in that order and with the same interpolation as training.
  'landmarks' (002's landmark box) needs dlib's 68 points (the 'landmarks'
  extra); without it the detector's box stands in, with a warning on stderr.
  """
  if train_crop == 'landmarks':
    from fer_jax.face import landmarks  # pylint: disable=g-import-not-at-top
    try:
      landmarks.shape_predictor()  # loads once; fails here, not per frame
      return CropSpec('landmarks', size=size)
    except ImportError as e:
      print(f'{where}: trained on landmark-box crops (002) but the 68 landmarks '
            f'are not available ({e}); using the face detector box instead.',
            file=sys.stderr)
  return CropSpec('eyes', size=size) if train_crop == 'eyes' else CropSpec('box')
