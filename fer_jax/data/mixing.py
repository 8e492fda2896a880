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
the task's targets (it would only dilute the batches). The training data of a
config, mixed or not, is also what `class_counts` (004's class balancing) and
`featurewise_stats` (Keras' feature-wise normalisation) summarise.

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
    if g == 'aus':  # an AU the dataset does not code is -1 (AU_MISSING): unknown
      aus = xp.asarray(fields['aus']).astype(np.float32)
      y = xp.maximum(aus, 0.0)
      m = has[..., None] & label_lib.au_known(aus)
    else:  # one-hot; MISSING (-1) gives all zeros
      y = (xp.asarray(fields[g])[..., None] == xp.arange(n)).astype(np.float32)
      m = xp.broadcast_to(has[..., None], y.shape)
    ys.append(y)
    ms.append(m)
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
  src, groups, n = _raw_source(data_config, entry)
  return pipeline.limit(src, n), groups


def _records_cap(data_config, entry) -> int:
  """The entry's `train_records`, capped by `config.data.train_records`."""
  caps = [int(n) for n in (entry.get('train_records', 0),
                           data_config.get('train_records', 0)) if n and n > 0]
  return min(caps) if caps else 0


def _raw_source(data_config, entry):
  """(unlimited train source of an entry, its label groups, records limit)."""
  import ml_collections
  from fer_jax.data.sources import get_source
  entry = ml_collections.ConfigDict(dict(entry))  # entries may be plain dicts
  src = get_source(entry, entry.get('split', data_config.get('train_split', 'train')))
  groups = dataset_groups(src, entry)  # before `limit` hides `.labels`
  return src, groups, _records_cap(data_config, entry)


def _weights(entries, sources) -> Tuple[float, ...]:
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
  groups = label_space(set().union(*map(set, own_groups)))
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
      sources, _weights(entries, sources), groups,
      [entry_preprocess(preprocess, e) for e in entries],
      global_batch, num_steps, seed, process_index, process_count,
      alternate=data_config.get('alternate', False), union_labels=union_labels)


def mixture_num_records(data_config) -> int:
  """Records of all mixture train sources together (to define an epoch)."""
  return sum(len(_source(data_config, e)[0]) for e in data_config.mixture)


# Task targets -> the label group of the records that carries them.
TARGET_GROUPS = {'valence': 'va', 'arousal': 'va', 'expression': 'expression',
                 'aus': 'aus', 'compound': 'compound'}


def check_task_groups(data_config, targets: Sequence[str]):
  """Raises if a mixture entry annotates none of the task's `targets`."""
  want = {TARGET_GROUPS[t] for t in targets}
  for i, entry in enumerate(data_config.mixture):
    got = set(_raw_source(data_config, entry)[1])
    if not got & want:
      raise ValueError(
          f'Mixture entry {i} ({dict(entry)}) annotates {sorted(got)}, none of '
          f'the task targets {tuple(targets)}: it would add only masked-out '
          'samples. Drop it, or train a multi-task task (sjmt).')


# ------------------------------------------- summaries of a config's train data


def train_parts(data_config):
  """[(raw source, records limit, share, entry)] of the training data of a
  `config.data` section: its mixture entries, or its one train source.

  share: the fraction of training samples drawn from the part (the mixture
  weights normalised; 1 for one source). The records of a part are the first
  `limit` of its raw source (all when 0).
  """
  if data_config.get('mixture'):
    entries = [dict(e) for e in data_config.mixture]
    raws = [_raw_source(data_config, e) for e in entries]
    weights = _weights(entries, [pipeline.limit(r[0], r[2]) for r in raws])
    total = sum(weights)
    return [(r[0], r[2], w / total, e) for r, w, e in zip(raws, weights, entries)]
  from fer_jax.data.sources import get_source
  src = get_source(data_config, data_config.get('train_split', 'train'))
  return [(src, int(data_config.get('train_records', 0)), 1.0,
           {'name': data_config.get('name', 'dataset'),
            'split': data_config.get('train_split', 'train')})]


def _num(source, limit):
  return len(source) if limit <= 0 else min(limit, len(source))


def source_labels(source, field: str = 'expression', limit: int = 0) -> np.ndarray:
  """The `field` labels of the first `limit` records (all when 0), -1 where a
  record does not carry it. Reads parsed entries when the source has them (the
  real-dataset adapters: no image decoding), else the records themselves."""
  n = _num(source, limit)
  has = {'expression': 'has_expression', 'compound': 'has_compound'}[field]
  entries = getattr(source, 'entries', None)
  if entries is not None and len(entries) == len(source):
    return np.asarray([int(e.get(field, -1)) for e in entries[:n]], np.int64)
  out = np.empty(n, np.int64)
  for i in range(n):
    r = source[i]
    out[i] = int(r[field]) if bool(r.get(has, True)) else -1
  return out


def class_counts(data_config, field: str = 'expression',
                 num_classes: int = len(label_lib.EXPRESSIONS)) -> Tuple[float, ...]:
  """Class counts of the training labels of a `config.data` section.

  One source: the plain counts. A mixture: the expected count of each class in
  one epoch of it (the epoch's records times the mixture's class frequencies,
  sum_i share_i * count_i,c / n_i); with 'size' weights that is exactly the
  counts of the concatenated datasets, as Keras would see them.
  """
  import json  # pylint: disable=g-import-not-at-top
  d = data_config.to_dict() if hasattr(data_config, 'to_dict') else dict(data_config)
  key = json.dumps([d, field, num_classes], sort_keys=True, default=str)
  if key not in _COUNTS_CACHE:
    _COUNTS_CACHE[key] = _class_counts(data_config, field, num_classes)
  return _COUNTS_CACHE[key]


_COUNTS_CACHE: Dict[str, Tuple[float, ...]] = {}


def _class_counts(data_config, field, num_classes):
  parts = train_parts(data_config)
  total = sum(_num(src, n) for src, n, _, _ in parts)
  freq = np.zeros(num_classes, np.float64)
  for src, n, share, _ in parts:
    y = source_labels(src, field, n)
    y = y[y >= 0]
    if y.size and y.max() >= num_classes:
      raise ValueError(f'{field} label {y.max()} outside [0, {num_classes})')
    if y.size:
      freq += share * np.bincount(y, minlength=num_classes) / _num(src, n)
  counts = freq * total
  if len(parts) == 1:
    counts = np.round(counts)  # exact integers for one source
  return tuple(float(c) for c in counts)


def featurewise_stats(data_config, preprocess, num_records: int = 0,
                      num_threads: int = 2):
  """Keras-style feature-wise (mean, std) per channel of a config's training
  images (see `pipeline.featurewise_stats`); a mixture's parts are combined by
  their shares, each preprocessed with its own crop."""
  parts = train_parts(data_config)
  moments = [pipeline.image_moments(src, entry_preprocess(preprocess, e),
                                    min(_num(src, n), num_records or _num(src, n)),
                                    limit=n, num_threads=num_threads)
             for src, n, _, e in parts]
  return pipeline.combine_moments(moments, [p[2] for p in parts])
