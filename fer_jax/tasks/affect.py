"""Affect task: any mix of valence / arousal regression, expression softmax and AU
sigmoid outputs read from one output vector.

`targets=('valence',)` is 000's single-unit regressor, `('valence', 'arousal')`
002's joint regressor, `('expression',)` a 7-way classifier, and combinations
train one network on several heads with one summed loss. A sample that does not
carry a target (its `has_*` flag is False) is masked out of that target's loss.

Class balancing (004, Keras `class_weight`): `class_weights` weights each
sample's expression cross-entropy by the weight of its class, either given (one
weight per expression class) or 'balanced', Keras / scikit-learn's
n_samples / (n_classes * count_c) from `class_counts` (the training labels'
class counts, which the train loop fills in from the training data, see
`fer_jax.train.loop.derived_config`). As in Keras the weighted loss is averaged
over the samples (sum_i w_{y_i} ce_i / N, not divided by the sum of weights),
and it is the training loss only: evaluation (`for_evaluation`) reports the
plain loss, as Keras' val_loss does.
"""
import dataclasses
from typing import ClassVar, Dict, Sequence, Tuple

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
  # Expression class weights: None, 'balanced' (from class_counts), or one
  # weight per expression class.
  class_weights: str | Sequence[float] | None = None
  # Training-set count of each expression class ('balanced' needs them).
  class_counts: Sequence[float] | None = None
  # 7 basic expressions, or 8 with contempt (label 7: AffectNet basic8, FER+ /
  # CK+ with contempt=True); must match the data's declared classes.
  expression_classes: int = 7
  # Reads the canonical label fields (valence, expression, ...), not a mixture's
  # union label space: every mixture entry must carry one of its targets.
  union_labels: ClassVar[bool] = False

  def __post_init__(self):
    unknown = [t for t in self.targets if t not in _TARGETS]
    if unknown:
      raise KeyError(f'Unknown affect target(s) {unknown}; valid: {sorted(_TARGETS)}')
    if self.weights is not None and len(self.weights) != len(self.targets):
      raise ValueError('task.weights needs one weight per target.')
    if self.expression_classes not in (7, 8):
      raise ValueError('task.expression_classes must be 7 (basic) or 8 (with '
                       f'contempt), got {self.expression_classes}.')
    n = self.expression_classes
    if self.class_weights is not None:
      if 'expression' not in self.targets:
        raise ValueError('task.class_weights weights the expression loss, but '
                         f'the targets are {tuple(self.targets)}.')
      if isinstance(self.class_weights, str):
        if self.class_weights != 'balanced':
          raise ValueError("task.class_weights must be 'balanced' or one weight "
                           f'per expression class, got {self.class_weights!r}.')
      elif len(self.class_weights) != n:
        raise ValueError(f'task.class_weights needs {n} weights (one per '
                         f'expression class), got {len(self.class_weights)}.')
    if self.class_counts is not None and len(self.class_counts) != n:
      raise ValueError(f'task.class_counts needs {n} counts, got '
                       f'{len(self.class_counts)}.')

  def expression_class_weights(self) -> np.ndarray | None:
    """[expression_classes] float32 weights of the classes (None: unweighted)."""
    if self.class_weights is None:
      return None
    if isinstance(self.class_weights, str):  # 'balanced'
      if self.class_counts is None:
        raise ValueError(
            "task.class_weights='balanced' needs task.class_counts (the "
            'training labels\' class counts); the train loop fills them in '
            '(fer_jax.train.loop.derived_config).')
      return balanced_class_weights(self.class_counts)
    return np.asarray(self.class_weights, np.float32)

  def for_evaluation(self) -> 'AffectTask':
    """The task whose loss evaluation reports: no class weights (Keras applies
    `class_weight` to the training loss only)."""
    return dataclasses.replace(self, class_weights=None)

  def size(self, target: str) -> int:
    """Number of outputs of `target`."""
    return self.expression_classes if target == 'expression' else _TARGETS[target][0]

  @property
  def expression_names(self) -> Tuple[str, ...]:
    return labels.EXPRESSIONS_WITH_CONTEMPT[:self.expression_classes]

  @property
  def num_outputs(self) -> int:
    return sum(self.size(t) for t in self.targets)

  def split_outputs(self, outputs) -> Dict[str, jax.Array]:
    """Slices the output vector into one array per target."""
    out, start = {}, 0
    for t in self.targets:
      n = self.size(t)
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
        cw = self.expression_class_weights() if t == 'expression' else None
        if cw is not None:  # Keras class_weight: the sample's class weight
          per = per * jnp.asarray(cw)[y]
      else:  # multi-label AUs; an AU the dataset does not code is -1: masked
        aus = batch['aus'].astype(jnp.float32)
        per = (optax.sigmoid_binary_cross_entropy(parts[t], jnp.maximum(aus, 0.0))
               * labels.au_known(aus)).sum(-1)
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
    for t, names in (('expression', self.expression_names),
                     ('compound', labels.COMPOUND_EXPRESSIONS)):
      if t in self.targets:
        m = batch[_TARGETS[t][1]].astype(bool)
        rep = metrics.classification_report(pred[t][m], batch[t][m], names)
        out.update({f'{t}/{k}': v for k, v in rep.items()})
    if 'aus' in self.targets:
      m = batch['has_aus'].astype(bool)
      known = labels.au_known(batch['aus'][m])  # F1 over the coded AUs only
      f1 = metrics.f1_per_class(pred['aus'][m] >= 0.5, batch['aus'][m] >= 0.5, known)
      out.update({f'aus/f1/{n}': float(v) for n, v in zip(labels.AU_NAMES, f1)})
      out['aus/f1_mean'] = float(np.mean(f1))
    return out


def balanced_class_weights(counts) -> np.ndarray:
  """Keras / scikit-learn class_weight='balanced': n / (k * count_c).

  n is the number of samples and k the number of classes present (count > 0);
  a class absent from the training labels gets weight 0 (it never occurs).
  """
  counts = np.asarray(counts, np.float64)
  present = counts > 0
  if not present.any():
    raise ValueError('balanced class weights of an empty training set')
  w = np.zeros_like(counts)
  w[present] = counts.sum() / (present.sum() * counts[present])
  return w.astype(np.float32)
