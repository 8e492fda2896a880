"""Mixed training data from several datasets over one union label space (003).

    config.data.mixture = [
        dict(name='synthetic', source=dict(preset='sfew_like'), weight=0.5),
        dict(name='synthetic', source=dict(preset='emotionet_like'), weight=0.5),
    ]

Each entry is a `config.data`-like section (`name` picks the dataset registry
entry, `source` its kwargs; optional `weight`, `split`, `train_records`, `crop`,
and `labels` for sources that do not expose `.labels`). Entry i becomes
`dataset_id` i. Every example gets `labels` [L] over the union of the mixture's
label groups (in the order of `GROUPS`: 7 expressions, 14 AUs, 15 compounds
where present) and `label_mask` [L] marking the entries its own dataset knows.

`weight` is a number (the share of samples is weight / sum of weights) or
'size': the entry's number of records, so that the mixture samples like the
plain concatenation of the datasets (001's FER32+EmotiW, 004's KDEF +
AffectNet). `crop` overrides `config.data.crop` for that entry (001: FER-2013
is not aligned, SFEW is eye-aligned); everything else of preprocessing is
shared. `config.data.train_records` > 0 also caps every entry (quick runs).

The same mixture trains the ordinary 'affect' task: with `union_labels=False`
(what the train loop passes for it) the examples carry the canonical label
fields only, and `check_task_groups` refuses an entry that annotates none of
the task's targets (it would only dilute the batches). The union label space
itself is `labels.label_space` and `labels.union_targets`; what a config's
training data holds (class counts, pixel statistics) is `statistics`.

Mixing is grain's own `MapDataset.mix`, so batch k is a pure function of
(sources, weights, seed, k) and a run restarts at any step, as with
`pipeline.train_dataset`. `alternate=True` mixes whole batches instead of samples
(each batch from one dataset: the classical multi-task baseline).
"""
import math
from typing import Any, Sequence, Tuple

import grain
import numpy as np

from fer_jax.data import labels as label_lib
from fer_jax.data import pipeline
from fer_jax.data import sources as sources_lib

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
  return label_lib.label_space(groups)


def _source(data_config, entry):
  """(train source of a mixture entry, its label groups)."""
  src, groups, n = raw_source(data_config, entry)
  return pipeline.limit(src, n), groups


def _records_cap(data_config, entry) -> int:
  """The entry's `train_records`, capped by `config.data.train_records`."""
  caps = [int(n) for n in (entry.get('train_records', 0),
                           data_config.get('train_records', 0)) if n and n > 0]
  return min(caps) if caps else 0


def raw_source(data_config, entry):
  """(unlimited train source of an entry, its label groups, records limit)."""
  import ml_collections
  entry = ml_collections.ConfigDict(dict(entry))  # entries may be plain dicts
  src = sources_lib.get_source(
      entry, entry.get('split', data_config.get('train_split', 'train')))
  groups = dataset_groups(src, entry)  # before `limit` hides `.labels`
  return src, groups, _records_cap(data_config, entry)


def entry_weights(entries, sources) -> Tuple[float, ...]:
  """Mixture weights of the entries: numbers, or 'size' (= len of the source)."""
  out = []
  for e, src in zip(entries, sources):
    w = e.get('weight', 1.0)
    if isinstance(w, str):
      if w != 'size':
        raise ValueError(f"mixture weight must be a number or 'size', got {w!r}")
      w = len(src)
    out.append(float(w))
  return tuple(out)


def entry_preprocess(preprocess, entry):
  """`preprocess` with the entry's own crop (and name, for error messages)."""
  import dataclasses
  changes = {'name': f"{entry.get('name', 'dataset')}/"
                     f"{entry.get('split', 'train')}"}
  if entry.get('crop'):
    changes['crop'] = entry['crop']
  return dataclasses.replace(preprocess, **changes)


class Annotate:
  """Preprocesses a record of dataset `dataset_id` and adds its union labels
  (only the canonical label fields when `union` is False)."""

  def __init__(self, preprocess, dataset_id: int, groups, own_groups,
               union: bool = True):
    self.preprocess, self.dataset_id = preprocess, dataset_id
    self.groups, self.own_groups = tuple(groups), tuple(own_groups)
    self.union = union

  def __call__(self, record, rng=None):
    ex = self.preprocess(record, rng)
    out = {k: np.asarray(ex.get(k, v)) for k, v in _DEFAULTS.items()}
    out['image'] = ex['image']
    out['dataset_id'] = np.int32(self.dataset_id)
    if self.union:
      out['labels'], out['label_mask'] = label_lib.union_targets(
          out, self.groups, self.own_groups)
    return out


def _seed(seed: int, i: int) -> int:
  # Distinct, stable shuffle/augmentation streams per dataset of the mixture.
  return (seed * 1_000_003 + 7919 * (i + 1)) % (2**31 - 1)


def mixture_dataset(sources: Sequence[Any], weights: Sequence[float],
                    own_groups: Sequence[Sequence[str]], preprocess,
                    global_batch: int, num_steps: int, seed: int,
                    process_index: int = 0, process_count: int = 1,
                    alternate: bool = False, union_labels: bool = True):
  """Batched MapDataset mixing `sources` by `weights` (see module doc).

  Each source is shuffled (reshuffled per epoch), repeated long enough for
  `num_steps` even at weight 1, sharded over processes, augmented with its own
  seed, annotated, then mixed: per sample, or per batch when `alternate`.
  `preprocess` is one Preprocess for every source or a sequence of one per
  source; `union_labels=False` leaves out `labels` / `label_mask`.
  """
  if global_batch % process_count:
    raise ValueError(f'batch size {global_batch} is not divisible by the '
                     f'{process_count} processes')
  if not len(sources) == len(weights) == len(own_groups) or not sources:
    raise ValueError('mixture needs one weight and label-group tuple per source')
  if min(weights) <= 0:
    raise ValueError(f'mixture weights must be > 0, got {list(weights)}')
  local_batch = global_batch // process_count
  groups = label_lib.label_space(set().union(*map(set, own_groups)))
  pres = (list(preprocess) if isinstance(preprocess, (list, tuple))
          else [preprocess] * len(sources))
  if len(pres) != len(sources):
    raise ValueError('mixture needs one preprocess per source (or one for all)')
  parts = []
  for i, (src, g, pre) in enumerate(zip(sources, own_groups, pres)):
    s = _seed(seed, i)
    epochs = math.ceil(num_steps * global_batch / len(src)) + 1
    ds = grain.MapDataset.source(src).shuffle(seed=s).repeat(epochs)
    ds = ds[process_index::process_count]
    ds = ds.random_map(Annotate(pre, i, groups, g, union_labels), seed=s)
    if alternate:
      ds = ds.batch(local_batch, drop_remainder=True)
    parts.append(ds)
  mixed = grain.MapDataset.mix(parts, [float(w) for w in weights])
  return mixed if alternate else mixed.batch(local_batch, drop_remainder=True)


def train_mixture(data_config, preprocess, global_batch: int, num_steps: int,
                  seed: int, process_index: int = 0, process_count: int = 1,
                  union_labels: bool = True):
  """`mixture_dataset` of `config.data.mixture` (alternate: `data.alternate`);
  each entry preprocessed with its own crop (`entry_preprocess`)."""
  entries = [dict(e) for e in data_config.mixture]
  sources, groups = zip(*[_source(data_config, e) for e in entries])
  return mixture_dataset(
      sources, entry_weights(entries, sources), groups,
      [entry_preprocess(preprocess, e) for e in entries],
      global_batch, num_steps, seed, process_index, process_count,
      alternate=data_config.get('alternate', False), union_labels=union_labels)


def mixture_num_records(data_config) -> int:
  """Records of all mixture train sources together (to define an epoch)."""
  return sum(len(_source(data_config, e)[0]) for e in data_config.mixture)


def check_task_groups(data_config, targets: Sequence[str]):
  """Raises if a mixture entry annotates none of the task's `targets`."""
  want = {label_lib.TARGET_GROUPS[t] for t in targets}
  for i, entry in enumerate(data_config.mixture):
    got = set(raw_source(data_config, entry)[1])
    if not got & want:
      raise ValueError(
          f'Mixture entry {i} ({dict(entry)}) annotates {sorted(got)}, none of '
          f'the task targets {tuple(targets)}: it would add only masked-out '
          'samples. Drop it, or train a multi-task task (sjmt).')
