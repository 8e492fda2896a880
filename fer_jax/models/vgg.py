"""VGG11 / VGG16, with and without BatchNorm, in torchvision's layout.

Features end with AdaptiveAvgPool2d((7, 7)) flattened in HWC order (25088-d);
the classifier (fc6, fc7, output) is the head, as for AlexNet.
"""
import functools
from typing import Any, Sequence, Union

import flax.linen as nn

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS

# Channel widths of the 3x3 convs; 'M' is a 2x2 max pool (Simonyan & Zisserman
# 2015, configurations A and D).
CFGS = {
    'vgg11': (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'),
    'vgg16': (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512,
              'M', 512, 512, 512, 'M'),
}


class _Features(nn.Module):
  cfg: Sequence[Union[int, str]]
  batch_norm: bool
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    i = 0
    for v in self.cfg:
      if v == 'M':
        x = layers.max_pool(x, 2, 2)
        continue
      x = layers.conv(v, 3, 1, 1, dtype=self.dtype, name=f'conv{i}')(x)
      if self.batch_norm:
        x = layers.batch_norm(train, name=f'bn{i}', dtype=self.dtype,
                              **layers.TORCH_BN)(x)
      x = nn.relu(x)
      i += 1
    x = layers.adaptive_avg_pool(x, 7)
    return x.reshape(x.shape[0], -1)


class VGG(Model):
  """torchvision VGG; `config` is 'vgg11' or 'vgg16'."""
  config: str = 'vgg16'
  batch_norm: bool = False
  dropout: float = 0.5

  @nn.nowrap
  def make_features(self, name):
    return _Features(CFGS[self.config], self.batch_norm, self.dtype, name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.DensePart(self.num_outputs, (4096, 4096), self.dropout,
                           dtype=self.dtype,
                           kernel_init=nn.initializers.normal(0.01), name=name)


for _name in ('vgg11', 'vgg16'):
  MODELS.register(_name)(functools.partial(VGG, config=_name))
  MODELS.register(_name + '_bn')(
      functools.partial(VGG, config=_name, batch_norm=True))
