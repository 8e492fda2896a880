"""Affect task: any mix of valence / arousal regression, expression softmax and AU
sigmoid outputs read from one output vector.

`targets=('valence',)` is 000's single-unit regressor, `('valence', 'arousal')`
002's joint regressor, `('expression',)` a 7-way classifier, and combinations
train one network on several heads with one summed loss. A sample that does not
carry a target (its `has_*` flag is False) is masked out of that target's loss.
"""
import dataclasses
from typing import Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fer_jax.data import labels
from fer_jax.evaluate import metrics
from fer_jax.tasks.registry import TASKS

# target name -> (number of outputs, has_* flag in the record)
_TARGETS = {
    'valence': (1, 'has_va'),
    'arousal': (1, 'has_va'),
    'expression': (len(labels.EXPRESSIONS), 'has_expression'),
    'aus': (len(labels.AUS), 'has_aus'),
    'compound': (len(labels.COMPOUND_EXPRESSIONS), 'has_compound'),
}


@TASKS.register('affect')
@dataclasses.dataclass(frozen=True)
class AffectTask:
  """Loss and metrics for a tuple of affect targets sharing one output vector."""
  targets: Sequence[str] = ('valence', 'arousal')
  weights: Sequence[float] | None = None
  # Label range of the regression targets (AFEW-VA uses [-10, 10]).
  va_scale: float = 1.0

  def __post_init__(self):
    unknown = [t for t in self.targets if t not in _TARGETS]
    if unknown:
      raise KeyError(f'Unknown affect target(s) {unknown}; valid: {sorted(_TARGETS)}')
    if self.weights is not None and len(self.weights) != len(self.targets):
      raise ValueError('task.weights needs one weight per target.')

  @property
  def num_outputs(self) -> int:
    return sum(_TARGETS[t][0] for t in self.targets)

  def split_outputs(self, outputs) -> Dict[str, jax.Array]:
    """Slices the output vector into one array per target."""
    out, start = {}, 0
    for t in self.targets:
      n = _TARGETS[t][0]
      out[t] = outputs[..., start:start + n]
      start += n
    return out

  @property
  def regression_targets(self) -> Tuple[str, ...]:
    return tuple(t for t in self.targets if t in ('valence', 'arousal'))

  @property
  def primary_metric(self) -> Tuple[str, str]:
    """(metric name, 'min' | 'max') that picks the best checkpoint by default."""
    if self.regression_targets:
      return 'val/rmse_mean', 'min'
    if 'expression' in self.targets:
      return 'val/expression/accuracy', 'max'
    return 'val/loss', 'min'

  def loss(self, outputs, batch, mask=None):
    """Mean loss over the samples that carry each target; `mask` drops padding."""
    parts = self.split_outputs(outputs.astype(jnp.float32))
    weights = self.weights or (1.0,) * len(self.targets)
    base = jnp.ones(outputs.shape[0]) if mask is None else mask.astype(jnp.float32)
    total, aux = 0.0, {}
    for w, t in zip(weights, self.targets):
      m = base * batch[_TARGETS[t][1]].astype(jnp.float32)
      if t in ('valence', 'arousal'):
        y = batch[t].astype(jnp.float32) / self.va_scale
        per = jnp.square(parts[t][:, 0] - y)
      elif t in ('expression', 'compound'):
        y = jnp.maximum(batch[t], 0)  # MISSING (-1) is masked anyway
        per = optax.softmax_cross_entropy_with_integer_labels(parts[t], y)
      else:  # multi-label AUs
        per = optax.sigmoid_binary_cross_entropy(
            parts[t], batch['aus'].astype(jnp.float32)).sum(-1)
      l = jnp.sum(per * m) / jnp.maximum(jnp.sum(m), 1.0)
      aux[f'loss/{t}'] = l
      total = total + w * l
    return total, aux

  def predict(self, outputs) -> Dict[str, jax.Array]:
    """Predictions in label units: VA values, class probabilities, AU scores."""
    parts = self.split_outputs(outputs.astype(jnp.float32))
    pred = {}
    for t, p in parts.items():
      if t in ('valence', 'arousal'):
        pred[t] = p[:, 0] * self.va_scale
      elif t in ('expression', 'compound'):
        pred[t] = jax.nn.softmax(p, axis=-1)
      else:
        pred[t] = jax.nn.sigmoid(p)
    return pred

  def report(self, pred: Dict[str, np.ndarray], batch: Dict[str, np.ndarray]):
    """Metrics of a whole split from concatenated numpy predictions and labels."""
    out = {}
    reg = self.regression_targets
    if reg:
      m = batch['has_va'].astype(bool)
      p = np.stack([pred[t] for t in reg], -1)[m]
      y = np.stack([batch[t] for t in reg], -1)[m]
      out.update(metrics.regression_report(p, y, names=reg))
      out['rmse_mean'] = float(np.mean([out[f'{t}/rmse'] for t in reg]))
    for t, names in (('expression', labels.EXPRESSIONS),
                     ('compound', labels.COMPOUND_EXPRESSIONS)):
      if t in self.targets:
        m = batch[_TARGETS[t][1]].astype(bool)
        rep = metrics.classification_report(pred[t][m], batch[t][m], names)
        out.update({f'{t}/{k}': v for k, v in rep.items()})
    if 'aus' in self.targets:
      m = batch['has_aus'].astype(bool)
      f1 = metrics.f1_per_class(pred['aus'][m] >= 0.5, batch['aus'][m] >= 0.5)
      out.update({f'aus/f1/{n}': float(v) for n, v in zip(labels.AU_NAMES, f1)})
      out['aus/f1_mean'] = float(np.mean(f1))
    return out
