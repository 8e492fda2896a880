"""68 facial landmarks from dlib's shape predictor (the optional extra).

  pip install 'fer_jax[landmarks]'   # dlib + face-recognition-models

dlib builds from source (it needs cmake and a C++ compiler; 15-30 minutes on
two cores); face-recognition-models ships the 68-point iBUG model
(shape_predictor_68_face_landmarks.dat). The faces are those of our own Haar
detector (`fer_jax.face.detect`), handed to dlib as rectangles, so detection
behaves the same with or without the extra. Used by 002's landmark-box crop
(`crops.landmark_box_crop`) of photographs that carry no landmarks: in the data
pipeline and in the predictor (fer_jax/predict.py).

Points follow `crops`: (x, y) in pixel-centre coordinates, in iBUG order
(0-16 jaw, 17-26 brows, 27-35 nose, 36-41 and 42-47 the eyes on the image's
left and right, 48-67 mouth).
"""
import functools
import importlib.util
import os

import numpy as np

from fer_jax.data import crops

INSTALL_HINT = ("pip install 'fer_jax[landmarks]' (dlib builds from source: it "
                'needs cmake and a C++ compiler)')
MODEL_FILE = 'shape_predictor_68_face_landmarks.dat'


def _missing(what: str, cause: Exception) -> ImportError:
  return ImportError(f'68-point landmarks need {what}: {INSTALL_HINT}; '
                     f'{type(cause).__name__}: {cause}')


def import_dlib():
  """The dlib module, or an ImportError that says how to install it."""
  try:
    import dlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _missing('dlib', e) from e
  return dlib


def model_path() -> str:
  """Path of face-recognition-models' 68-point shape predictor."""
  try:
    import face_recognition_models  # pylint: disable=g-import-not-at-top
    path = face_recognition_models.pose_predictor_model_location()
  except ModuleNotFoundError as e:
    if e.name != 'pkg_resources':
      raise _missing('face-recognition-models', e) from e
    # Its __init__ imports pkg_resources, which setuptools >= 81 no longer
    # ships: find the installed package's data file without importing it.
    spec = importlib.util.find_spec('face_recognition_models')
    if spec is None or not spec.submodule_search_locations:
      raise _missing('face-recognition-models', e) from e
    path = os.path.join(list(spec.submodule_search_locations)[0], 'models',
                        MODEL_FILE)
  except ImportError as e:
    raise _missing('face-recognition-models', e) from e
  if not os.path.exists(path):
    raise _missing('face-recognition-models',
                   FileNotFoundError(f'{path} is missing'))
  return path


@functools.lru_cache(maxsize=1)
def shape_predictor():
  """dlib's 68-point predictor, loaded once per process (about 100 MB)."""
  dlib = import_dlib()
  return dlib.shape_predictor(model_path())


def dlib_landmarks(image: np.ndarray, boxes) -> np.ndarray:
  """[N, 68, 2] float32 landmarks (x, y pixels) of each face box of an image.

  image: HxW[xC] gray or RGB (uint8; other dtypes are clipped to 0..255).
  boxes: (N, 4) faces as x0, y0, x1, y1 edge coordinates (`detect.Face.box`).
  Raises ImportError (with the install command) without the extra.
  """
  predictor = shape_predictor()
  dlib = import_dlib()
  img = crops.as_hwc(image)
  if img.dtype != np.uint8:
    img = np.clip(img, 0, 255).astype(np.uint8)
  img = np.ascontiguousarray(img[..., 0] if img.shape[-1] == 1 else img)
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  out = np.zeros((len(boxes), 68, 2), np.float32)
  for i, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(int)):
    # dlib rectangles are inclusive: the last column/row is x1 - 1 / y1 - 1.
    rect = dlib.rectangle(int(x0), int(y0), int(x1) - 1, int(y1) - 1)
    parts = predictor(img, rect).parts()
    out[i] = [(p.x, p.y) for p in parts]
  return out
