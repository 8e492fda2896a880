"""A small CNN for quick runs on the CPU and for learnability checks."""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from fer_jax.models.registry import MODELS


class _Features(nn.Module):
  widths: Sequence[int]
  pool: str
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x, train: bool):
    for i, w in enumerate(self.widths):
      x = nn.Conv(w, (3, 3), dtype=self.dtype, name=f'conv{i}')(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                       name=f'bn{i}')(x)
      x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), (2, 2))
    if self.pool == 'avg':
      return jnp.mean(x, axis=(1, 2))
    # Flattening keeps where things are: an expression is where the mouth
    # corners and brows sit, which a global average pool blurs away.
    return x.reshape(x.shape[0], -1)


class _Head(nn.Module):
  num_outputs: int
  hidden: int
  dropout: float
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, f, train: bool):
    f = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, name='fc1')(f))
    f = nn.Dropout(self.dropout, deterministic=not train)(f)
    return nn.Dense(self.num_outputs, dtype=self.dtype, name='out')(f)


@MODELS.register('small_cnn')
class SmallCNN(nn.Module):
  """conv3x3-BN-ReLU-maxpool blocks, flatten (or average pool), MLP head."""
  num_outputs: int = 2
  widths: Sequence[int] = (16, 32, 64, 128)
  pool: str = 'flatten'  # or 'avg' (global average pool)
  hidden: int = 128
  dropout: float = 0.0
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    self.features = _Features(tuple(self.widths), self.pool, self.dtype)
    self.head = _Head(self.num_outputs, self.hidden, self.dropout, self.dtype)

  def embed(self, x, train: bool = False):
    return self.features(x.astype(self.dtype), train)

  def predict_head(self, f, train: bool = False):
    return self.head(f, train).astype(jnp.float32)

  def __call__(self, x, train: bool = False):
    return self.predict_head(self.embed(x, train), train)
