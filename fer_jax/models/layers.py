"""Small building blocks shared by the model families.

Padding is always explicit: the reference implementations (torch, Caffe, Keras)
each pad differently and a silent 'SAME' would shift every strided layer.
"""
import functools
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

# torch's BatchNorm2d(momentum=0.1, eps=1e-5) in flax terms (flax keeps 1-0.1).
TORCH_BN = dict(momentum=0.9, epsilon=1e-5)
# Keras BatchNormalization defaults (momentum 0.99, epsilon 1e-3).
KERAS_BN = dict(momentum=0.99, epsilon=1e-3)

# torchvision's conv init: kaiming_normal_(mode='fan_out', nonlinearity='relu').
torch_conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
# Keras' default kernel init.
keras_init = nn.initializers.glorot_uniform()


def pair(v) -> Tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def sym_pad(p) -> Tuple[Tuple[int, int], Tuple[int, int]]:
  """torch/Caffe padding: the same amount on both sides of each axis."""
  ph, pw = pair(p)
  return ((ph, ph), (pw, pw))


def tf_same_pad(size: int, k: int, s: int) -> Tuple[int, int]:
  """TF 'SAME': output ceil(size/s); an odd total pad puts the extra at the end."""
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  return (total // 2, total - total // 2)


def tf_same_pads(x, k, s):
  kh, kw = pair(k)
  sh, sw = pair(s)
  return (tf_same_pad(x.shape[1], kh, sh), tf_same_pad(x.shape[2], kw, sw))


def ceil_pads(x, k: int, s: int, pad: int = 0):
  """Caffe pooling rounds the output size up: pad the end so windows fit."""
  def one(size):
    out = -(-(size + 2 * pad - k) // s) + 1
    if (out - 1) * s >= size + pad:  # Caffe: the last window starts inside
      out -= 1
    return (pad, max((out - 1) * s + k - size - pad, 0))
  return (one(x.shape[1]), one(x.shape[2]))


def max_pool(x, k, s, padding=((0, 0), (0, 0))):
  """Max pool whose padding never wins (pads with -inf, as torch/Caffe/TF)."""
  return nn.max_pool(x, pair(k), pair(s), padding=padding)


def avg_pool_include_pad(x, k, s, pad):
  """torch avg_pool2d(count_include_pad=True): zeros in the pad count."""
  return nn.avg_pool(x, pair(k), pair(s), padding=sym_pad(pad),
                     count_include_pad=True)


@functools.lru_cache(maxsize=None)
def _adaptive_matrix(n: int, m: int) -> np.ndarray:
  """(m, n) averaging weights with torch's adaptive bins [floor(in/m), ceil)."""
  w = np.zeros((m, n), np.float64)  # cast to the input's dtype by the caller
  for i in range(m):
    start, end = (i * n) // m, -(-((i + 1) * n) // m)
    w[i, start:end] = 1.0 / (end - start)
  return w


def adaptive_avg_pool(x, out_hw: Sequence[int]):
  """torch AdaptiveAvgPool2d on NHWC; the identity when sizes already match."""
  oh, ow = pair(out_hw)
  if x.shape[1:3] == (oh, ow):
    return x
  mh = jnp.asarray(_adaptive_matrix(x.shape[1], oh), x.dtype)
  mw = jnp.asarray(_adaptive_matrix(x.shape[2], ow), x.dtype)
  return jnp.einsum('bhwc,ph,qw->bpqc', x, mh, mw)


def global_avg_pool(x):
  return jnp.mean(x, axis=(1, 2))


def lrn(x, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
        k: float = 1.0):
  """Caffe LRN across channels: x / (k + alpha/size * sum_window x^2)^beta."""
  # At least float32 (bf16 squares overflow the window sum); float64 stays.
  sq = jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32)))
  window = jax.lax.reduce_window(
      sq, 0.0, jax.lax.add, (1, 1, 1, size), (1, 1, 1, 1),
      ((0, 0), (0, 0), (0, 0), ((size - 1) // 2, size // 2)))
  return (x / jnp.power(k + (alpha / size) * window, beta)).astype(x.dtype)


def conv(features: int, kernel, stride=1, pad=0, *, name: str,
         dtype: Dtype = jnp.float32, use_bias: bool = True, groups: int = 1,
         kernel_init=torch_conv_init):
  """nn.Conv with torch-style symmetric explicit padding."""
  return nn.Conv(features, pair(kernel), pair(stride), padding=sym_pad(pad),
                 feature_group_count=groups, use_bias=use_bias, dtype=dtype,
                 kernel_init=kernel_init, name=name)


def batch_norm(train: bool, *, name: str, dtype: Dtype = jnp.float32,
               momentum: float = 0.9, epsilon: float = 1e-5):
  return nn.BatchNorm(use_running_average=not train, momentum=momentum,
                      epsilon=epsilon, dtype=dtype, name=name)


class SeparableConv(nn.Module):
  """Keras SeparableConv2D as ONE layer: depthwise kxk then pointwise 1x1.

  Kept as a single leaf module (two kernels) so that layer counts ('last:N')
  agree with Keras, which counts a SeparableConv2D once.
  """
  features: int
  kernel: Tuple[int, int] = (3, 3)
  padding: str = 'same'  # Keras semantics; stride 1 only, as mini-Xception
  use_bias: bool = False
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    kh, kw = self.kernel
    dw = self.param('depthwise_kernel', keras_init, (kh, kw, 1, c))
    pw = self.param('pointwise_kernel', keras_init, (1, 1, c, self.features))
    pads = tf_same_pads(x, self.kernel, 1) if self.padding == 'same' else (
        (0, 0), (0, 0))
    dn = ('NHWC', 'HWIO', 'NHWC')
    x = jax.lax.conv_general_dilated(
        x, dw.astype(self.dtype), (1, 1), pads, dimension_numbers=dn,
        feature_group_count=c)
    x = jax.lax.conv_general_dilated(
        x, pw.astype(self.dtype), (1, 1), ((0, 0), (0, 0)),
        dimension_numbers=dn)
    if self.use_bias:
      x = x + self.param('bias', nn.initializers.zeros,
                         (self.features,)).astype(self.dtype)
    return x
