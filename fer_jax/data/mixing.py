"""Mixed training data from several datasets over one union label space (003).

    config.data.mixture = [
        dict(name='synthetic', source=dict(preset='sfew_like'), weight=0.5),
        dict(name='synthetic', source=dict(preset='emotionet_like'), weight=0.5),
    ]

Each entry is a `config.data`-like section (`name` picks the dataset registry
entry, `source` its kwargs; optional `weight`, `train_records`, and `labels` for
sources that do not expose `.labels`). Entry i becomes `dataset_id` i. Every
example gets `labels` [L] over the union of the mixture's label groups (in the
order of `GROUPS`: 7 expressions, 14 AUs, 15 compounds where present) and
`label_mask` [L] marking the entries its own dataset knows.

Mixing is grain's own `MapDataset.mix`, so batch k is a pure function of
(sources, weights, seed, k) and a run restarts at any step, as with
`pipeline.train_dataset`. `alternate=True` mixes whole batches instead of samples
(each batch from one dataset: the classical multi-task baseline).
"""
import math
from typing import Any, Dict, Sequence, Tuple

import grain
import numpy as np

from fer_jax.data import labels as label_lib
from fer_jax.data import pipeline

# Label groups with one sigmoid output per label, in union order.
GROUPS = ('expression', 'aus', 'compound')
GROUP_NAMES = {'expression': label_lib.EXPRESSIONS, 'aus': label_lib.AU_NAMES,
               'compound': label_lib.COMPOUND_EXPRESSIONS}
# The two groups whose classes are mutually exclusive within one dataset (a
# compound_like record is either one basic or one compound class).
_EXCLUSIVE = ('expression', 'compound')

# Fields (with the value a dataset that lacks them gets) every mixed example has,
# so that examples of different sources batch together.
_DEFAULTS = {
    'valence': np.float32(0.0), 'arousal': np.float32(0.0),
    'expression': np.int32(label_lib.MISSING),
    'compound': np.int32(label_lib.MISSING),
    'aus': np.zeros(len(label_lib.AUS), np.float32),
    'has_va': np.bool_(False), 'has_expression': np.bool_(False),
    'has_aus': np.bool_(False), 'has_compound': np.bool_(False),
    'subject': np.int32(-1), 'domain': np.int32(-1), 'clip': np.int32(-1),
}


def label_space(groups: Sequence[str]) -> Tuple[str, ...]:
  """The groups of `groups` with sigmoid outputs, in canonical union order."""
  unknown = set(groups) - set(GROUPS) - {'va'}
  if unknown:
    raise KeyError(f'Unknown label group(s) {sorted(unknown)}; valid: {GROUPS}')
  return tuple(g for g in GROUPS if g in groups)


def num_labels(groups: Sequence[str]) -> int:
  return sum(len(GROUP_NAMES[g]) for g in label_space(groups))


def group_slices(groups: Sequence[str]) -> Dict[str, slice]:
  """Where each group sits on the union label axis."""
  out, start = {}, 0
  for g in label_space(groups):
    out[g] = slice(start, start + len(GROUP_NAMES[g]))
    start += len(GROUP_NAMES[g])
  return out


def label_names(groups: Sequence[str]) -> Tuple[str, ...]:
  return tuple(f'{g}/{n}' for g in label_space(groups) for n in GROUP_NAMES[g])


def union_targets(fields: Dict[str, Any], groups: Sequence[str],
                  dataset_groups: Sequence[str] | None = None, xp=np):
  """(labels [..., L], label_mask [..., L]) from the canonical label fields.

  Works on one record or a batch (any leading shape), with numpy or jax.numpy
  (`xp`). An entry is known when the record carries its group (`has_*`); with
  `dataset_groups` (the groups its dataset annotates) also when the dataset
  annotates both exclusive groups and the record has the other one: a basic
  expression is then a known negative for every compound class, and vice versa.
  """
  ys, ms = [], []
  for g in label_space(groups):
    n = len(GROUP_NAMES[g])
    has = xp.asarray(fields.get(f'has_{g}', False)).astype(bool)
    if dataset_groups is not None:
      if g not in dataset_groups:
        has = xp.zeros_like(has)
      elif g in _EXCLUSIVE and set(_EXCLUSIVE) <= set(dataset_groups):
        other = _EXCLUSIVE[1 - _EXCLUSIVE.index(g)]
        has = has | xp.asarray(fields.get(f'has_{other}', False)).astype(bool)
    if g == 'aus':
      y = xp.asarray(fields['aus']).astype(np.float32)
    else:  # one-hot; MISSING (-1) gives all zeros
      y = (xp.asarray(fields[g])[..., None] == xp.arange(n)).astype(np.float32)
    ys.append(y)
    ms.append(xp.broadcast_to(has[..., None], y.shape))
  return xp.concatenate(ys, -1), xp.concatenate(ms, -1)


def dataset_groups(source, entry) -> Tuple[str, ...]:
  """The label groups a mixture entry's source annotates."""
  groups = entry.get('labels') or getattr(source, 'labels', None)
  if groups is None:
    raise ValueError(f'Mixture entry {dict(entry)} has a source without `.labels`; '
                     'give its label groups as `labels=(...)` in the entry.')
  return tuple(groups)


def mixture_groups(data_config) -> Tuple[str, ...]:
  """Union label space of `config.data.mixture` (builds the train sources)."""
  groups = set()
  for entry in data_config.mixture:
    groups |= set(_source(data_config, entry)[1])
  return label_space(groups)


def _source(data_config, entry):
  """(train source of a mixture entry, its label groups)."""
  import ml_collections
  from fer_jax.data.sources import get_source
  entry = ml_collections.ConfigDict(dict(entry))  # entries may be plain dicts
  src = get_source(entry, entry.get('split', data_config.get('train_split', 'train')))
  groups = dataset_groups(src, entry)  # before `limit` hides `.labels`
  return pipeline.limit(src, entry.get('train_records', 0)), groups


class Annotate:
  """Preprocesses a record of dataset `dataset_id` and adds its union labels."""

  def __init__(self, preprocess, dataset_id: int, groups, own_groups):
    self.preprocess, self.dataset_id = preprocess, dataset_id
    self.groups, self.own_groups = tuple(groups), tuple(own_groups)

  def __call__(self, record, rng=None):
    ex = self.preprocess(record, rng)
    out = {k: np.asarray(ex.get(k, v)) for k, v in _DEFAULTS.items()}
    out['image'] = ex['image']
    out['dataset_id'] = np.int32(self.dataset_id)
    out['labels'], out['label_mask'] = union_targets(out, self.groups,
                                                     self.own_groups)
    return out


def _seed(seed: int, i: int) -> int:
  # Distinct, stable shuffle/augmentation streams per dataset of the mixture.
  return (seed * 1_000_003 + 7919 * (i + 1)) % (2**31 - 1)


def mixture_dataset(sources: Sequence[Any], weights: Sequence[float],
                    own_groups: Sequence[Sequence[str]], preprocess,
                    global_batch: int, num_steps: int, seed: int,
                    process_index: int = 0, process_count: int = 1,
                    alternate: bool = False):
  """Batched MapDataset mixing `sources` by `weights` (see module doc).

  Each source is shuffled (reshuffled per epoch), repeated long enough for
  `num_steps` even at weight 1, sharded over processes, augmented with its own
  seed, annotated, then mixed: per sample, or per batch when `alternate`.
  """
  if global_batch % process_count:
    raise ValueError(f'batch size {global_batch} is not divisible by the '
                     f'{process_count} processes')
  if not len(sources) == len(weights) == len(own_groups) or not sources:
    raise ValueError('mixture needs one weight and label-group tuple per source')
  if min(weights) <= 0:
    raise ValueError(f'mixture weights must be > 0, got {list(weights)}')
  local_batch = global_batch // process_count
  groups = label_space(set().union(*map(set, own_groups)))
  parts = []
  for i, (src, g) in enumerate(zip(sources, own_groups)):
    s = _seed(seed, i)
    epochs = math.ceil(num_steps * global_batch / len(src)) + 1
    ds = grain.MapDataset.source(src).shuffle(seed=s).repeat(epochs)
    ds = ds[process_index::process_count]
    ds = ds.random_map(Annotate(preprocess, i, groups, g), seed=s)
    if alternate:
      ds = ds.batch(local_batch, drop_remainder=True)
    parts.append(ds)
  mixed = grain.MapDataset.mix(parts, [float(w) for w in weights])
  return mixed if alternate else mixed.batch(local_batch, drop_remainder=True)


def train_mixture(data_config, preprocess, global_batch: int, num_steps: int,
                  seed: int, process_index: int = 0, process_count: int = 1):
  """`mixture_dataset` of `config.data.mixture` (alternate: `data.alternate`)."""
  entries = [dict(e) for e in data_config.mixture]
  sources, groups = zip(*[_source(data_config, e) for e in entries])
  return mixture_dataset(
      sources, [e.get('weight', 1.0) for e in entries], groups, preprocess,
      global_batch, num_steps, seed, process_index, process_count,
      alternate=data_config.get('alternate', False))


def mixture_num_records(data_config) -> int:
  """Records of all mixture train sources together (to define an epoch)."""
  return sum(len(_source(data_config, e)[0]) for e in data_config.mixture)
