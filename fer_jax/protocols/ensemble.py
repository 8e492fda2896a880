"""Weighted-average ensembles of several models' predictions (paper 004, 6.6).

Each member's predictions are a dict {target: array} in label units, as
`AffectTask.predict` returns them (class probabilities, VA values, AU scores);
the ensemble is sum_i w_i pred_i per target. Weights come from one of:

  * `given`: any non-negative weights, normalised to sum 1.
  * `rank_weights`: paper 004's w_i = R(A_i) / sum_j R(A_j), where R ranks the
    members by a validation score, the best member getting rank n (ties share
    their mean rank). For n = 3 the weights are 3/6, 2/6, 1/6.
  * `fit_weights`: simplex-constrained least squares on the validation split,
    min_w ||sum_i w_i P_i - Y||^2 s.t. w >= 0, sum w = 1, where P_i stacks the
    member's predictions of every target (probabilities against one-hot labels,
    i.e. the Brier score; VA values against the labels). Solved by projected
    gradient descent onto the simplex, exact up to `tol` for this small convex
    problem; fit on validation, report on test.
"""
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

Preds = Mapping[str, np.ndarray]


def normalize(weights: Sequence[float]) -> np.ndarray:
  w = np.asarray(weights, np.float64)
  if w.ndim != 1 or np.any(w < 0) or w.sum() <= 0:
    raise ValueError(f'Ensemble weights must be non-negative, not all 0: {weights}')
  return w / w.sum()


def ranks(scores: Sequence[float], mode: str = 'max') -> np.ndarray:
  """Rank of each score, 1 = worst, n = best; ties get their mean rank."""
  s = np.asarray(scores, np.float64)
  if mode not in ('max', 'min'):
    raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
  key = s if mode == 'max' else -s
  order = np.argsort(key, kind='stable')
  r = np.empty(len(s))
  r[order] = np.arange(1, len(s) + 1)
  for v in np.unique(key):  # ties: mean rank
    r[key == v] = r[key == v].mean()
  return r


def rank_weights(scores: Sequence[float], mode: str = 'max') -> np.ndarray:
  """w_i = R(A_i) / sum R(A_i) with R from `ranks` (004, figure 10)."""
  r = ranks(scores, mode)
  return r / r.sum()


def combine(preds: Sequence[Preds], weights: Sequence[float]) -> Dict[str, np.ndarray]:
  """sum_i w_i preds_i for every target the members share."""
  w = normalize(weights)
  if len(w) != len(preds):
    raise ValueError(f'{len(preds)} members but {len(w)} weights.')
  keys = set(preds[0])
  for p in preds[1:]:
    keys &= set(p)
  return {k: sum(wi * np.asarray(p[k], np.float64) for wi, p in zip(w, preds))
          for k in sorted(keys)}


def _design(preds: Sequence[Preds], labels: Preds):
  """[N*, n] predictions and [N*] targets, flattened over targets and samples."""
  cols, ys = [[] for _ in preds], []
  for k in sorted(preds[0]):
    y = np.asarray(labels[k])
    p0 = np.asarray(preds[0][k])
    if p0.ndim == y.ndim + 1:  # probabilities vs integer labels: one-hot
      keep = y >= 0
      y = np.eye(p0.shape[-1])[y[keep]]
    else:
      keep = np.isfinite(y)
      y = y[keep]
    mask_key = {'valence': 'has_va', 'arousal': 'has_va'}.get(k, f'has_{k}')
    if mask_key in labels:
      m = np.asarray(labels[mask_key]).astype(bool)[keep]
      y = y[m]
    else:
      m = slice(None)
    ys.append(y.reshape(-1))
    for c, p in zip(cols, preds):
      c.append(np.asarray(p[k], np.float64)[keep][m].reshape(-1))
  a = np.stack([np.concatenate(c) for c in cols], -1)
  return a, np.concatenate(ys).astype(np.float64)


def project_simplex(v: np.ndarray) -> np.ndarray:
  """Euclidean projection onto {w >= 0, sum w = 1} (Duchi et al. 2008)."""
  u = np.sort(v)[::-1]
  css = np.cumsum(u)
  k = np.nonzero(u * np.arange(1, len(v) + 1) > css - 1)[0][-1]
  return np.maximum(v - (css[k] - 1) / (k + 1), 0)


def fit_weights(preds: Sequence[Preds], labels: Preds, max_iter: int = 20000,
                tol: float = 1e-12) -> np.ndarray:
  """Simplex-constrained least-squares weights on a validation split."""
  a, y = _design(preds, labels)
  q, b = a.T @ a / len(y), a.T @ y / len(y)
  step = 1.0 / max(np.linalg.eigvalsh(q)[-1], 1e-12)
  w = np.full(a.shape[1], 1.0 / a.shape[1])
  for _ in range(max_iter):
    new = project_simplex(w - step * (q @ w - b))
    if np.abs(new - w).max() < tol:
      return new
    w = new
  return w


def weights_for(method: str, preds: Sequence[Preds] = (), labels: Optional[Preds] = None,
                scores: Sequence[float] = (), mode: str = 'max',
                given: Sequence[float] = ()) -> np.ndarray:
  """Ensemble weights by `method`: 'given', 'uniform', 'rank' or 'fit'."""
  if method == 'given':
    return normalize(given)
  if method == 'uniform':
    return np.full(len(preds) or len(scores), 1.0 / (len(preds) or len(scores)))
  if method == 'rank':
    return rank_weights(scores, mode)
  if method == 'fit':
    return fit_weights(preds, labels)
  raise KeyError(f"Unknown ensemble weights {method!r}; valid: 'given', "
                 "'uniform', 'rank', 'fit'")
