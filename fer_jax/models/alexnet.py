"""AlexNet-era nets: torchvision's AlexNet, Caffe's bvlc_alexnet, VGG-CNN-M-2048.

All three end their features with a flattened 6x6 map (adaptive average pool,
torchvision's AdaptiveAvgPool2d((6, 6)); the identity at the reference input
sizes 224/227) so `embed` is the pool5 vector paper 000 caches (9216-d for
AlexNet), flattened in HWC order. The dense part (fc6, fc7, output) is the head:
paper 000 freezes the conv part and fine-tunes fc6-fc8.
"""
import functools
from typing import Any, Sequence, Tuple

import flax.linen as nn

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS

# torch's default Conv/Linear init: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
torch_default_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')

# (features, kernel, stride, pad, groups, lrn after relu, pool after)
_Spec = Tuple[int, int, int, int, int, bool, bool]
# Krizhevsky et al. 2012 as Caffe's bvlc_alexnet: LRN(5, 1e-4, 0.75, k=1),
# two-GPU groups in conv2/4/5, 227x227 input.
_ALEXNET_LRN: Sequence[_Spec] = (
    (96, 11, 4, 0, 1, True, True),
    (256, 5, 1, 2, 2, True, True),
    (384, 3, 1, 1, 1, False, False),
    (384, 3, 1, 1, 2, False, False),
    (256, 3, 1, 1, 2, False, True),
)
# Chatfield et al. 2014 CNN-M (Caffe model zoo VGG_CNN_M_2048):
# LRN(5, 5e-4, 0.75, k=2), 224x224 input.
_VGG_CNN_M: Sequence[_Spec] = (
    (96, 7, 2, 0, 1, True, True),
    (256, 5, 2, 1, 1, True, True),
    (512, 3, 1, 1, 1, False, False),
    (512, 3, 1, 1, 1, False, False),
    (512, 3, 1, 1, 1, False, True),
)


class _TorchAlexNetFeatures(nn.Module):
  """torchvision alexnet.features + avgpool, flattened (HWC)."""
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    del train  # no BatchNorm, no dropout in the conv part
    conv = functools.partial(layers.conv, dtype=self.dtype,
                             kernel_init=torch_default_init)
    pool = lambda x: layers.max_pool(x, 3, 2)
    x = pool(nn.relu(conv(64, 11, 4, 2, name='conv1')(x)))
    x = pool(nn.relu(conv(192, 5, 1, 2, name='conv2')(x)))
    x = nn.relu(conv(384, 3, 1, 1, name='conv3')(x))
    x = nn.relu(conv(256, 3, 1, 1, name='conv4')(x))
    x = pool(nn.relu(conv(256, 3, 1, 1, name='conv5')(x)))
    x = layers.adaptive_avg_pool(x, 6)
    return x.reshape(x.shape[0], -1)


class _CaffeFeatures(nn.Module):
  """conv-ReLU[-LRN][-maxpool] stack with Caffe's round-up pooling."""
  spec: Sequence[_Spec]
  lrn: Tuple[int, float, float, float]  # size, alpha, beta, k
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    del train
    for i, (c, k, s, p, g, norm, pool) in enumerate(self.spec):
      x = layers.conv(c, k, s, p, groups=g, dtype=self.dtype,
                      name=f'conv{i + 1}')(x)
      x = nn.relu(x)
      if norm:
        x = layers.lrn(x, *self.lrn)
      if pool:
        x = layers.max_pool(x, 3, 2, padding=layers.ceil_pads(x, 3, 2))
    x = layers.adaptive_avg_pool(x, 6)
    return x.reshape(x.shape[0], -1)


@MODELS.register('alexnet')
class AlexNet(Model):
  """torchvision's single-tower AlexNet (no LRN, 64-192-384-256-256)."""
  dropout: float = 0.5

  @nn.nowrap
  def make_features(self, name):
    return _TorchAlexNetFeatures(self.dtype, name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.DensePart(self.num_outputs, (4096, 4096), self.dropout,
                           dropout_first=True, dtype=self.dtype,
                           kernel_init=torch_default_init, name=name)


@MODELS.register('alexnet_lrn')
class AlexNetLRN(Model):
  """The original AlexNet (Krizhevsky 2012 / Caffe bvlc_alexnet), 227x227."""
  dropout: float = 0.5

  @nn.nowrap
  def make_features(self, name):
    return _CaffeFeatures(_ALEXNET_LRN, (5, 1e-4, 0.75, 1.0), self.dtype,
                          name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.DensePart(self.num_outputs, (4096, 4096), self.dropout,
                           dtype=self.dtype, name=name)


@MODELS.register('vgg_cnn_m_2048')
class VGGCNNM2048(Model):
  """VGG-CNN-M-2048 (Chatfield et al. 2014): CNN-M with a 2048-wide fc7."""
  dropout: float = 0.5

  @nn.nowrap
  def make_features(self, name):
    return _CaffeFeatures(_VGG_CNN_M, (5, 5e-4, 0.75, 2.0), self.dtype,
                          name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.DensePart(self.num_outputs, (4096, 2048), self.dropout,
                           dtype=self.dtype, name=name)
