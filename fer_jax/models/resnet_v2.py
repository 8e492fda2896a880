"""ResNetV2-50 (pre-activation, He et al. 2016b) in Keras' `ResNet50V2` layout.

Keras details kept: biased convs except the two inner ones of a block, the
stride on the *last* block of a stage (shortcut = 1x1 max pool with stride),
zero (not -inf) padding before the stem max pool, BN eps 1.001e-5 and momentum
0.99, post-activation BN+ReLU at the end. Module names follow Keras
('conv2_block1/1_conv' is Keras' 'conv2_block1_1_conv').
"""
import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS

_BN = dict(momentum=0.99, epsilon=1.001e-5)


class _Block(nn.Module):
  filters: int
  stride: int = 1
  conv_shortcut: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv = functools.partial(layers.conv, dtype=self.dtype,
                             kernel_init=layers.keras_init)
    bn = functools.partial(layers.batch_norm, train, dtype=self.dtype, **_BN)
    preact = nn.relu(bn(name='preact_bn')(x))
    if self.conv_shortcut:
      shortcut = conv(4 * self.filters, 1, self.stride, name='0_conv')(preact)
    else:
      shortcut = x[:, ::self.stride, ::self.stride]  # MaxPooling2D(1, stride)
    y = conv(self.filters, 1, use_bias=False, name='1_conv')(preact)
    y = nn.relu(bn(name='1_bn')(y))
    y = conv(self.filters, 3, self.stride, 1, use_bias=False, name='2_conv')(y)
    y = nn.relu(bn(name='2_bn')(y))
    y = conv(4 * self.filters, 1, name='3_conv')(y)
    return shortcut + y


class _Features(nn.Module):
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    x = layers.conv(64, 7, 2, 3, dtype=self.dtype, kernel_init=layers.keras_init,
                    name='conv1_conv')(x)
    # Keras: ZeroPadding2D then MaxPooling2D; zeros can win over the
    # (not yet activated) negative conv outputs.
    x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    x = layers.max_pool(x, 3, 2)
    for stage, (filters, blocks, stride) in enumerate(
        ((64, 3, 2), (128, 4, 2), (256, 6, 2), (512, 3, 1))):
      for b in range(blocks):
        x = _Block(filters, stride if b == blocks - 1 else 1,
                   conv_shortcut=b == 0, dtype=self.dtype,
                   name=f'conv{stage + 2}_block{b + 1}')(x, train)
    x = layers.batch_norm(train, name='post_bn', dtype=self.dtype, **_BN)(x)
    return layers.global_avg_pool(nn.relu(x))


@MODELS.register('resnet50_v2')
class ResNet50V2(Model):

  @nn.nowrap
  def make_features(self, name):
    return _Features(self.dtype, name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.Linear(self.num_outputs, self.dropout, self.dtype,
                        kernel_init=layers.keras_init, name=name)
