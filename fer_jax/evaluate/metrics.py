"""Evaluation metrics for valence/arousal regression and expression/AU labels.

Every metric is a pure function of arrays (numpy or jax) built from jnp, so it
jit-compiles (pass `num_classes` statically) and runs inside eval steps. The
`*_report` functions at the bottom return plain python values for logging.

Conventions:
  * Reductions run over axis 0 (samples): [N] inputs give a scalar, [N, D]
    inputs (e.g. valence and arousal columns) give [D], one value per column.
  * `mask` is bool or float, shape [N] (per sample, broadcast over the other
    axes) or the full input shape (per entry). Float masks act as weights. An
    entry with mask 0 does not count, even when its values are NaN or garbage
    (padding in the last eval batch).
  * Moments are population moments (ddof=0): the 1/n in var and cov cancels in
    PCC/CCC/ICC, and ddof=0 is the CCC of the AVEC/Aff-Wild challenges.
  * Undefined values are NaN, not a silently chosen number: PCC when either
    side is constant, recall of a class with no true samples, anything with an
    all-zero mask. The one exception is F1 (see `f1_per_class`).
  * Integer labels < 0 (`fer_jax.data.labels.MISSING`) are treated as masked.
"""
from typing import Any, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = Any  # np.ndarray or jax.Array.


def _float(x: Array) -> jax.Array:
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _weights(mask: Optional[Array], shape) -> jax.Array:
  """A float weight per entry of an array of `shape` (1 where no mask)."""
  if mask is None:
    return jnp.ones(shape, jnp.float32)
  w = jnp.asarray(mask).astype(jnp.float32)
  w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim))  # [N] -> [N, 1, ...]
  return jnp.broadcast_to(w, shape)


def _prepare(pred, target, mask):
  """Float arrays with masked-out entries zeroed (so NaN padding is inert)."""
  pred, target = _float(pred), _float(target)
  if pred.shape != target.shape:
    raise ValueError(f'pred {pred.shape} and target {target.shape} differ.')
  w = _weights(mask, pred.shape)
  keep = w > 0
  return jnp.where(keep, pred, 0.), jnp.where(keep, target, 0.), w


def _wmean(x, w):
  return jnp.sum(w * x, axis=0) / jnp.sum(w, axis=0)


def _moments(pred, target, mask):
  """Weighted means, population variances and covariance over axis 0."""
  p, t, w = _prepare(pred, target, mask)
  mp, mt = _wmean(p, w), _wmean(t, w)
  dp, dt = p - mp, t - mt
  return mp, mt, _wmean(dp * dp, w), _wmean(dt * dt, w), _wmean(dp * dt, w)


# ---------------------------------------------------------------- regression


def mse(pred: Array, target: Array, mask: Optional[Array] = None) -> jax.Array:
  """Mean squared error over axis 0."""
  p, t, w = _prepare(pred, target, mask)
  return _wmean((p - t) ** 2, w)


def rmse(pred: Array, target: Array, mask: Optional[Array] = None) -> jax.Array:
  """Root mean squared error over axis 0 (thesis 002, eq. 5.1)."""
  return jnp.sqrt(mse(pred, target, mask))


def mae(pred: Array, target: Array, mask: Optional[Array] = None) -> jax.Array:
  """Mean absolute error over axis 0."""
  p, t, w = _prepare(pred, target, mask)
  return _wmean(jnp.abs(p - t), w)


def pcc(pred: Array, target: Array, mask: Optional[Array] = None) -> jax.Array:
  """Pearson correlation cov / (std_p std_t) (002, eq. 5.2); NaN if constant."""
  _, _, vp, vt, cov = _moments(pred, target, mask)
  return cov / jnp.sqrt(vp * vt)


def ccc(pred: Array, target: Array, mask: Optional[Array] = None) -> jax.Array:
  """Lin's concordance 2 cov / (var_p + var_t + (mean_p - mean_t)^2).

  Unlike PCC it penalises bias and scale mismatch; 1 only if pred == target.
  """
  mp, mt, vp, vt, cov = _moments(pred, target, mask)
  return 2. * cov / (vp + vt + (mp - mt) ** 2)


def icc(pred: Array, target: Array, mask: Optional[Array] = None) -> jax.Array:
  """ICC exactly as thesis 002 defines it (eq. 5.3): 2 cov / (var_p + var_y).

  This is CCC without the (mean_p - mean_t)^2 term: it ignores a constant bias
  (pred + c scores the same as pred), so ICC >= CCC, with equality iff the
  means agree. It is not any of the Shrout & Fleiss ICC variants; we keep the
  thesis's formula so our numbers compare with its tables.
  """
  _, _, vp, vt, cov = _moments(pred, target, mask)
  return 2. * cov / (vp + vt)


# ------------------------------------------------------------ classification


def _labels_of(logits_or_labels: Array, labels: Array) -> jax.Array:
  """Predicted class ids: argmax over the last axis if given scores."""
  x = jnp.asarray(logits_or_labels)
  if x.ndim == jnp.ndim(labels) + 1:
    return jnp.argmax(x, axis=-1)
  return x


def _label_weights(labels: jax.Array, mask: Optional[Array]) -> jax.Array:
  """Per-entry weights, zero where the label is missing (< 0)."""
  return _weights(mask, labels.shape) * (labels >= 0)


def accuracy(logits_or_labels: Array, labels: Array,
             mask: Optional[Array] = None) -> jax.Array:
  """Fraction of correct predictions; logits [N, C] or predicted ids [N]."""
  labels = jnp.asarray(labels)
  pred = _labels_of(logits_or_labels, labels)
  w = _label_weights(labels, mask)
  return jnp.sum(w * (pred == labels)) / jnp.sum(w)


def confusion_matrix(pred: Array, labels: Array, num_classes: int,
                     mask: Optional[Array] = None) -> jax.Array:
  """[C, C] counts (sums of mask weights): rows true class, cols predicted.

  `pred` is predicted ids [N] or logits [N, C]. Missing labels (< 0) and
  out-of-range ids fall out (their one-hot rows are zero).
  """
  labels = jnp.asarray(labels)
  pred = _labels_of(pred, labels)
  w = _label_weights(labels, mask)
  true_1h = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
  pred_1h = jax.nn.one_hot(pred, num_classes, dtype=jnp.float32)
  return jnp.einsum('n,ni,nj->ij', w, true_1h, pred_1h)


def per_class_recall(conf: Array) -> jax.Array:
  """[C] recall TP / (TP + FN) per true class; NaN if a class has no samples."""
  conf = _float(conf)
  return jnp.diagonal(conf) / jnp.sum(conf, axis=1)


def one_vs_rest_accuracy(conf: Array) -> jax.Array:
  """[C] (TP_c + TN_c) / N from a multi-class confusion matrix (003, eq. 3)."""
  conf = _float(conf)
  tp = jnp.diagonal(conf)
  fn = jnp.sum(conf, axis=1) - tp
  fp = jnp.sum(conf, axis=0) - tp
  n = jnp.sum(conf)
  return (n - fn - fp) / n  # TP + TN = N - FP - FN.


def _binary_counts(pred, labels, mask):
  """TP, FP, FN, TN per class for multi-label 0/1 arrays [N, C]."""
  labels = jnp.asarray(labels)
  w = _label_weights(labels, mask)
  p = jnp.asarray(pred).astype(bool)
  y = labels > 0
  count = lambda x: jnp.sum(w * x, axis=0)
  return count(p & y), count(p & ~y), count(~p & y), count(~p & ~y)


def per_class_accuracy_binary(pred: Array, labels: Array,
                              mask: Optional[Array] = None) -> jax.Array:
  """[C] (TP + TN) / N per label of multi-label 0/1 arrays (003, eq. 3).

  This is how 003 scores AUs: each label is its own present/absent problem.
  `pred` holds decisions (threshold logits first, e.g. logits > 0); labels < 0
  are missing, so N is the number of annotated entries of that label. For
  multi-class predictions use `one_vs_rest_accuracy(confusion_matrix(...))`.
  """
  tp, fp, fn, tn = _binary_counts(pred, labels, mask)
  return (tp + tn) / (tp + fp + fn + tn)


def f1_per_class(pred: Array, labels: Array,
                 mask: Optional[Array] = None) -> jax.Array:
  """[C] F1 = 2 TP / (2 TP + FP + FN) per label of multi-label 0/1 arrays.

  A label with no positives and no predicted positives scores 0, not NaN or 1
  (sklearn's zero_division default): absent AUs then pull the macro-F1 down
  instead of silently dropping out, and the mean over labels stays defined.
  """
  tp, fp, fn, _ = _binary_counts(pred, labels, mask)
  denom = 2. * tp + fp + fn
  return jnp.where(denom > 0, 2. * tp / jnp.where(denom > 0, denom, 1.), 0.)


# ------------------------------------------------------------------ reports


def regression_report(pred: Array, target: Array,
                      names: Sequence[str] = ('valence', 'arousal'),
                      mask: Optional[Array] = None) -> Dict[str, float]:
  """{f'{name}/{metric}': float} for metric in mse rmse mae pcc ccc icc."""
  pred, target = np.asarray(pred), np.asarray(target)
  if pred.ndim == 1:
    pred, target = pred[:, None], target[:, None]
  if pred.shape[1] != len(names):
    raise ValueError(f'{pred.shape[1]} columns but names={tuple(names)}.')
  out = {}
  for metric in (mse, rmse, mae, pcc, ccc, icc):
    values = np.asarray(metric(pred, target, mask))
    for name, v in zip(names, values):
      out[f'{name}/{metric.__name__}'] = float(v)
  return out


def classification_report(logits: Array, labels: Array,
                          class_names: Sequence[str],
                          mask: Optional[Array] = None) -> Dict[str, Any]:
  """Accuracy, mean and per-class recall, and the confusion matrix as lists.

  Keys: 'accuracy', 'mean_recall' (unweighted over classes with samples),
  f'recall/{name}', 'confusion_matrix' (rows true, cols predicted; ints unless
  a float mask weights the samples).
  """
  conf = np.asarray(confusion_matrix(logits, labels, len(class_names), mask))
  recall = np.asarray(per_class_recall(conf))
  out = {'accuracy': float(accuracy(logits, labels, mask))}
  with np.errstate(all='ignore'):
    out['mean_recall'] = (float(np.nanmean(recall))
                          if np.any(np.isfinite(recall)) else float('nan'))
  for name, r in zip(class_names, recall):
    out[f'recall/{name}'] = float(r)
  if mask is None or np.asarray(mask).dtype == bool:
    conf = np.rint(conf).astype(int)
  out['confusion_matrix'] = conf.tolist()
  return out
