"""Without the 'landmarks' extra (dlib), every way to the 68 points says how to
get it. Runs whether or not dlib is installed: the import is made to fail."""
import sys

import numpy as np
import pytest

from fer_jax import predict
from fer_jax.data import pipeline
from fer_jax.face import landmarks, points

EXTRA = "pip install 'fer_jax[landmarks]'"


@pytest.fixture
def no_dlib(monkeypatch):
  landmarks.shape_predictor.cache_clear()  # a loaded predictor would hide it
  monkeypatch.setitem(sys.modules, 'dlib', None)  # `import dlib` fails
  yield
  landmarks.shape_predictor.cache_clear()


def test_dlib_landmarks_names_the_extra(no_dlib):
  img = np.zeros((64, 64, 3), np.uint8)
  with pytest.raises(ImportError, match=r"fer_jax\[landmarks\]") as e:
    landmarks.dlib_landmarks(img, [(8, 8, 56, 56)])
  assert EXTRA in str(e.value) and 'cmake' in str(e.value)


def test_pipeline_landmark_crop_without_landmarks_names_record_and_extra(no_dlib):
  prep = pipeline.Preprocess('crop_landmarks(32)|rgb|unit', name='sfew',
                             detector=points.find_points)
  record = {'image': np.zeros((64, 64, 3), np.uint8), 'index': 7,
            'landmarks': np.full((68, 2), np.nan, np.float32)}
  with pytest.raises(ImportError, match='sfew record 7: the landmark-box crop') as e:
    prep(record)
  assert EXTRA in str(e.value)
  # A record that carries its landmarks needs no dlib.
  pts = np.stack(np.meshgrid(np.linspace(10, 50, 17), np.linspace(12, 40, 4)),
                 -1).reshape(-1, 2)[:68]
  out = prep(dict(record, landmarks=pts))['image']
  assert out.shape == (32, 32, 3)


def test_predictor_falls_back_to_the_box_and_says_how(no_dlib, capsys):
  crop = predict.crop_of_training('landmarks', 48, '/runs/u002')
  assert crop == predict.CropSpec('box')
  err = capsys.readouterr().err
  assert '/runs/u002: trained on landmark-box crops' in err and EXTRA in err
  assert predict.crop_of_training('eyes', 48, 'x').method == 'eyes'
  assert predict.crop_of_training('none', 48, 'x').method == 'box'
