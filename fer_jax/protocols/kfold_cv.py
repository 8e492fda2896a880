"""k-fold cross-validation of any training config, folds grouped by clip/subject.

    results = run_kfold(config, workdir, num_folds=5, group_by='auto')

Fold k trains `config` on the other folds of `config.data.train_split` and
evaluates on fold k (its 'validation'); other splits (e.g. test_splits) pass
through unchanged. Each fold is an ordinary run of `train_and_evaluate` in
`workdir/fold_k` (so it resumes, logs and checkpoints as usual) whose data is
the registered dataset 'kfold' wrapping the original one:

  config.data.name = 'kfold'
  config.data.source = dict(base_name=..., base_source=..., base_split='train',
                            fold=k, num_folds=n, group_by='clip', seed=0, records=0)

Grouping: frames of one clip (and images of one subject) are near-duplicates,
so whole groups go to one fold. 'auto' groups by clip when records carry clip
ids (>= 0), else by subject, else by record. Groups are shuffled by `seed` and
placed largest first into the fold holding the fewest records so far, which
balances fold sizes. `workdir/kfold_results.json` has every fold's results and
the mean and std (ddof=1) over folds of each scalar metric.
"""
import copy
import functools
import json
import os
from typing import Optional

import numpy as np

from fer_jax.data.sources import DATASETS, get_source

GROUP_BY = ('auto', 'clip', 'subject', 'none')


@functools.lru_cache(maxsize=16)
def _groups(base_name: str, base_source_json: str, split: str, records: int,
            group_by: str):
  """(group id per record, the grouping used) of a base split; read once."""
  import ml_collections
  from fer_jax.data import pipeline
  data = ml_collections.ConfigDict({'name': base_name,
                                    'source': json.loads(base_source_json)})
  source = pipeline.limit(get_source(data, split), records)
  n = len(source)
  if group_by == 'none':
    return np.arange(n), 'none'
  keys = ('clip', 'subject') if group_by == 'auto' else (group_by,)
  rows = [source[i] for i in range(n)]
  for key in keys:
    if key in rows[0]:
      ids = np.asarray([int(r[key]) for r in rows])
      if group_by != 'auto' or np.any(ids >= 0):
        # A record without a group (id < 0) is a group of its own.
        own = np.arange(n) + ids.max() + 1
        return np.where(ids >= 0, ids, own), key
  if group_by != 'auto':
    raise KeyError(f'Records of {base_name}/{split} have no {group_by!r} field.')
  return np.arange(n), 'none'


def assign_folds(groups: np.ndarray, num_folds: int, seed: int = 0) -> np.ndarray:
  """Fold id per record; whole groups per fold, sizes balanced greedily."""
  groups = np.asarray(groups)
  ids, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
  if num_folds < 2 or len(ids) < num_folds:
    raise ValueError(f'Need 2 <= num_folds <= number of groups ({len(ids)}), '
                     f'got {num_folds}.')
  perm = np.random.default_rng(seed).permutation(len(ids))
  perm = perm[np.argsort(-sizes[perm], kind='stable')]  # largest first
  load, fold_of = np.zeros(num_folds, np.int64), np.empty(len(ids), np.int64)
  for g in perm:
    f = int(np.argmin(load))
    fold_of[g] = f
    load[f] += sizes[g]
  return fold_of[inverse].astype(np.int32)


class _Subset:
  """Records `indices` of a random-access source."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices)

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, i):
    return self.source[int(self.indices[i])]


@DATASETS.register('kfold')
def _kfold(split: str, base_name: str, base_source: dict, fold: int, num_folds: int,
           base_split: str = 'train', group_by: str = 'auto', seed: int = 0,
           records: int = 0):
  import ml_collections
  from fer_jax.data import pipeline
  if group_by not in GROUP_BY:
    raise ValueError(f'Unknown group_by {group_by!r}; valid: {GROUP_BY}')
  base_source = (base_source.to_dict() if hasattr(base_source, 'to_dict')
                 else dict(base_source))
  data = ml_collections.ConfigDict({'name': base_name, 'source': base_source})
  if split not in ('train', 'validation'):
    return get_source(data, split)  # e.g. test splits: unchanged
  groups, _ = _groups(base_name, json.dumps(base_source, sort_keys=True),
                      base_split, records, group_by)
  folds = assign_folds(groups, num_folds, seed)
  keep = folds == fold if split == 'validation' else folds != fold
  return _Subset(pipeline.limit(get_source(data, base_split), records),
                 np.nonzero(keep)[0])


def fold_config(config, fold: int, num_folds: int, group_by: str = 'auto',
                seed: int = 0, records: int = 0):
  """The config of fold `fold`: data replaced by the 'kfold' wrapper."""
  import ml_collections
  c = copy.deepcopy(config)
  c.unlock()
  src = c.data.get('source', {})
  src = src.to_dict() if isinstance(src, ml_collections.ConfigDict) else dict(src)
  c.data.source = ml_collections.ConfigDict(dict(
      base_name=c.data.name, base_source=src, base_split=c.data.train_split,
      fold=fold, num_folds=num_folds, group_by=group_by, seed=seed, records=records))
  c.data.name = 'kfold'
  c.data.train_split, c.data.eval_split = 'train', 'validation'
  c.data.train_records = c.data.eval_records = 0  # `records` limits the base
  return c


def summarize(per_fold):
  """Mean and std (ddof=1) over folds of every scalar metric."""
  keys = [k for k, v in per_fold[0].items()
          if isinstance(v, float) and all(isinstance(r.get(k), float) for r in per_fold)]
  vals = {k: np.asarray([r[k] for r in per_fold]) for k in keys}
  return ({k: float(np.mean(v)) for k, v in vals.items()},
          {k: float(np.std(v, ddof=1)) if len(v) > 1 else None
           for k, v in vals.items()})


def run_kfold(config, workdir: str, num_folds: int = 5, group_by: str = 'auto',
              seed: int = 0, records: int = 0, folds: Optional[list] = None) -> dict:
  """Trains and evaluates every fold; returns (and writes) the summary."""
  from fer_jax.train.logging import write_json
  from fer_jax.train.loop import train_and_evaluate
  from fer_jax.train.workdir import validate_config
  validate_config(config, check_files=False)  # before the folds are read
  src = config.data.get('source', {})
  src = src.to_dict() if hasattr(src, 'to_dict') else dict(src)
  groups, used = _groups(config.data.name, json.dumps(src, sort_keys=True),
                         config.data.train_split, records, group_by)
  per_fold = []
  for k in (folds if folds is not None else range(num_folds)):
    res = train_and_evaluate(fold_config(config, k, num_folds, group_by, seed, records),
                             os.path.join(workdir, f'fold_{k}'))
    per_fold.append({'fold': k, **res})
  mean, std = summarize(per_fold)
  fold_sizes = np.bincount(assign_folds(groups, num_folds, seed), minlength=num_folds)
  out = {'num_folds': num_folds, 'group_by': used, 'seed': seed,
         'fold_sizes': fold_sizes.tolist(), 'mean': mean, 'std': std,
         'per_fold': per_fold}
  os.makedirs(workdir, exist_ok=True)
  write_json(os.path.join(workdir, 'kfold_results.json'), out)
  return out


def num_folds(config) -> int:
  """`config.kfold.num_folds` (0 or 1: no cross-validation)."""
  return int((config.get('kfold') or {}).get('num_folds', 0) or 0)


def run_from_config(config, workdir: str) -> dict:
  """`run_kfold` with the settings of `config.kfold` (num_folds, group_by, seed,
  optional `folds`: which folds to run, default all);
  `config.data.train_records` limits the split that is divided into folds."""
  k = config.kfold
  folds = k.get('folds') or None  # a subset, e.g. (0,) for a quick look
  return run_kfold(config, workdir, num_folds(config), k.get('group_by', 'auto'),
                   k.get('seed', 0), config.data.get('train_records', 0),
                   list(folds) if folds else None)
