"""Every importer against outputs its reference framework stored, without it.

tests/fixtures/importers/*.npz were made once by
launch/make_importer_fixtures.py: torchvision's own models, Caffe's layers
written in torch ops, and Keras' ResNet50V2, each with weights that numpy
rebuilds here from the stored seed and the reference's own weight names and
shapes. Here the same weights go through fer_jax's importer (a torchvision
state dict, a .caffemodel, a Keras HDF5 file in the layout tf_keras writes) into
fer_jax's model, whose logits must equal the reference's. Caffe's AlexNet is
also checked on a gray image g: the 1-channel model (conv1 summed over B, G, R)
against Caffe's net on (g, g, g).

* float64: max |ours - reference| <= 1e-9 * max |logit| (1e-7 for the gray
  Caffe check, whose summed conv1 kernel is rounded to float32). Rounding is
  ~1e-13 there; a wrong name, layout, padding, eps or pooling shows as >= 1e-6
  (measured: a BatchNorm eps off by 1e-3 moves the logits by 5e-3 to 1.4e-2 of
  max |logit| in resnet18/50, mobilenet_v2, vgg16_bn and inception_v3).
* float32: max |ours - reference float32| <= 3e-5 * max |logit|. Measured:
  1e-6 to 4.4e-6, as large as the references' own float32-vs-float64 gap
  (printed alongside); a mapping error is >= 1e-3.
"""
import functools
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.models import caffe
from fer_jax.models import get_model
from fer_jax.models import importers
from fer_jax.models.importers import from_caffe
from fer_jax.models.importers import from_torchvision
from fer_jax.models.registry import MODELS
from tests.models import test_caffe_import as caffe_wire

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
FIXTURES = os.path.join(ROOT, 'tests', 'fixtures', 'importers')
TORCHVISION = ('alexnet', 'vgg11', 'vgg16_bn', 'resnet18', 'resnet50',
               'mobilenet_v2', 'inception_v3')
CAFFE = ('alexnet_lrn', 'vgg_cnn_m_2048')
TOL64, TOL32 = 1e-9, 3e-5


@functools.lru_cache(maxsize=None)
def maker():
  """launch/make_importer_fixtures.py (numpy only at import)."""
  spec = importlib.util.spec_from_file_location(
      'make_importer_fixtures',
      os.path.join(ROOT, 'launch', 'make_importer_fixtures.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def fixture(name):
  with np.load(os.path.join(FIXTURES, f'{name}.npz')) as f:
    out = dict(f)
  out['spec'] = json.loads(str(out['spec']))
  return out


def logits(model_name, variables_fn, x):
  """{64: float64, 32: float32} logits of fer_jax's model (before
  predict_head's float32 cast) on NHWC float64 `x`.

  variables_fn(abstract variables, bits) -> the imported variables.
  """
  model = get_model(model_name, num_outputs=maker().NUM_CLASSES)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.asarray(x, jnp.float32))
  out = {}
  for bits in (64, 32):
    with jax.enable_x64(bits == 64), jax.default_matmul_precision('highest'):
      dtype = jnp.float64 if bits == 64 else jnp.float32
      model = get_model(model_name, num_outputs=maker().NUM_CLASSES,
                        dtype=dtype)
      variables = variables_fn(jax.tree.map(
          lambda s, dtype=dtype: jax.ShapeDtypeStruct(s.shape, dtype), shapes),
                               bits)
      assert all(l.dtype == dtype for l in jax.tree.leaves(variables))
      out[bits] = np.asarray(jax.jit(lambda v, x, model=model: model.apply(
          v, x, method=lambda m, x: m.top(m.embed(x))))(
              variables, jnp.asarray(x, dtype)), np.float64)
  return out


def check(name, ref, ours, tol64=TOL64):
  scale = float(np.abs(ref['logits64']).max())
  diff64 = float(np.abs(ours[64] - ref['logits64']).max())
  diff32 = float(np.abs(ours[32] - ref['logits32']).max())
  gap = float(np.abs(ref['logits32'] - ref['logits64']).max())
  print(f'{name}: max|logit| {scale:.3g}, float64 diff {diff64:.1e}, '
        f'float32 diff {diff32:.1e} (reference float32 gap {gap:.1e})')
  assert ours[64].shape == ref['logits64'].shape == (len(ref['images']),
                                                   maker().NUM_CLASSES)
  assert scale > 0.1 and np.abs(ref['logits64']).min() < scale  # not vacuous
  assert diff64 <= tol64 * scale, (name, diff64, scale)
  assert diff32 <= TOL32 * scale, (name, diff32, scale)


def weights_fn(ref):
  """bits -> the fixture's weights in float{bits}, made afresh for each dtype
  (VGG's float64 and float32 copies are never held at once)."""
  return lambda bits: maker().make_weights(int(ref['seed']), ref['spec'],
                                           f'float{bits}')


@pytest.mark.parametrize('name', TORCHVISION)
def test_torchvision(name):
  ref = fixture(f'torchvision_{name}')
  m = maker()
  weights = weights_fn(ref)
  x = m.network_input('torchvision', ref['images'])

  def variables(shapes, bits):
    w = weights(bits)
    assert list(w) == [k for k, _, _ in ref['spec']]  # state dict order
    return importers.import_torchvision(name, w, shapes)

  check(name, ref, logits(name, variables, x))


@pytest.mark.parametrize('name', CAFFE)
def test_caffe(name):
  ref = fixture(f'caffe_{name}')
  m = maker()
  blobs = {}  # Caffe's float32 blobs, {layer: [weight, bias]}
  for k, w in m.make_weights(int(ref['seed']), ref['spec'], np.float32).items():
    layer, i = k.split('.')
    blobs.setdefault(layer, []).insert(int(i), w)
  # The .caffemodel bytes, by the wire-format encoder of test_caffe_import:
  # bvlc_alexnet in the 2014 model zoo's V1 `layers` form (legacy 4-D blob
  # dims), VGG_CNN_M_2048 in the current `layer` form.
  data = b''.join(caffe_wire.caffemodel(m.CAFFE[name], blobs,
                                        legacy=name == 'alexnet_lrn'))
  del blobs
  weights = caffe.parse_net(data, f'{name}.caffemodel')
  del data

  def variables(shapes, _):
    return importers.import_caffe(name, weights, shapes)

  x = m.network_input('caffe', ref['images'], ref['mean_bgr'])
  check(name, ref, logits(name, variables, x))
  if name in m.CAFFE_GRAY:
    # A gray model (conv1 summed over B, G, R) on g == Caffe's net on (g, g, g).
    gray = {k[len('gray_'):]: v for k, v in ref.items() if k.startswith('gray_')}
    assert gray['images'].shape[-1] == 1
    x = m.network_input('caffe', gray['images'], gray['mean'])
    # Its conv1 kernel is the float32 sum of three float32 kernels, rounded
    # once (2^-24 relative); the reference sums in float64.
    check(f'{name} gray', gray, logits(name, variables, x), tol64=1e-7)


def test_keras_resnet50_v2(tmp_path):
  ref = fixture('keras_resnet50_v2')
  m = maker()
  weights = weights_fn(ref)
  layer_names = json.loads(str(ref['layer_names']))
  assert {'conv2_block1_preact_bn', 'predictions'} <= set(layer_names)
  x = m.network_input('keras', ref['images'])

  def variables(shapes, bits):
    path = str(tmp_path / f'resnet50v2_float{bits}.h5')
    m.write_keras_h5(path, layer_names, ref['spec'], weights(bits))
    return importers.import_keras_resnet50_v2(path, shapes)

  check('resnet50_v2', ref, logits('resnet50_v2', variables, x))


def test_fixtures_cover_every_importer_family():
  """A family added to the torchvision importer needs its reference fixture."""
  families = set()
  for name in MODELS.names():
    try:
      families.add(from_torchvision._family(name)[0])  # pylint: disable=protected-access
    except ValueError:
      continue
  covered = {from_torchvision._family(n)[0] for n in TORCHVISION}  # pylint: disable=protected-access
  assert covered == families, families - covered
  for name in TORCHVISION:
    assert os.path.exists(os.path.join(FIXTURES, f'torchvision_{name}.npz'))
  assert set(CAFFE) == set(from_caffe._CAFFE_POOL5)  # pylint: disable=protected-access


def test_lrn_keeps_float64():
  from fer_jax.models import layers  # pylint: disable=g-import-not-at-top
  x = np.random.RandomState(0).uniform(-300, 300, (1, 3, 4, 9))
  size, alpha, beta, k = 5, 1e-4, 0.75, 1.0
  sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (2, 2)))
  window = sum(sq[..., j:j + 9] for j in range(size))
  ref = x / (k + alpha / size * window) ** beta
  with jax.enable_x64(True):
    out = np.asarray(layers.lrn(jnp.asarray(x, jnp.float64), size, alpha, beta,
                                k))
  assert out.dtype == np.float64
  np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_adaptive_avg_pool_keeps_float64():
  from fer_jax.models import layers  # pylint: disable=g-import-not-at-top
  x = np.random.RandomState(0).randn(1, 5, 5, 2)
  # torch's AdaptiveAvgPool2d bins for 5 -> 3: [0, 2), [1, 4), [3, 5)
  bins = [(0, 2), (1, 4), (3, 5)]
  ref = np.array([[x[0, a:b, c:d].mean(axis=(0, 1)) for c, d in bins]
                  for a, b in bins])[None]
  with jax.enable_x64(True):
    out = np.asarray(layers.adaptive_avg_pool(jnp.asarray(x), 3))
  assert out.dtype == np.float64
  np.testing.assert_allclose(out, ref, rtol=1e-12)
