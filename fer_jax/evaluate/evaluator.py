"""One evaluation loop: a jitted predict function over a whole eval dataset.

    ev = Evaluator(predict_fn, source, preprocess, batch_size, report=task.report)
    out = ev.run(state)   # out.pred, out.labels, out.loss, out.metrics

`predict_fn(model_state, batch) -> (predictions, summed loss)`: a dict of
per-example arrays and the loss summed over the batch's real examples
(`batch['mask']`): `train.step.make_eval_step` (of a TrainState) or
`train.step.make_predict_fn` (of a variables dict). A function that is not
jitted yet is jitted here.

The dataset is `pipeline.eval_dataset`: the whole source in order, padded to
full batches. With `put_batch` (the caller's function from a process's local
batch to the global batch, e.g. sharded over every process's devices) each
process reads its share and the results are gathered from all of them; without
it this process alone reads every record.

Nothing leaves the device per batch: the predictions, labels and losses of
every batch stay there, and are fetched once at the end (one `jax.device_get`,
or with `put_batch` one all-gather, of their concatenation). The loss is
summed on the host in float64 in batch order, the same number a per-batch
`loss_sum += float(loss)` gives.
"""
import dataclasses
from typing import Callable, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from fer_jax.data import pipeline


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """A whole split's predictions and labels (padding removed, every
  process's records), its mean loss and the report's metrics (+ 'loss')."""
  pred: Dict[str, np.ndarray]
  labels: Dict[str, np.ndarray]
  loss: float
  metrics: Dict[str, float]


def _concatenate(batches):
  """{key: the per-batch arrays of `batches` concatenated}, on device."""
  return {k: jnp.concatenate([b[k] for b in batches]) for k in batches[0]}


class Evaluator:
  """Runs `predict_fn` over `source` (preprocessed by `preprocess`) in batches
  of `batch_size` (global, over all processes). `report(pred, labels)`: the
  metrics of the real examples (None: only the loss)."""

  def __init__(self, predict_fn: Callable, source, preprocess, batch_size: int, *,
               report: Optional[Callable] = None,
               put_batch: Optional[Callable] = None, num_threads: int = 2):
    self.predict_fn = predict_fn if hasattr(predict_fn, 'lower') else jax.jit(predict_fn)
    self.report = report
    self.put_batch = put_batch
    self.num_threads = num_threads
    index, count = ((0, 1) if put_batch is None
                    else (jax.process_index(), jax.process_count()))
    self.dataset = pipeline.eval_dataset(source, preprocess, batch_size, index, count)

  def _batches(self, model_state):
    """(predictions, labels, losses) of every batch, left where they are."""
    preds, labels, losses = [], [], []
    for batch in pipeline.to_iterator(self.dataset, num_threads=self.num_threads):
      if self.put_batch is not None:
        batch = self.put_batch(batch)
      pred, loss = self.predict_fn(model_state, batch)
      preds.append(pred)
      labels.append({k: v for k, v in batch.items() if k != 'image'})
      losses.append(loss)
    return preds, labels, losses

  def _fetch(self, preds, labels, losses):
    """(predictions, labels, per-batch losses) on the host, concatenated."""
    if self.put_batch is None:
      # Labels are this process's numpy batches: kept as they are (dtypes too).
      pred, losses = jax.device_get((_concatenate(preds), jnp.stack(losses)))
      return pred, {k: np.concatenate([l[k] for l in labels]) for k in labels[0]}, losses
    # Global arrays: one gather of the concatenation, in global batch order.
    return multihost_utils.process_allgather(
        (_concatenate(preds), _concatenate(labels), jnp.stack(losses)), tiled=True)

  def run(self, model_state) -> Evaluation:
    """The evaluation of `model_state` (what predict_fn takes first)."""
    pred, labels, losses = self._fetch(*self._batches(model_state))
    loss_sum = 0.0
    for loss in losses:  # float64, in batch order
      loss_sum += float(loss)
    m = labels['mask'].astype(bool)
    pred = {k: v[m] for k, v in pred.items()}
    labels = {k: v[m] for k, v in labels.items()}
    loss = loss_sum / max(m.sum(), 1)
    metrics = dict(self.report(pred, labels)) if self.report else {}
    metrics['loss'] = loss
    return Evaluation(pred, labels, loss, metrics)
