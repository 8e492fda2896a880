"""What a config's training data holds: class counts and pixel statistics.

The training data of a `config.data` section, mixed or not (`train_parts`), is
what `class_counts` (004's class balancing) and `featurewise_stats` (Keras'
feature-wise normalisation) summarise; the train loop writes both into the
run's config, so evaluation and a resumed run read them back.
"""
import dataclasses
import json
from typing import Any, Dict, Tuple

import grain
import numpy as np

from fer_jax.data import labels as label_lib
from fer_jax.data import mixing
from fer_jax.data import pipeline
from fer_jax.data import pp
from fer_jax.data import pp_ops
from fer_jax.data import sources


def train_parts(data_config):
  """[(raw source, records limit, share, entry)] of the training data of a
  `config.data` section: its mixture entries, or its one train source.

  share: the fraction of training samples drawn from the part (the mixture
  weights normalised; 1 for one source). The records of a part are the first
  `limit` of its raw source (all when 0).
  """
  if data_config.get('mixture'):
    entries = [dict(e) for e in data_config.mixture]
    raws = [mixing.raw_source(data_config, e) for e in entries]
    weights = mixing.entry_weights(entries, [pipeline.limit(r[0], r[2]) for r in raws])
    total = sum(weights)
    return [(r[0], r[2], w / total, e) for r, w, e in zip(raws, weights, entries)]
  src = sources.get_source(data_config, data_config.get('train_split', 'train'))
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
  images (see `featurewise_stats_of_source`); a mixture's parts are combined
  by their shares, each preprocessed with its own crop."""
  parts = train_parts(data_config)
  moments = [image_moments(src, mixing.entry_preprocess(preprocess, e),
                           min(_num(src, n), num_records or _num(src, n)),
                           limit=n, num_threads=num_threads)
             for src, n, _, e in parts]
  return combine_moments(moments, [p[2] for p in parts])


# ------------------------------------------- pixel statistics


def image_moments(source, preprocess: pipeline.Preprocess, num_records: int = 0,
                  limit: int = 0, num_threads: int = 2):
  """(count, sum [C], sum of squares [C]) in float64 of the pixels of
  `num_records` records (0: all) evenly spaced over the first `limit` records
  of `source` (all when 0), preprocessed by `preprocess` without augmentation
  and without normalisation (pixel units)."""
  n = len(source) if limit <= 0 else min(limit, len(source))
  k = n if num_records <= 0 else min(num_records, n)
  idx = np.unique(np.linspace(0, n - 1, k).round().astype(np.int64)) if k else (
      np.zeros(0, np.int64))
  raw = dataclasses.replace(preprocess, pp=pp.with_value(preprocess.pp, 'float'))
  ds = grain.MapDataset.range(len(idx)).map(
      lambda i: raw(source[int(idx[i])])['image'].astype(np.float64))
  opts = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=8)
  count, total, squares = 0, 0.0, 0.0  # [C] from the first image on
  for img in ds.to_iter_dataset(opts):
    px = img.reshape(-1, img.shape[-1])
    count += px.shape[0]
    total += px.sum(0)
    squares += np.square(px).sum(0)
  return count, total, squares


def combine_moments(moments, shares=None):
  """{'mean': [C], 'std': [C]} (float tuples, pixel units) of `image_moments`
  results; with `shares`, part i weighs share_i (its fraction of the training
  samples, e.g. a mixture's weights) instead of its pixel count."""
  if shares is None:
    count = sum(m[0] for m in moments)
    mean = sum(m[1] for m in moments) / count
    sq = sum(m[2] for m in moments) / count
  else:
    total = float(sum(shares))
    mean = sum(s / total * m[1] / m[0] for m, s in zip(moments, shares))
    sq = sum(s / total * m[2] / m[0] for m, s in zip(moments, shares))
  std = np.sqrt(np.maximum(sq - np.square(mean), 0.0))
  return {'mean': tuple(float(v) for v in mean),
          'std': tuple(float(v) for v in std)}


def featurewise_stats_of_source(source, preprocess: pipeline.Preprocess,
                                num_records: int = 0, limit: int = 0,
                                num_threads: int = 2):
  """Keras ImageDataGenerator.fit's featurewise mean and std: per channel,
  over every pixel of the training images (`num_records` evenly spaced ones
  when > 0), in pixel units; as {'mean': (...), 'std': (...)}."""
  return combine_moments([image_moments(source, preprocess, num_records, limit,
                                        num_threads)])


_STATS_CACHE: Dict[str, Any] = {}


def featurewise_stats_of_config(data_config, detector=None):
  """`featurewise_stats` of a `config.data` section's training data (its
  mixture or its train source), computed once per process and config;
  `detector` as `pipeline.Preprocess` takes it (cropped records without eyes or
  landmarks)."""
  d = data_config.to_dict() if hasattr(data_config, 'to_dict') else dict(data_config)
  # What the training images depend on (not the evaluation data, augmentation).
  spec = pipeline.pp_of_config(data_config, values='float')
  d = {k: d.get(k) for k in ('name', 'source', 'train_split', 'train_records',
                             'mixture', 'featurewise_records', 'num_threads')}
  d['pp'] = pp.unparse([op for op in pp.parse(spec)
                        if op[0] not in pp_ops.RANDOM_OPS])
  key = json.dumps(d, sort_keys=True, default=str)
  if key not in _STATS_CACHE:
    pre = pipeline.Preprocess(d['pp'], detector=detector)
    _STATS_CACHE[key] = featurewise_stats(
        data_config, pre, int(d.get('featurewise_records', 0) or 0),
        num_threads=int(d.get('num_threads', 2) or 2))
  return _STATS_CACHE[key]
