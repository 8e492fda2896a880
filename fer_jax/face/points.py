"""Eye centres and 68 landmarks of a photograph's face, for the data pipeline's
crops of records that carry none (001's eye-aligned crop, 002's landmark box).

`find_points` is what `data.pipeline.Preprocess` takes as its `detector`: the
pipeline sits below the face stage and receives it as a function.
"""
import numpy as np

from fer_jax.data.pipeline import BadRecordError
from fer_jax.face import detect
from fer_jax.face import landmarks


def detected_eyes(image: np.ndarray, where: str) -> np.ndarray:
  """(2, 2) eye centres from the face detector (fer_jax/face/detect.py), for
  001's eye-aligned crop of a record that carries no eyes or landmarks."""
  try:
    face = detect.detect_face(image, eyes=True)
  except detect.NoFaceError as e:
    raise BadRecordError(f'{where}: the eye-aligned crop needs eyes; the record has '
                         f'none and the detector found none ({e}). Skip such records '
                         "(skip_bad) or use crop='none'.") from e
  if face.eyes is None:
    raise BadRecordError(f'{where}: the eye-aligned crop needs eyes; the record has '
                         f'none and the detector found a face at {face.box} but not '
                         "two eyes in it. Skip such records (skip_bad) or use "
                         "crop='none'.")
  return np.asarray(face.eyes, np.float64)


def detected_landmarks(image: np.ndarray, where: str) -> np.ndarray:
  """(68, 2) landmarks of the largest face from the face detector and dlib's
  shape predictor (fer_jax/face/landmarks.py, the 'landmarks' extra), for
  002's landmark-box crop of a record that carries none."""
  try:
    landmarks.shape_predictor()  # before detection: the same error every record
  except ImportError as e:
    raise ImportError(f'{where}: the landmark-box crop needs 68 landmarks; the '
                      f'record has none and {e}. Or use records with landmarks '
                      "or another crop ('none', 'eyes').") from e
  try:
    face = detect.detect_face(image, eyes=False)
  except detect.NoFaceError as e:
    raise BadRecordError(f'{where}: the landmark-box crop needs 68 landmarks; the '
                         f'record has none and the detector found no face ({e}). '
                         "Skip such records (skip_bad) or use crop='none'.") from e
  return landmarks.dlib_landmarks(image, [face.box])[0].astype(np.float64)


def find_points(image: np.ndarray, what: str, where: str) -> np.ndarray:
  """`detected_eyes` (what='eyes') or `detected_landmarks` ('landmarks')."""
  if what == 'eyes':
    return detected_eyes(image, where)
  if what == 'landmarks':
    return detected_landmarks(image, where)
  raise ValueError(f"find_points: what must be 'eyes' or 'landmarks', got {what!r}")
