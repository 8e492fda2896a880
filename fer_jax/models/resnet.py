"""ResNet v1: torchvision's ImageNet ResNets and the CIFAR-style 6n+2 nets.

ImageNet layout (He et al. 2016a, torchvision 'v1.5': the stride sits on the 3x3
conv of a bottleneck). CIFAR layout (He et al. 2016a, Sec. 4.2; paper 003's
ResNet-32/110): a 3x3/16 stem, three stages of n basic blocks with 16/32/64
channels, no max pool. The CIFAR nets use option-A shortcuts (subsample and
zero-pad the channels, no parameters), as the paper's CIFAR experiments, so
their sizes are the paper's 0.46M / 1.7M.

Features end with global average pooling; the head is the final Dense ('out').
"""
import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS


class BasicBlock(nn.Module):
  planes: int
  stride: int = 1
  shortcut: str = 'B'  # 'B': 1x1 conv + BN when shapes change; 'A': zero-pad
  dtype: Any = jnp.float32
  expansion = 1

  @nn.compact
  def __call__(self, x, train: bool):
    conv = functools.partial(layers.conv, use_bias=False, dtype=self.dtype)
    bn = functools.partial(layers.batch_norm, train, dtype=self.dtype,
                           **layers.TORCH_BN)
    y = nn.relu(bn(name='bn1')(conv(self.planes, 3, self.stride, 1,
                                    name='conv1')(x)))
    y = bn(name='bn2')(conv(self.planes, 3, 1, 1, name='conv2')(y))
    return nn.relu(y + _shortcut(self, x, self.planes, train))


class Bottleneck(nn.Module):
  planes: int
  stride: int = 1
  shortcut: str = 'B'
  dtype: Any = jnp.float32
  expansion = 4

  @nn.compact
  def __call__(self, x, train: bool):
    conv = functools.partial(layers.conv, use_bias=False, dtype=self.dtype)
    bn = functools.partial(layers.batch_norm, train, dtype=self.dtype,
                           **layers.TORCH_BN)
    y = nn.relu(bn(name='bn1')(conv(self.planes, 1, name='conv1')(x)))
    y = nn.relu(bn(name='bn2')(conv(self.planes, 3, self.stride, 1,
                                    name='conv2')(y)))
    y = bn(name='bn3')(conv(self.planes * 4, 1, name='conv3')(y))
    return nn.relu(y + _shortcut(self, x, self.planes * 4, train))


def _shortcut(block, x, out_channels, train):
  """Identity, or what brings x to the residual's shape (after it, as torch)."""
  if block.stride == 1 and x.shape[-1] == out_channels:
    return x
  if block.shortcut == 'A':
    x = x[:, ::block.stride, ::block.stride]
    extra = out_channels - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
  x = layers.conv(out_channels, 1, block.stride, use_bias=False,
                  dtype=block.dtype, name='downsample_conv')(x)
  return layers.batch_norm(train, name='downsample_bn', dtype=block.dtype,
                           **layers.TORCH_BN)(x)


class _ImageNetFeatures(nn.Module):
  block: Any
  stage_sizes: Sequence[int]
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    x = layers.conv(64, 7, 2, 3, use_bias=False, dtype=self.dtype,
                    name='conv1')(x)
    x = nn.relu(layers.batch_norm(train, name='bn1', dtype=self.dtype,
                                  **layers.TORCH_BN)(x))
    x = layers.max_pool(x, 3, 2, padding=layers.sym_pad(1))
    for i, n in enumerate(self.stage_sizes):
      for j in range(n):
        stride = 2 if i > 0 and j == 0 else 1
        x = self.block(64 * 2**i, stride, dtype=self.dtype,
                       name=f'layer{i + 1}_{j}')(x, train)
    return layers.global_avg_pool(x)


class _CifarFeatures(nn.Module):
  n: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    x = layers.conv(16, 3, 1, 1, use_bias=False, dtype=self.dtype,
                    name='conv1')(x)
    x = nn.relu(layers.batch_norm(train, name='bn1', dtype=self.dtype,
                                  **layers.TORCH_BN)(x))
    for i, planes in enumerate((16, 32, 64)):
      for j in range(self.n):
        stride = 2 if i > 0 and j == 0 else 1
        x = BasicBlock(planes, stride, shortcut='A', dtype=self.dtype,
                       name=f'layer{i + 1}_{j}')(x, train)
    return layers.global_avg_pool(x)


_IMAGENET = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(Model):
  """torchvision resnet{18,34,50,101,152}."""
  depth: int = 50

  @nn.nowrap
  def make_features(self, name):
    block, sizes = _IMAGENET[self.depth]
    return _ImageNetFeatures(block, sizes, self.dtype, name=name)


class CifarResNet(Model):
  """ResNet-(6n+2) for small images, option-A shortcuts."""
  depth: int = 32

  @nn.nowrap
  def make_features(self, name):
    if (self.depth - 2) % 6:
      raise ValueError(f'CIFAR ResNet depth must be 6n+2, got {self.depth}')
    return _CifarFeatures((self.depth - 2) // 6, self.dtype, name=name)


for _d in _IMAGENET:
  MODELS.register(f'resnet{_d}')(functools.partial(ResNet, depth=_d))
for _d in (32, 110):
  MODELS.register(f'resnet{_d}')(functools.partial(CifarResNet, depth=_d))
