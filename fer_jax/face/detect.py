"""Face detection with OpenCV 4 Haar cascades, and the papers' face crops.

detect_cascade: the raw boxes of one cascade (frontal, profile or eye).
detect_faces: every face of an image (frontal cascade, then profile both ways
when the frontal finds none; overlapping boxes merged), optionally on a
downscaled copy with the boxes mapped back.
detect_face: the largest of those faces; eyes are searched inside the face's
upper half. No face raises
`NoFaceError` (one clear type, never a deep cv2 error); an eye crop without two
eyes raises `NoEyesError` (a NoFaceError).
crop_face methods: 'cascade' (004: the cascade box), 'eyes' (001: eye-aligned,
`crops.align_by_eyes`), 'landmarks' (002: `crops.landmark_box_crop`, needs
68 landmarks given by the caller, e.g. dlib's from fer_jax/face/landmarks.py,
the optional 'landmarks' extra).
"""
import dataclasses
import os
import threading
from typing import List, Optional, Tuple

import cv2
import numpy as np

from fer_jax.data import crops

CASCADES = {'frontal': 'haarcascade_frontalface_default.xml',
            'profile': 'haarcascade_profileface.xml',
            'eye': 'haarcascade_eye.xml'}


class NoFaceError(ValueError):
  """No face was found in the image."""


class NoEyesError(NoFaceError):
  """A face was found but not two eyes inside it."""


@dataclasses.dataclass(frozen=True)
class Face:
  box: Tuple[int, int, int, int]        # x0, y0, x1, y1 (edge coordinates)
  kind: str                             # 'frontal' or 'profile'
  eyes: Optional[np.ndarray] = None     # (2, 2) centres, eyes[0] on the image left


_LOCAL = threading.local()


def cascade(name: str) -> cv2.CascadeClassifier:
  """The named cascade, one instance per thread: detectMultiScale on one
  classifier from two threads at once mixes up their results."""
  cache = _LOCAL.__dict__.setdefault('cascades', {})
  if name not in cache:
    path = os.path.join(cv2.data.haarcascades, CASCADES[name])
    c = cv2.CascadeClassifier(path)
    if c.empty():
      raise RuntimeError(f'could not load the {name} Haar cascade from {path} '
                         '(opencv-python 4.x ships them; 5.x does not)')
    cache[name] = c
  return cache[name]


def to_gray(image: np.ndarray) -> np.ndarray:
  """uint8 gray of an RGB or gray image, as the cascades read it.

  No histogram equalization: a global equalizeHist stretches a plain
  background's few gray levels over the whole range and the frontal cascade
  then misses a clear face on a plain wall (the webcam's common case: 0 of 60
  frames on a dark wall, 35 of 60 on a mid-gray one; 60 of 60 without). On
  LFW plain gray finds 97 of 100 faces (99 equalized), and more eye pairs
  (51 of 97 faces, against 40).
  """
  img = crops.as_hwc(image)
  if img.dtype != np.uint8:
    img = np.clip(img, 0, 255).astype(np.uint8)
  gray = img[..., 0] if img.shape[-1] == 1 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
  return np.ascontiguousarray(gray)


def box_iou(a, b) -> np.ndarray:
  """IoU matrix [len(a), len(b)] of (x, y, w, h) boxes."""
  a = np.asarray(a, np.float64).reshape(-1, 4)
  b = np.asarray(b, np.float64).reshape(-1, 4)
  x0 = np.maximum(a[:, None, 0], b[None, :, 0])
  y0 = np.maximum(a[:, None, 1], b[None, :, 1])
  x1 = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
  y1 = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
  inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
  union = (a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter)
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def detect_cascade(gray: np.ndarray, name: str = 'frontal', min_size: int = 20):
  """Every (x, y, w, h) box one Haar cascade finds in a uint8 gray image.

  name: 'frontal', 'profile' (faces turned one way only) or 'eye'. The raw
  detector, no ordering or merging (see `detect_face` for the largest face).
  """
  found = cascade(name).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         minSize=(min_size, min_size))
  return [tuple(map(int, f)) for f in found]


def find_eyes(gray: np.ndarray, box) -> Optional[np.ndarray]:
  """Two eye centres inside the upper half of the face box, or None."""
  x0, y0, x1, y1 = box
  w, h = x1 - x0, y1 - y0
  roi = gray[y0:y0 + h // 2 + h // 8, x0:x1]
  eyes = detect_cascade(roi, 'eye', max(4, w // 10))
  left = [e for e in eyes if e[0] + e[2] / 2 < w / 2]
  right = [e for e in eyes if e[0] + e[2] / 2 >= w / 2]
  if not left or not right:
    return None
  pick = lambda es: max(es, key=lambda e: e[2] * e[3])  # noqa: E731
  centres = [(x0 + e[0] + e[2] / 2 - .5, y0 + e[1] + e[3] / 2 - .5)
             for e in (pick(left), pick(right))]
  return np.array(centres, np.float32)


def _cascade_faces(gray: np.ndarray, min_size: int, profile: bool):
  """('frontal' | 'profile', raw boxes): frontal, else profile both ways."""
  min_size = max(1, min(min_size, *gray.shape[:2]))
  found = detect_cascade(gray, 'frontal', min_size)
  if found or not profile:
    return 'frontal', found
  w = gray.shape[1]
  found = detect_cascade(gray, 'profile', min_size)  # faces turned one way
  found += [(w - x - fw, y, fw, fh) for x, y, fw, fh in
            detect_cascade(np.ascontiguousarray(gray[:, ::-1]), 'profile',
                           min_size)]
  return 'profile', found


def detect_faces(gray: np.ndarray, min_size: int = 20, width: Optional[int] = None,
                 profile: bool = True, overlap: float = 0.3
                 ) -> List[Tuple[int, int, int, int]]:
  """Every face (x, y, w, h) of a uint8 gray image (`to_gray`), left to right.

  Frontal cascade; only if it finds none, the profile cascade both ways
  (`profile=False` skips that: it triples the cost of a frame without a
  face). Of boxes overlapping by IoU > `overlap` the larger is kept.
  width: detect on a copy downscaled to this width (when narrower than the
  image; `min_size` scales with it) and map the boxes back to full size.
  """
  scale = 1.0
  if width and gray.shape[1] > width:
    scale = width / gray.shape[1]
    small = cv2.resize(gray, (int(width), max(1, round(gray.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    _, found = _cascade_faces(small, max(1, round(min_size * scale)), profile)
    found = [tuple(int(round(v / scale)) for v in f) for f in found]
  else:
    _, found = _cascade_faces(gray, min_size, profile)
  keep = []
  for f in sorted(found, key=lambda f: -f[2] * f[3]):
    if not keep or box_iou([f], keep).max() <= overlap:
      keep.append(f)
  return sorted(keep, key=lambda f: (f[0], f[1]))


def detect_face(image: np.ndarray, min_size: int = 20, eyes: bool = True) -> Face:
  """The largest face of an image (HxW[xC], RGB or gray); NoFaceError if none."""
  gray = to_gray(image)
  kind, found = _cascade_faces(gray, min_size, profile=True)
  if not found:
    raise NoFaceError(f'no face found in a {gray.shape[1]}x{gray.shape[0]} image')
  x, y, w, h = max(found, key=lambda f: f[2] * f[3])
  box = (x, y, x + w, y + h)
  return Face(box=box, kind=kind, eyes=find_eyes(gray, box) if eyes else None)


def crop_face(image: np.ndarray, method: str, out_size, face: Optional[Face] = None,
              landmarks=None, margin: float = 0.0):
  """One of the papers' crops of the largest face (see module doc)."""
  if method == 'landmarks':
    if landmarks is None:
      raise ValueError("crop 'landmarks' (002) needs the 68 landmarks (the "
                       "dataset's, or fer_jax.face.landmarks.dlib_landmarks)")
    return crops.landmark_box_crop(image, landmarks, out_size, margin)
  face = face or detect_face(image, eyes=method == 'eyes')
  if method == 'cascade':
    x0, y0, x1, y1 = face.box
    mw, mh = margin * (x1 - x0), margin * (y1 - y0)
    return crops.crop_box(image, (x0 - mw, y0 - mh, x1 + mw, y1 + mh), out_size,
                          border='nearest')
  if method == 'eyes':
    if face.eyes is None:
      raise NoEyesError(f'face at {face.box} has no two detectable eyes')
    return crops.align_by_eyes(image, face.eyes, out_size, border='nearest')
  raise ValueError(f'Unknown crop method {method!r}; valid: cascade, eyes, landmarks')
