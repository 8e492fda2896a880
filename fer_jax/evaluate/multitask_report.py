"""Reports of multi-task / multi-label emotion models (003).

* `group_report`: expression / compound accuracy, per-class accuracy (003 eq. 3,
  one-vs-rest from the confusion matrix) and recall; per-AU F1 and per-AU
  accuracy (eq. 3). Keys match the 'affect' task's ('expression/accuracy',
  'aus/f1_mean', ...), so single-task and multi-task runs compare directly.
* `au_by_expression` + `plot_au_heatmap`: 003's Fig. 2 / Table 3, the mean
  predicted AU scores of expression-only images grouped by predicted expression.
* `predict_source`: a trained state's predictions on any source (the training
  loop evaluates one source; multi-task runs need several).
"""
from typing import Dict, Sequence

import numpy as np

from fer_jax.data import labels
from fer_jax.evaluate import metrics

_NAMES = {'expression': labels.EXPRESSIONS, 'aus': labels.AU_NAMES,
          'compound': labels.COMPOUND_EXPRESSIONS}


def _class_report(scores, y, names, prefix):
  rep = metrics.classification_report(scores, y, names)
  out = {f'{prefix}/{k}': v for k, v in rep.items()}
  acc = np.asarray(metrics.one_vs_rest_accuracy(np.asarray(rep['confusion_matrix'])))
  out.update({f'{prefix}/per_class_accuracy/{n}': float(a) for n, a in zip(names, acc)})
  out[f'{prefix}/per_class_accuracy_mean'] = float(np.mean(acc))
  return out


def group_report(pred: Dict[str, np.ndarray], batch: Dict[str, np.ndarray],
                 groups: Sequence[str], au_threshold: float = 0.5) -> Dict[str, float]:
  """Metrics of every group in `groups` over the samples that carry it.

  pred[g]: class scores [N, C] (any monotone scores: softmax or sigmoid) for
  'expression' / 'compound', AU probabilities [N, 14] for 'aus'. Groups with no
  labelled sample are left out.
  """
  out = {}
  for g in groups:
    if g not in pred or f'has_{g}' not in batch:
      continue
    m = np.asarray(batch[f'has_{g}']).astype(bool)
    if g in ('expression', 'compound'):
      m &= np.asarray(batch[g]) >= 0
    if not m.any():
      continue
    p = np.asarray(pred[g])[m]
    if g == 'aus':
      y = np.asarray(batch['aus'])[m] >= 0.5
      f1 = np.asarray(metrics.f1_per_class(p >= au_threshold, y))
      acc = np.asarray(metrics.per_class_accuracy_binary(p >= au_threshold, y))
      out.update({f'aus/f1/{n}': float(v) for n, v in zip(labels.AU_NAMES, f1)})
      out.update({f'aus/accuracy/{n}': float(v) for n, v in zip(labels.AU_NAMES, acc)})
      out['aus/f1_mean'] = float(np.mean(f1))
      out['aus/accuracy_mean'] = float(np.mean(acc))
    else:
      out.update(_class_report(p, np.asarray(batch[g])[m], _NAMES[g], g))
  return out


def au_by_expression(expression_scores: np.ndarray, au_scores: np.ndarray):
  """([7, 14] mean AU score per predicted expression, [7] image counts).

  Rows of expressions never predicted are NaN.
  """
  pred = np.argmax(expression_scores, -1)
  k = len(labels.EXPRESSIONS)
  counts = np.bincount(pred, minlength=k)
  sums = np.zeros((k, au_scores.shape[-1]))
  np.add.at(sums, pred, au_scores)
  with np.errstate(invalid='ignore', divide='ignore'):
    return sums / counts[:, None], counts


def au_table_text(table: np.ndarray, counts: np.ndarray) -> str:
  """003 Table 3 as fixed-width text: a row per expression, a column per AU."""
  head = f'{"expression":<10} {"n":>5} ' + ' '.join(f'{n:>5}' for n in labels.AU_NAMES)
  rows = [head]
  for name, c, row in zip(labels.EXPRESSIONS, counts, table):
    rows.append(f'{name:<10} {int(c):>5} ' + ' '.join(f'{v:5.2f}' for v in row))
  return '\n'.join(rows)


def plot_au_heatmap(table: np.ndarray, path: str, title: str = ''):
  """003 Fig. 2: heat map of mean AU scores per predicted expression."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(9, 4))
  im = ax.imshow(np.nan_to_num(table), vmin=0, vmax=1, cmap='viridis')
  ax.set_xticks(range(len(labels.AU_NAMES)), labels.AU_NAMES, rotation=90)
  ax.set_yticks(range(len(labels.EXPRESSIONS)), labels.EXPRESSIONS)
  ax.set_title(title or 'Mean predicted AU score by predicted expression')
  fig.colorbar(im, ax=ax)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def predict_source(trainer, state, source, batch_size: int = 64, num_threads: int = 2):
  """(predictions, labels) of `state` on every record of `source`, as numpy."""
  from fer_jax.evaluate.evaluator import Evaluator
  pre = trainer.preprocess('report')  # the run's own, face detector included
  out = Evaluator(trainer.eval_step, source, pre, batch_size,
                  num_threads=num_threads).run(state)
  return out.pred, out.labels
