"""Importers: torchvision layouts (without torch), mismatch errors, gray input."""
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy

from fer_jax import cli
from fer_jax.models import get_model
from fer_jax.models import importers
from fer_jax.models import partition

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


def resnet_to_torch(variables):
  """Our resnet variables as a torchvision state dict (the inverse mapping)."""
  sd = {}
  for path, w in partition.flatten(variables).items():
    coll, *mod, leaf = path
    prefix = '.'.join(mod[1:])
    prefix = re.sub(r'layer(\d)_(\d+)', r'layer\1.\2', prefix)
    prefix = prefix.replace('downsample_conv', 'downsample.0').replace(
        'downsample_bn', 'downsample.1')
    if mod[0] == 'head':
      prefix = 'fc'
    w = np.asarray(w)
    if leaf == 'kernel':
      sd[prefix + '.weight'] = w.transpose(3, 2, 0, 1) if w.ndim == 4 else w.T
    elif leaf == 'scale':
      sd[prefix + '.weight'] = w
    elif leaf == 'bias':
      sd[prefix + '.bias'] = w
    elif leaf in ('mean', 'var'):
      sd[prefix + {'mean': '.running_mean', 'var': '.running_var'}[leaf]] = w
      sd[prefix + '.num_batches_tracked'] = np.array(3)
  return sd


def random_variables(shapes, seed=0):
  """Random values for abstract variables, without compiling an init.

  Every leaf differs (BN statistics too), so a swapped name would show.
  """
  rng = np.random.RandomState(seed)
  def fill(path, s):
    leaf = path[-1].key
    if leaf == 'var':
      return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
    scale = {'scale': 0.2, 'mean': 0.2, 'bias': 0.1}.get(leaf, 0.05)
    return jnp.asarray((leaf == 'scale') + scale * rng.randn(*s.shape), s.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope='module')
def resnet18():
  model = get_model('resnet18', num_outputs=10)
  shapes = jax.eval_shape(model.init, RNGS, jnp.zeros((1, 32, 32, 3)))
  v = random_variables(shapes)
  return model, v, resnet_to_torch(v)


def test_state_dict_round_trip(resnet18):
  model, v, sd = resnet18
  assert 'layer2.0.downsample.0.weight' in sd and 'fc.weight' in sd
  target = jax.eval_shape(model.init, RNGS, jnp.zeros((1, 32, 32, 3)))
  out = importers.import_torchvision('resnet18', sd, target)
  jax.tree.map(np.testing.assert_array_equal, out, v)


def test_safetensors_file(resnet18, tmp_path):
  model, v, sd = resnet18
  path = str(tmp_path / 'resnet18.safetensors')
  safetensors_numpy.save_file(
      {k: np.ascontiguousarray(a) for k, a in sd.items()}, path)
  target = jax.eval_shape(model.init, RNGS, jnp.zeros((1, 32, 32, 3)))
  out = importers.import_torchvision('resnet18', path, target)
  jax.tree.map(np.testing.assert_array_equal, out, v)


def test_one_error_lists_every_mismatch(resnet18):
  model, _, sd = resnet18
  sd = dict(sd)
  del sd['layer1.0.conv1.weight']
  del sd['layer3.1.bn2.running_var']
  sd['layer9.0.conv1.weight'] = np.zeros((1, 1, 1, 1))
  sd['fc.weight'] = np.zeros((1000, 512))
  target = jax.eval_shape(model.init, RNGS, jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(importers.WeightMismatchError) as e:
    importers.import_torchvision('resnet18', sd, target)
  msg = str(e.value)
  for name in ('params/features/layer1_0/conv1/kernel',
               'batch_stats/features/layer3_1/bn2/var',
               'layer9.0.conv1.weight', 'params/head/out/kernel',
               '(512, 1000) vs (512, 10)'):
    assert name in msg, name
  assert '2 missing' in msg and '1 unexpected' in msg and '1 wrongly' in msg


def test_new_head_keeps_target_head(resnet18):
  _, v, sd = resnet18
  model7 = get_model('resnet18', num_outputs=7)
  target = random_variables(
      jax.eval_shape(model7.init, RNGS, jnp.zeros((1, 32, 32, 3))), seed=1)
  out = importers.import_torchvision('resnet18', sd, target, head=False)
  np.testing.assert_array_equal(out['params']['head']['out']['kernel'],
                                target['params']['head']['out']['kernel'])
  np.testing.assert_array_equal(out['params']['features']['conv1']['kernel'],
                                v['params']['features']['conv1']['kernel'])


def test_rgb_weights_into_gray_model(resnet18):
  model, v, sd = resnet18
  gray = get_model('resnet18', num_outputs=10)
  target = jax.eval_shape(gray.init, RNGS, jnp.zeros((1, 32, 32, 1)))
  out = importers.import_torchvision('resnet18', sd, target)
  k = out['params']['features']['conv1']['kernel']
  assert k.shape == (7, 7, 1, 64)
  np.testing.assert_allclose(
      k[:, :, 0], np.asarray(v['params']['features']['conv1']['kernel']).sum(2),
      rtol=1e-6)
  # A gray image g in the 1-channel model == (g, g, g) in the RGB model.
  g = jax.random.normal(jax.random.key(3), (2, 32, 32, 1))
  np.testing.assert_allclose(
      jax.jit(gray.apply)(out, g),
      jax.jit(model.apply)(v, jnp.repeat(g, 3, axis=-1)), rtol=1e-4, atol=1e-4)


def test_alexnet_first_linear_is_permuted_chw_to_hwc():
  w = np.random.RandomState(0).randn(8, 256 * 6 * 6).astype(np.float32)
  flat = importers.torchvision_to_flat('alexnet', {'classifier.1.weight': w})
  k = flat[('params', 'head', 'fc6', 'kernel')]
  assert k.shape == (9216, 8)
  for c, h, x in [(0, 0, 1), (5, 2, 3), (255, 5, 5)]:
    np.testing.assert_array_equal(k[(h * 6 + x) * 256 + c],
                                  w[:, (c * 6 + h) * 6 + x])
  # No permutation for fc7 / out.
  w7 = np.ones((4, 9216), np.float32)
  assert importers.torchvision_to_flat('alexnet', {'classifier.4.weight': w7})[
      ('params', 'head', 'fc7', 'kernel')].shape == (9216, 4)


def test_unknown_family():
  with pytest.raises(ValueError, match='resnet50_v2'):
    importers.import_torchvision('resnet50_v2', {}, {})


def test_pth_file(resnet18, tmp_path):
  # Reading a .pth is torch.load (a pickle of torch storages): torch only.
  torch = pytest.importorskip('torch')
  model, v, sd = resnet18
  path = str(tmp_path / 'resnet18.pth')
  torch.save({k: torch.from_numpy(np.array(a)) for k, a in sd.items()}, path)
  target = jax.eval_shape(model.init, RNGS, jnp.zeros((1, 32, 32, 3)))
  out = importers.import_torchvision('resnet18', path, target)
  jax.tree.map(np.testing.assert_array_equal, out, v)


def test_pth_without_torch_is_one_clear_error(tmp_path, monkeypatch):
  # No torch: not a bare ModuleNotFoundError but one line naming the file and
  # the ways out, which a launcher prints as `error: ...` (status 2).
  monkeypatch.setitem(sys.modules, 'torch', None)  # `import torch` fails
  path = str(tmp_path / 'resnet18.pth')
  with open(path, 'wb') as f:
    f.write(b'not read')
  with pytest.raises(importers.WeightFileError) as e:
    importers.import_torchvision('resnet18', path, {})
  text = str(e.value)
  assert path in text and '.safetensors' in text and 'install torch' in text
  assert cli.is_expected(e.value) and cli.message(e.value) == text
  assert '\n' not in text
