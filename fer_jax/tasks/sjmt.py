"""Selective Joint Multi-Task (SJMT, 003) and the classical multi-task baseline.

SJMT ('sjmt'): the whole network is shared and has one sigmoid output per label
of the union of the datasets' label spaces (`groups`). For a sample of dataset d
only the labels of d enter its loss (a mask over the label axis); the rest are
not treated as negatives, yet predicted for every image:

    loss(x) = - sum_{c in L_d} y_c log s(z_c) + (1 - y_c) log(1 - s(z_c))

averaged over the samples of the batch that carry any label.

Classical ('classical_multitask'): a shared trunk with one head per dataset
(softmax for expressions / compounds, sigmoid for AUs), each sample trained only
through its own dataset's head; meant for batches that alternate between the
datasets (`config.data.alternate = True`). The heads are disjoint slices of the
model's last Dense layer: independent linear heads on the shared features.
"""
import dataclasses
from typing import ClassVar, Dict, Sequence, Tuple

import jax
import jax.numpy as jnp
import optax

from fer_jax.data import labels
from fer_jax.evaluate import multitask_report
from fer_jax.tasks.registry import TASKS


def _base(outputs, mask):
  return (jnp.ones(outputs.shape[0]) if mask is None else mask.astype(jnp.float32))


@TASKS.register('sjmt')
@dataclasses.dataclass(frozen=True)
class SJMTTask:
  """One sigmoid per label of `groups`; per sample only its dataset's labels."""
  groups: Sequence[str] = ('expression', 'aus')
  # Trains on the union label space (`labels`, `label_mask`) of its data.
  union_labels: ClassVar[bool] = True

  def __post_init__(self):
    labels.label_space(self.groups)  # raises on unknown groups

  @property
  def label_groups(self) -> Tuple[str, ...]:
    return labels.label_space(self.groups)

  @property
  def num_outputs(self) -> int:
    return labels.num_labels(self.groups)

  @property
  def primary_metric(self) -> Tuple[str, str]:
    if 'expression' in self.label_groups:
      return 'val/expression/accuracy', 'max'
    return 'val/loss', 'min'

  def targets(self, batch):
    """(labels, label_mask) [N, L]: the mixture's, or built from the has_* flags."""
    if 'labels' in batch:
      if batch['labels'].shape[-1] != self.num_outputs:
        raise ValueError(f'batch labels have {batch["labels"].shape[-1]} entries, '
                         f'task.groups={self.label_groups} needs {self.num_outputs}')
      return batch['labels'], batch['label_mask']
    return labels.union_targets(batch, self.groups, xp=jnp)

  def loss(self, outputs, batch, mask=None):
    outputs = outputs.astype(jnp.float32)
    y, known = self.targets(batch)
    known = known.astype(bool) & (_base(outputs, mask)[:, None] > 0)
    # `where`, not a product, so unknown entries get an exact zero gradient.
    per = jnp.where(known, optax.sigmoid_binary_cross_entropy(
        outputs, y.astype(jnp.float32)), 0.0)
    has_any = jnp.any(known, -1).astype(jnp.float32)
    total = jnp.sum(per) / jnp.maximum(jnp.sum(has_any), 1.0)
    aux = {}
    for g, sl in labels.group_slices(self.groups).items():
      n = jnp.sum(jnp.any(known[:, sl], -1))
      aux[f'loss/{g}'] = jnp.sum(per[:, sl]) / jnp.maximum(n, 1.0)
    return total, aux

  def predict(self, outputs) -> Dict[str, jax.Array]:
    """Sigmoid score of every label of every group, for every image."""
    s = jax.nn.sigmoid(outputs.astype(jnp.float32))
    return {g: s[:, sl] for g, sl in labels.group_slices(self.groups).items()}

  def report(self, pred, batch):
    return multitask_report.group_report(pred, batch, self.label_groups)


@TASKS.register('classical_multitask')
@dataclasses.dataclass(frozen=True)
class ClassicalMultitaskTask:
  """Shared trunk, one head per dataset of the mixture (in mixture order).

  heads: the label groups of each dataset, e.g. (('expression',), ('aus',)).
  A sample trains the head of its `dataset_id`; batches without `dataset_id`
  (evaluation on one dataset) use the first head of each group.
  """
  heads: Sequence[Sequence[str]] = (('expression',), ('aus',))
  union_labels: ClassVar[bool] = True

  def __post_init__(self):
    for h in self.heads:
      labels.label_space(h)

  def _layout(self):
    """[(head index, group, slice)] over the output vector."""
    out, start = [], 0
    for i, h in enumerate(self.heads):
      for g in labels.label_space(h):
        n = len(labels.GROUP_NAMES[g])
        out.append((i, g, slice(start, start + n)))
        start += n
    return out

  @property
  def num_outputs(self) -> int:
    return sum(labels.num_labels(h) for h in self.heads)

  @property
  def label_groups(self) -> Tuple[str, ...]:
    return labels.label_space(set().union(*map(set, self.heads)))

  def _first_head(self, g):
    return next(i for i, h in enumerate(self.heads) if g in h)

  @property
  def primary_metric(self) -> Tuple[str, str]:
    if 'expression' in self.label_groups:
      return 'val/expression/accuracy', 'max'
    return 'val/loss', 'min'

  def loss(self, outputs, batch, mask=None):
    outputs = outputs.astype(jnp.float32)
    base = _base(outputs, mask)
    total, aux = 0.0, {}
    for i, g, sl in self._layout():
      if 'dataset_id' in batch:
        mine = (batch['dataset_id'] == i).astype(jnp.float32)
      else:
        mine = jnp.full(outputs.shape[0], float(self._first_head(g) == i))
      m = base * mine * batch[f'has_{g}'].astype(jnp.float32)
      z = outputs[:, sl]
      if g == 'aus':  # an AU the dataset does not code is -1: no loss
        aus = batch['aus'].astype(jnp.float32)
        per = jnp.where(labels.au_known(aus), optax.sigmoid_binary_cross_entropy(
            z, jnp.maximum(aus, 0.0)), 0.0).sum(-1)
      else:
        per = optax.softmax_cross_entropy_with_integer_labels(
            z, jnp.maximum(batch[g], 0))
      l = jnp.sum(jnp.where(m > 0, per, 0.0)) / jnp.maximum(jnp.sum(m), 1.0)
      aux[f'loss/head{i}/{g}'] = l
      total = total + l
    return total, aux

  def predict(self, outputs) -> Dict[str, jax.Array]:
    """Each group from its first head: softmax for classes, sigmoid for AUs."""
    outputs = outputs.astype(jnp.float32)
    pred = {}
    for i, g, sl in self._layout():
      if g in pred or i != self._first_head(g):
        continue
      z = outputs[:, sl]
      pred[g] = jax.nn.sigmoid(z) if g == 'aus' else jax.nn.softmax(z, -1)
    return pred

  def report(self, pred, batch):
    return multitask_report.group_report(pred, batch, self.label_groups)
