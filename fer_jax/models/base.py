"""The plumbing every family shares: config fields, 'features'/'head', methods.

A family subclasses `Model`, builds its backbone in `make_features` and, when
its own head is not a single Dense, overrides `make_native_head`.
"""
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models import heads


class Model(nn.Module):
  """NHWC images -> float32 head outputs; params under 'features' and 'head'."""
  num_outputs: int = 1000
  head: str = 'classification'
  dropout: float = 0.0
  head_units: Sequence[int] = heads.ZAITOUNY_UNITS  # 'zaitouny' head only
  dtype: Any = jnp.float32  # compute dtype; params stay float32

  @nn.nowrap
  def make_features(self, name: str) -> nn.Module:
    raise NotImplementedError

  @nn.nowrap
  def make_native_head(self, name: str) -> nn.Module:
    return heads.Linear(self.num_outputs, self.dropout, self.dtype, name=name)

  def setup(self):
    heads.check_kind(self.head)
    self.backbone = self.make_features(name='features')
    if self.head == 'zaitouny':
      self.top = heads.Zaitouny(self.num_outputs, tuple(self.head_units),
                                self.dropout, self.dtype, name='head')
    else:
      self.top = self.make_native_head(name='head')

  def embed(self, x, train: bool = False):
    return self.backbone(x.astype(self.dtype), train)

  def predict_head(self, f, train: bool = False):
    return self.top(f.astype(self.dtype), train).astype(jnp.float32)

  def __call__(self, x, train: bool = False):
    return self.predict_head(self.embed(x, train), train)
