"""The plan of paper 000's study: every model it trains, one row each, and the
orders in which the samplers label each training fold."""
import dataclasses
import math
from typing import Dict, List

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.protocols import samplers
from fer_jax.train import distributed
from fer_jax.train import workdir as workdir_lib

CONDITIONS = ('no_transfer', 'transfer_0', 'transfer_100')

# PRNG streams under the study key: the personal models (their own keys and
# initial weights), the random sampler, the MC dropout passes.
MODELS, RANDOM_SAMPLER, MC_DROPOUT = 1, 2, 3


@dataclasses.dataclass
class Plan:
  """Every model the study trains, one row each; the row index is its id."""
  kind: List[str] = dataclasses.field(default_factory=list)       # head | full
  net: List[int] = dataclasses.field(default_factory=list)
  subject: List[int] = dataclasses.field(default_factory=list)
  fold: List[int] = dataclasses.field(default_factory=list)
  condition: List[str] = dataclasses.field(default_factory=list)
  sampler: List[str] = dataclasses.field(default_factory=list)
  fraction: List[float] = dataclasses.field(default_factory=list)
  train: List[np.ndarray] = dataclasses.field(default_factory=list)
  test: List[np.ndarray] = dataclasses.field(default_factory=list)

  def add(self, **row):
    for k, v in row.items():
      getattr(self, k).append(v)

  def __len__(self):
    return len(self.kind)


def num_selected(fraction: float, n: int, subject, fold) -> int:
  """Round half up of fraction * n; zero is an error naming subject + fraction."""
  k = int(math.floor(fraction * n + 0.5))
  if k < 1:
    raise workdir_lib.ConfigError(
        f'Subject {subject} fold {fold}: fraction {fraction:g} of its {n} '
        'training frames selects 0 samples; drop that fraction or the subject.')
  return min(k, n)


def selection_orders(config, nets, feats, outputs, mc, data, folds, subjects,
                     key) -> Dict[tuple, np.ndarray]:
  """{(net, subject, fold, sampler): the training fold's rows in the order the
  sampler labels them}. Selected once per pool (all of it), then every
  fraction takes a prefix (the samplers are prefix-consistent).

  One batched sampler call per sampler: its pools (net x subject x fold) are
  padded to one length and vmapped, so GSx / iGS hold nets x subjects x folds
  x the longest pool x the feature size floats at once (paper scale, AlexNet's
  9216: ~1.5 GB per net). The random order is drawn once per subject x fold
  and shared by the nets (the labels are shared)."""
  pools = []  # (subject index, subject, fold, the pool's rows)
  for si, s in enumerate(subjects):
    rows = np.flatnonzero(data.subject == s)
    pools += [(si, s, k, rows[folds[rows] != k]) for k in range(config.folds)]
  n_pad = max(len(p) for *_, p in pools)
  idx = np.zeros((len(pools), n_pad), np.int64)
  valid = np.zeros((len(pools), n_pad), bool)
  for j, (*_, p) in enumerate(pools):
    idx[j, :len(p)], valid[j, :len(p)] = p, True
  # Pool (subject si, fold k) draws its random order from this key.
  random_key = jax.random.fold_in(key, RANDOM_SAMPLER)
  random_keys = jax.vmap(lambda si, k: jax.random.fold_in(
      jax.random.fold_in(random_key, si), k))(
          jnp.asarray([p[0] for p in pools]), jnp.asarray([p[2] for p in pools]))

  def per_net(arrays, pick):  # every net's pools, stacked net-major
    return np.concatenate([pick(a) for a in arrays])

  found = {}
  for name in config.samplers:
    nb = 1 if name == 'random' else len(nets)
    args = dict(valid=np.tile(valid, (nb, 1)))
    if name == 'random':
      args['keys'] = random_keys
    if name in ('gsx', 'igs'):
      args['features'] = per_net(feats, lambda f: f[idx])
    if name in ('gsy', 'igs'):
      args['outputs'] = per_net(outputs, lambda o: o[idx])
    if name == 'mcdue':
      args['pred_samples'] = per_net(mc, lambda m: np.moveaxis(m[:, idx], 0, 1))
    order = samplers.select_batch(name, **args).reshape(nb, len(pools), -1)
    for b in range(len(nets)):
      for j, (_, s, k, p) in enumerate(pools):
        o = order[b % nb, j, :len(p)]
        assert (o >= 0).all() and len(set(o.tolist())) == len(p)
        found[(b, s, k, name)] = p[o]
  orders = {(b, s, k, name): found[(b, s, k, name)]
            for b in range(len(nets)) for s in subjects
            for name in config.samplers for k in range(config.folds)}
  if jax.process_count() > 1:
    # MC dropout / greedy sampling on another host's floats could break a tie
    # the other way: every process takes process 0's orders (same lengths).
    keys = list(orders)
    flat = distributed.from_lead(np.concatenate([orders[k] for k in keys])
                      .astype(np.int32)).astype(np.int64)
    ends = np.cumsum([len(orders[k]) for k in keys])
    orders = dict(zip(keys, np.split(flat, ends[:-1])))
  return orders


def build_plan(config, nets, data, folds, subjects, orders) -> Plan:
  plan = Plan()
  conds = tuple(config.conditions)
  for b in range(len(nets)):
    for s in subjects:
      rows = np.flatnonzero(data.subject == s)
      for k in range(config.folds):
        train, test = rows[folds[rows] != k], rows[folds[rows] == k]
        common = dict(kind='head', net=b, subject=int(s), fold=k, test=test)
        if 'transfer_100' in conds:
          plan.add(condition='transfer_100', sampler='', fraction=1.0,
                   train=train, **common)
        for name in config.samplers:
          for f in config.fractions:
            m = num_selected(f, len(train), s, k)
            plan.add(condition='sweep', sampler=name, fraction=float(f),
                     train=np.sort(orders[(b, s, k, name)][:m]), **common)
  if 'no_transfer' in conds:
    for b in range(len(nets)):
      for s in subjects:
        rows = np.flatnonzero(data.subject == s)
        for k in range(config.folds):
          plan.add(kind='full', net=b, subject=int(s), fold=k,
                   condition='no_transfer', sampler='', fraction=1.0,
                   train=rows[folds[rows] != k], test=rows[folds[rows] == k])
  return plan

