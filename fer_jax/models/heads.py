"""Heads: what a new task replaces, shared by every family.

The config's `head` names the output semantics. 'regression', 'classification'
and 'multilabel' all keep the family's own (native) head and differ only in the
loss (identity, softmax, sigmoid); their outputs are float32 logits/values.
'zaitouny' swaps the native head for paper 004's added layers.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models import layers

KINDS = ('regression', 'classification', 'multilabel', 'zaitouny')

# Paper 004 does not state the widths of its three added Dense layers (Fig. 3 is
# an image); these are our choice, exposed as the `head_units` config field.
ZAITOUNY_UNITS = (1024, 512, 256)


def check_kind(kind: str) -> str:
  if kind not in KINDS:
    raise ValueError(f'Unknown head {kind!r}; valid heads: {", ".join(KINDS)}')
  return kind


def _flat(f):
  """Spatial maps are globally averaged, vectors pass through."""
  return layers.global_avg_pool(f) if f.ndim == 4 else f


class Linear(nn.Module):
  """Dropout then one Dense: the ResNet fc, MobileNetV2/InceptionV3 classifier."""
  num_outputs: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  kernel_init: Any = nn.linear.default_kernel_init

  @nn.compact
  def __call__(self, f, train: bool = False):
    f = nn.Dropout(self.dropout, deterministic=not train)(_flat(f))
    return nn.Dense(self.num_outputs, dtype=self.dtype,
                    kernel_init=self.kernel_init, name='out')(f)


class DensePart(nn.Module):
  """AlexNet/VGG 'dense part': fc6, fc7 (ReLU + Dropout each) and the output.

  torchvision's AlexNet drops out *before* fc6 and fc7 (`dropout_first`);
  VGG and Caffe's nets drop out after each ReLU.
  """
  num_outputs: int
  hidden: Sequence[int] = (4096, 4096)
  dropout: float = 0.5
  dropout_first: bool = False
  dtype: Any = jnp.float32
  kernel_init: Any = nn.linear.default_kernel_init

  @nn.compact
  def __call__(self, f, train: bool = False):
    drop = nn.Dropout(self.dropout, deterministic=not train)
    for i, width in enumerate(self.hidden):
      if self.dropout_first:
        f = drop(f)
      f = nn.Dense(width, dtype=self.dtype, kernel_init=self.kernel_init,
                   name=f'fc{6 + i}')(f)
      f = nn.relu(f)
      if not self.dropout_first:
        f = drop(f)
    return nn.Dense(self.num_outputs, dtype=self.dtype,
                    kernel_init=self.kernel_init, name='out')(f)


class ConvPool(nn.Module):
  """mini-Xception's head: a 3x3 'same' conv to the outputs, global average."""
  num_outputs: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f, train: bool = False):
    f = nn.Dropout(self.dropout, deterministic=not train)(f)
    f = nn.Conv(self.num_outputs, (3, 3), padding=layers.tf_same_pads(f, 3, 1),
                dtype=self.dtype, kernel_init=layers.keras_init, name='out')(f)
    return layers.global_avg_pool(f)


class Zaitouny(nn.Module):
  """Paper 004's head: average pool, flatten, 3 x [Dense, Dropout, BatchNorm], Dense.

  Keras layers, so Keras BatchNorm defaults (momentum 0.99, eps 1e-3) and
  glorot init; the Dense layers use ReLU (the paper names no activation).
  """
  num_outputs: int
  units: Sequence[int] = ZAITOUNY_UNITS
  dropout: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f, train: bool = False):
    f = _flat(f).reshape(f.shape[0], -1)
    for i, u in enumerate(self.units):
      f = nn.relu(nn.Dense(u, dtype=self.dtype, kernel_init=layers.keras_init,
                           name=f'dense{i}')(f))
      f = nn.Dropout(self.dropout, deterministic=not train)(f)
      f = layers.batch_norm(train, name=f'bn{i}', dtype=self.dtype,
                            **layers.KERAS_BN)(f)
    return nn.Dense(self.num_outputs, dtype=self.dtype,
                    kernel_init=layers.keras_init, name='out')(f)
