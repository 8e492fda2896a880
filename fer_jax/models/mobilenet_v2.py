"""MobileNetV2 (Sandler et al. 2018) in torchvision's layout, width 1.0.

Block i of the features is torchvision's `features[i]`: 'stem' is features[0],
'block1'..'block17' the inverted residuals, 'last' the 1x1 conv to 1280.
Features end with global average pooling; the head is Dropout(0.2) + Dense.
"""
import functools
from typing import Any

import flax.linen as nn

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS

# (expansion t, output channels c, repeats n, first stride s), as the paper.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn(x, features, kernel, stride, train, name, dtype, groups=1,
             act=True):
  """torchvision Conv2dNormActivation: conv (no bias), BN, ReLU6."""
  x = layers.conv(features, kernel, stride, (kernel - 1) // 2, groups=groups,
                  use_bias=False, dtype=dtype, name=f'{name}_conv')(x)
  x = layers.batch_norm(train, name=f'{name}_bn', dtype=dtype,
                        **layers.TORCH_BN)(x)
  return nn.relu6(x) if act else x


class _InvertedResidual(nn.Module):
  out: int
  stride: int
  expand: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    cb = functools.partial(_conv_bn, train=train, dtype=self.dtype)
    hidden = x.shape[-1] * self.expand
    y = x
    if self.expand != 1:
      y = cb(y, hidden, 1, 1, name='expand')
    y = cb(y, hidden, 3, self.stride, name='dw', groups=hidden)
    y = cb(y, self.out, 1, 1, name='project', act=False)  # linear bottleneck
    if self.stride == 1 and x.shape[-1] == self.out:
      y = x + y
    return y


class _Features(nn.Module):
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    x = _conv_bn(x, 32, 3, 2, train, 'stem', self.dtype)
    i = 1
    for t, c, n, s in SETTINGS:
      for j in range(n):
        x = _InvertedResidual(c, s if j == 0 else 1, t, self.dtype,
                              name=f'block{i}')(x, train)
        i += 1
    x = _conv_bn(x, 1280, 1, 1, train, 'last', self.dtype)
    return layers.global_avg_pool(x)


@MODELS.register('mobilenet_v2')
class MobileNetV2(Model):
  dropout: float = 0.2

  @nn.nowrap
  def make_features(self, name):
    return _Features(self.dtype, name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.Linear(self.num_outputs, self.dropout, self.dtype,
                        kernel_init=nn.initializers.normal(0.01), name=name)
