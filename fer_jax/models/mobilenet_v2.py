"""MobileNetV2 (Sandler et al. 2018) in torchvision's layout, width 1.0.

Block i of the features is torchvision's `features[i]`: 'stem' is features[0],
'block1'..'block17' the inverted residuals, 'last' the 1x1 conv to 1280.
Features end with global average pooling; the head is Dropout(0.2) + Dense.

`keras_layers()` lists Keras' `MobileNetV2(include_top=False)` layers, the same
architecture, mapped onto these parameter paths: paper 004 unfreezes "the last
56 layers" of that Keras model (`trainable='keras_last:56'`,
fer_jax/models/partition.py).
"""
import functools
from typing import Any, List, Optional, Tuple

import flax.linen as nn

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models import partition
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


@partition.KERAS_LAYERS.register('mobilenet_v2')
def keras_layers() -> List[Tuple[str, str, Optional[str]]]:
  """Keras' `MobileNetV2(include_top=False)` `model.layers`, in its order:
  [(Keras name, Keras class, our layer path, None for a layer without
  weights)]. Keras' block_k is our block{k+1} (its block 0 is
  'expanded_conv'); a stride-2 block pads explicitly (ZeroPadding2D), a
  block with matching shapes ends with an Add. Built as keras.applications'
  mobilenet_v2.py builds it; tests/models/test_keras_last_layers.py compares
  it with the real list (tests/fixtures/keras_mobilenet_v2_layers.json).
  """
  bn, relu = 'BatchNormalization', 'ReLU'
  out = [('input_layer', 'InputLayer', None),
         ('Conv1', 'Conv2D', 'features/stem_conv'),
         ('bn_Conv1', bn, 'features/stem_bn'),
         ('Conv1_relu', relu, None)]
  block, channels = 0, 32
  for _, c, n, s in SETTINGS:
    for j in range(n):
      stride = s if j == 0 else 1
      k = f'block_{block}_' if block else 'expanded_conv_'
      ours = f'features/block{block + 1}/'
      if block:
        out += [(k + 'expand', 'Conv2D', ours + 'expand_conv'),
                (k + 'expand_BN', bn, ours + 'expand_bn'),
                (k + 'expand_relu', relu, None)]
      if stride == 2:
        out.append((k + 'pad', 'ZeroPadding2D', None))
      out += [(k + 'depthwise', 'DepthwiseConv2D', ours + 'dw_conv'),
              (k + 'depthwise_BN', bn, ours + 'dw_bn'),
              (k + 'depthwise_relu', relu, None),
              (k + 'project', 'Conv2D', ours + 'project_conv'),
              (k + 'project_BN', bn, ours + 'project_bn')]
      if stride == 1 and channels == c:
        out.append((k + 'add', 'Add', None))
      block, channels = block + 1, c
  return out + [('Conv_1', 'Conv2D', 'features/last_conv'),
                ('Conv_1_bn', bn, 'features/last_bn'),
                ('out_relu', relu, None)]


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
