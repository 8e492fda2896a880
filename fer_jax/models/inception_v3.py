"""InceptionV3 (Szegedy et al. 2016) in torchvision's layout, 299x299 input.

Module names are torchvision's ('Mixed_6b/branch7x7_2/conv'). No input
transform (torchvision's `transform_input` is off unless ImageNet weights are
requested): the data pipeline normalises. The auxiliary classifier is optional
and off by default; when on, its params live under 'features/AuxLogits' and in
training its logits are sown into the 'intermediates' collection as
'aux_logits' (torch returns them only in training mode too).
"""
import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models import heads
from fer_jax.models import layers
from fer_jax.models.base import Model
from fer_jax.models.registry import MODELS

_init = nn.initializers.truncated_normal(0.1)  # torchvision's init_weights


class BasicConv(nn.Module):
  """conv (no bias) + BN(eps=1e-3) + ReLU: torchvision's BasicConv2d."""
  features: int
  kernel: Any
  stride: int = 1
  pad: Any = 0
  dtype: Any = jnp.float32
  kernel_init: Any = _init

  @nn.compact
  def __call__(self, x, train: bool):
    x = layers.conv(self.features, self.kernel, self.stride, self.pad,
                    use_bias=False, dtype=self.dtype,
                    kernel_init=self.kernel_init, name='conv')(x)
    x = layers.batch_norm(train, name='bn', dtype=self.dtype, momentum=0.9,
                          epsilon=1e-3)(x)
    return nn.relu(x)


def _pool_branch(x):
  return layers.avg_pool_include_pad(x, 3, 1, 1)


class InceptionA(nn.Module):
  pool_features: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train):
    c = functools.partial(BasicConv, dtype=self.dtype)
    b1 = c(64, 1, name='branch1x1')(x, train)
    b5 = c(48, 1, name='branch5x5_1')(x, train)
    b5 = c(64, 5, pad=2, name='branch5x5_2')(b5, train)
    b3 = c(64, 1, name='branch3x3dbl_1')(x, train)
    b3 = c(96, 3, pad=1, name='branch3x3dbl_2')(b3, train)
    b3 = c(96, 3, pad=1, name='branch3x3dbl_3')(b3, train)
    bp = c(self.pool_features, 1, name='branch_pool')(_pool_branch(x), train)
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  dtype: Any

  @nn.compact
  def __call__(self, x, train):
    c = functools.partial(BasicConv, dtype=self.dtype)
    b3 = c(384, 3, 2, name='branch3x3')(x, train)
    bd = c(64, 1, name='branch3x3dbl_1')(x, train)
    bd = c(96, 3, pad=1, name='branch3x3dbl_2')(bd, train)
    bd = c(96, 3, 2, name='branch3x3dbl_3')(bd, train)
    bp = layers.max_pool(x, 3, 2)
    return jnp.concatenate([b3, bd, bp], axis=-1)


class InceptionC(nn.Module):
  c7: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train):
    c = functools.partial(BasicConv, dtype=self.dtype)
    c7 = self.c7
    b1 = c(192, 1, name='branch1x1')(x, train)
    b7 = c(c7, 1, name='branch7x7_1')(x, train)
    b7 = c(c7, (1, 7), pad=(0, 3), name='branch7x7_2')(b7, train)
    b7 = c(192, (7, 1), pad=(3, 0), name='branch7x7_3')(b7, train)
    bd = c(c7, 1, name='branch7x7dbl_1')(x, train)
    bd = c(c7, (7, 1), pad=(3, 0), name='branch7x7dbl_2')(bd, train)
    bd = c(c7, (1, 7), pad=(0, 3), name='branch7x7dbl_3')(bd, train)
    bd = c(c7, (7, 1), pad=(3, 0), name='branch7x7dbl_4')(bd, train)
    bd = c(192, (1, 7), pad=(0, 3), name='branch7x7dbl_5')(bd, train)
    bp = c(192, 1, name='branch_pool')(_pool_branch(x), train)
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  dtype: Any

  @nn.compact
  def __call__(self, x, train):
    c = functools.partial(BasicConv, dtype=self.dtype)
    b3 = c(192, 1, name='branch3x3_1')(x, train)
    b3 = c(320, 3, 2, name='branch3x3_2')(b3, train)
    b7 = c(192, 1, name='branch7x7x3_1')(x, train)
    b7 = c(192, (1, 7), pad=(0, 3), name='branch7x7x3_2')(b7, train)
    b7 = c(192, (7, 1), pad=(3, 0), name='branch7x7x3_3')(b7, train)
    b7 = c(192, 3, 2, name='branch7x7x3_4')(b7, train)
    bp = layers.max_pool(x, 3, 2)
    return jnp.concatenate([b3, b7, bp], axis=-1)


class InceptionE(nn.Module):
  dtype: Any

  @nn.compact
  def __call__(self, x, train):
    c = functools.partial(BasicConv, dtype=self.dtype)
    b1 = c(320, 1, name='branch1x1')(x, train)
    b3 = c(384, 1, name='branch3x3_1')(x, train)
    b3 = jnp.concatenate([
        c(384, (1, 3), pad=(0, 1), name='branch3x3_2a')(b3, train),
        c(384, (3, 1), pad=(1, 0), name='branch3x3_2b')(b3, train)], axis=-1)
    bd = c(448, 1, name='branch3x3dbl_1')(x, train)
    bd = c(384, 3, pad=1, name='branch3x3dbl_2')(bd, train)
    bd = jnp.concatenate([
        c(384, (1, 3), pad=(0, 1), name='branch3x3dbl_3a')(bd, train),
        c(384, (3, 1), pad=(1, 0), name='branch3x3dbl_3b')(bd, train)], axis=-1)
    bp = c(192, 1, name='branch_pool')(_pool_branch(x), train)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionAux(nn.Module):
  num_outputs: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train):
    x = nn.avg_pool(x, (5, 5), (3, 3))
    x = BasicConv(128, 1, dtype=self.dtype, name='conv0')(x, train)
    x = BasicConv(768, 5, dtype=self.dtype,
                  kernel_init=nn.initializers.truncated_normal(0.01),
                  name='conv1')(x, train)
    x = layers.global_avg_pool(x)
    return nn.Dense(self.num_outputs, dtype=self.dtype,
                    kernel_init=nn.initializers.truncated_normal(0.001),
                    name='fc')(x)


class _Features(nn.Module):
  aux_logits: bool
  num_outputs: int
  dtype: Any

  @nn.compact
  def __call__(self, x, train: bool):
    c = functools.partial(BasicConv, dtype=self.dtype)
    x = c(32, 3, 2, name='Conv2d_1a_3x3')(x, train)
    x = c(32, 3, name='Conv2d_2a_3x3')(x, train)
    x = c(64, 3, pad=1, name='Conv2d_2b_3x3')(x, train)
    x = layers.max_pool(x, 3, 2)
    x = c(80, 1, name='Conv2d_3b_1x1')(x, train)
    x = c(192, 3, name='Conv2d_4a_3x3')(x, train)
    x = layers.max_pool(x, 3, 2)
    x = InceptionA(32, self.dtype, name='Mixed_5b')(x, train)
    x = InceptionA(64, self.dtype, name='Mixed_5c')(x, train)
    x = InceptionA(64, self.dtype, name='Mixed_5d')(x, train)
    x = InceptionB(self.dtype, name='Mixed_6a')(x, train)
    x = InceptionC(128, self.dtype, name='Mixed_6b')(x, train)
    x = InceptionC(160, self.dtype, name='Mixed_6c')(x, train)
    x = InceptionC(160, self.dtype, name='Mixed_6d')(x, train)
    x = InceptionC(192, self.dtype, name='Mixed_6e')(x, train)
    # Built at init even in eval mode, so the params always exist.
    if self.aux_logits and (train or self.is_initializing()):
      aux = InceptionAux(self.num_outputs, self.dtype, name='AuxLogits')(
          x, train)
      self.sow('intermediates', 'aux_logits', aux.astype(jnp.float32))
    x = InceptionD(self.dtype, name='Mixed_7a')(x, train)
    x = InceptionE(self.dtype, name='Mixed_7b')(x, train)
    x = InceptionE(self.dtype, name='Mixed_7c')(x, train)
    return layers.global_avg_pool(x)


@MODELS.register('inception_v3')
class InceptionV3(Model):
  dropout: float = 0.5
  aux_logits: bool = False

  @nn.nowrap
  def make_features(self, name):
    return _Features(self.aux_logits, self.num_outputs, self.dtype, name=name)

  @nn.nowrap
  def make_native_head(self, name):
    return heads.Linear(self.num_outputs, self.dropout, self.dtype,
                        kernel_init=_init, name=name)
