"""Parity of the flax models with torchvision's, through the state-dict importer.

For each family: a torchvision model with random weights and non-trivial BN
statistics (eval mode), its state dict imported into the flax model, and the
max |logit difference| on the same random input (target <= 1e-4, float32).

  python launch/parity_torchvision.py [--models alexnet,resnet18] [--size 224]
"""
import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.models import get_model
from fer_jax.models import importers
from fer_jax.models.torchvision_compat import torchvision_models

# Model name -> the smallest input it takes (the CI test uses these).
SMALL_SIZES = {'alexnet': 64, 'vgg11': 32, 'vgg11_bn': 32, 'vgg16': 32,
               'vgg16_bn': 32, 'resnet18': 32, 'resnet34': 32, 'resnet50': 32,
               'resnet101': 32, 'resnet152': 32, 'mobilenet_v2': 32,
               'inception_v3': 75}
FULL_SIZES = {'inception_v3': 299}
ALL = tuple(SMALL_SIZES)


def randomize_bn(model, size, seed=0):
  """Non-trivial BN affine params and running statistics, so that a swapped
  scale/bias or mean/var shows up in the logits. The statistics are measured
  on random batches (train-mode passes, cumulative average), which keeps deep
  nets' logits at a sane scale, unlike random statistics."""
  import torch  # pylint: disable=g-import-not-at-top
  g = torch.Generator().manual_seed(seed)
  bns = [m for m in model.modules()
         if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]  # pylint: disable=protected-access
  if not bns:
    return model
  with torch.no_grad():
    for m in bns:
      m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=g))
      m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))
      m.reset_running_stats()
      m.momentum = None  # cumulative average over the calibration passes
    model.train()
    for _ in range(4):
      model(torch.randn(16, 3, size, size, generator=g))
    for m in bns:
      m.momentum = 0.1
  return model


def torch_model(name, size, num_outputs=1000):
  tvm = torchvision_models()
  kw = {'num_classes': num_outputs}
  if name == 'inception_v3':
    kw.update(aux_logits=False, init_weights=True, transform_input=False)
  return randomize_bn(getattr(tvm, name)(**kw), size).eval()


def parity(name, size, batch=2, num_outputs=1000, channels=3, seed=0,
           float64=False):
  """Max |logit difference| between torchvision and the imported flax model.

  Returns (diff, max |logit|). float64=True runs both sides in float64: that
  isolates the import (names, layouts, padding) from float32 rounding, which
  deep random nets amplify to ~1e-3 in torch itself (see `torch_noise`).
  """
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  tm = torch_model(name, size, num_outputs)
  x = np.random.RandomState(seed).randn(batch, 3, size, size).astype(np.float32)
  if channels == 1:  # a gray image fed to the RGB reference as (g, g, g)
    x = np.repeat(x[:, :1], 3, axis=1)
  if float64:
    tm, x = tm.double(), x.astype(np.float64)
  with torch.no_grad():
    ref = tm(torch.from_numpy(x)).numpy()
  with jax.enable_x64(float64), jax.default_matmul_precision('float32'):
    dtype = jnp.float64 if float64 else jnp.float32
    fm = get_model(name, num_outputs=num_outputs, dtype=dtype)
    xf = jnp.asarray(x.transpose(0, 2, 3, 1)[..., :channels])
    shapes = jax.eval_shape(fm.init, jax.random.key(0), xf)
    shapes = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, dtype),
                          shapes)
    variables = importers.import_torchvision(name, tm.state_dict(), shapes)
    # predict_head returns float32: compare before that cast when in float64.
    out = jax.jit(lambda v, x: fm.apply(v, x, method=lambda m, x: m.top(
        m.embed(x))))(variables, xf)
    out = np.asarray(out)
  return float(np.max(np.abs(out - ref))), float(np.max(np.abs(ref)))


def torch_noise(name, size, batch=2, seed=0):
  """torch's own float32 error: max |logits32 - logits64| of one model."""
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(seed)
  tm = torch_model(name, size)
  x = np.random.RandomState(seed).randn(batch, 3, size, size).astype(np.float32)
  with torch.no_grad():
    r32 = tm(torch.from_numpy(x)).numpy()
    r64 = tm.double()(torch.from_numpy(x).double()).numpy()
  return float(np.max(np.abs(r32 - r64)))


def main(argv):
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument('--models', default=','.join(ALL))
  p.add_argument('--size', type=int, default=0,
                 help='input size; 0: 224 (299 for inception_v3)')
  p.add_argument('--small', action='store_true', help='smallest valid inputs')
  p.add_argument('--gray', action='store_true',
                 help='1-channel flax model from RGB weights')
  args = p.parse_args(argv)
  if torchvision_models() is None:
    print('torch/torchvision not importable: nothing to compare.')
    return 1
  worst = 0.0
  print(f'{"model":14s} {"size":>5s} {"f32 diff":>9s} {"torch f32":>9s} '
        f'{"f64 diff":>9s} {"max|logit|":>10s} {"secs":>5s}')
  for name in args.models.split(','):
    size = (SMALL_SIZES[name] if args.small else
            args.size or FULL_SIZES.get(name, 224))
    t = time.time()
    c = 1 if args.gray else 3
    d32, scale = parity(name, size, channels=c)
    d64, _ = parity(name, size, channels=c, float64=True)
    noise = torch_noise(name, size)
    worst = max(worst, d64)
    print(f'{name:14s} {size:5d} {d32:9.2e} {noise:9.2e} {d64:9.2e} '
          f'{scale:10.2e} {time.time() - t:5.1f}', flush=True)
  print('f32 diff: flax vs torch, both float32; torch f32: torch float32 vs '
        'torch float64 (the rounding floor); f64 diff: both float64.')
  print(f'worst f64 diff: {worst:.2e} ({"OK" if worst <= 1e-4 else "FAIL"})')
  return 0 if worst <= 1e-4 else 2


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
