"""Personal models for facial emotion recognition (paper 000, sections 3-4).

    results = run_study(config, workdir)

1. Pre-train twin regressors (valence, arousal; or one joint 2-output net) on the
   AffectNet-like data with `train_and_evaluate`, in workdir/pretrain/<net>
   (resumable like any run).
2. Split each net into its frozen conv part and its trainable dense part (the
   model's 'features' / 'head'), extract every personal frame's features once and
   cache them in workdir/features/<net>.npz with a fingerprint of the backbone
   and the data; a cache of another backbone is refused, naming the file.
3. Per subject, k folds grouped by clip (`kfold.subject_folds`). Conditions:
   No Transfer (the whole net from random init on the subject's training fold),
   Transfer 0% (the pre-trained net as is), Transfer 100% (its dense part
   fine-tuned on the whole training fold); and the sweep: the dense part
   fine-tuned on a fraction of the training fold chosen by each sampler.
4. Every trained model of the study is a row of one plan; rows train in chunks
   of stacked models (`finetune.BatchedTrainer`: vmap over models, scan over
   steps), each chunk saved atomically under workdir/personal/, so a study that
   is stopped resumes with the models it has not finished.
5. RMSE per model, averaged over folds per subject, then mean and spread over
   subjects: results.csv, results.json, models.csv, and plots like the paper's
   Fig. 5 (conditions.png) and Fig. 6 (sweep.png).

Several processes (hosts, after `jax.distributed.initialize`, see
launch/personalize.py) run the same study together: pre-training is the
ordinary multi-process train loop; every process loads the personal data;
process 0 extracts the features and writes their cache, which the others then
read (the workdir must be a file system all hosts see, as for the pre-training
checkpoints); the selection orders and the finished models (read from the chunk
files on a resume) are process 0's, broadcast, so every process cuts the same
chunks. Each chunk's models are split over the devices of all processes (each
process builds only its devices' share), the results are all-gathered, and
only process 0 writes chunk files, results, plots and logs.

Choices the paper leaves open are config fields (fine-tuning epochs, which
pre-training checkpoint, fold grouping); see configs/personalization/.
"""
import copy
import csv
import dataclasses
import glob
import hashlib
import io
import json
import math
import os
import time
import zipfile
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from fer_jax.data import pipeline
from fer_jax.data.sources import get_source
from fer_jax.models import partition
from fer_jax.protocols import finetune as ft
from fer_jax.protocols import kfold
from fer_jax.protocols import samplers
from fer_jax.tasks import get_task
from fer_jax.train import checkpoint as ckpt_lib
from fer_jax.train import distributed
from fer_jax.train import loop
from fer_jax.train import optim
from fer_jax.train import workdir as workdir_lib

TARGETS = ('valence', 'arousal')  # columns of PersonalData.labels
CONDITIONS = ('no_transfer', 'transfer_0', 'transfer_100')
CONDITION_NAMES = {'no_transfer': 'No Transfer', 'transfer_0': 'Transfer 0%',
                   'transfer_100': 'Transfer 100%'}

# PRNG streams under the study key.
_MODELS, _RANDOM_SAMPLER, _MC_DROPOUT, _INIT = 1, 2, 3, 4
_DUMMY_ID = 2**31 - 1


class CacheMismatchError(workdir_lib.ConfigMismatchError):
  """A cached file was written for a different backbone or data."""


class StudyInterrupted(RuntimeError):
  """Raised by `run_study` when `max_chunks` stops it before the end."""


class StudyPreempted(distributed.Preempted):
  """Raised by `run_study` after a SIGTERM: the chunks trained so far are
  saved; the same command resumes with the rest."""

  def __init__(self, chunks: int, done: int, total: int):
    Exception.__init__(  # pylint: disable=non-parent-init-called
        self, f'Preempted: saved {chunks} chunk(s) of personal models ({done} '
        f'of {total} models done) and stopped. Run the same command again to '
        'resume.')
    self.step = chunks


# What reading a damaged .npz raises: a truncated or garbled zip (its CRC-32
# catches a flipped byte), a missing member, an empty or foreign file.
_DAMAGED = (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError,
            ValueError)


def _set_aside(path: str, what: str, problem: str) -> str:
  """Moves the damaged file `path` to `path`.damaged[.N] (kept for a look,
  never deleted) and says so in one warning line; returns the new name."""
  dest, n = f'{path}.damaged', 1
  while os.path.exists(dest):
    dest, n = f'{path}.damaged.{n}', n + 1
  os.replace(path, dest)
  problem = ' '.join(str(problem).split())
  logging.warning('%s is damaged (%s); moved it to %s and will %s.', path,
                  problem, dest, what)
  return dest


def _read_npz(path: str, keys: Sequence[str], what: str,
              check: Optional[Callable[[dict], Optional[str]]] = None):
  """{key: array} of the .npz at `path`, every member read in full (so zip's
  checksums are verified); None if it is damaged, after moving it aside
  (`_set_aside`, `what`: what the study does instead). check(arrays): a
  problem with the contents (str) or None."""
  try:
    with np.load(path) as z:
      arrays = {k: z[k] for k in keys}
    problem = check(arrays) if check is not None else None
  except _DAMAGED as e:
    problem = f'{type(e).__name__}: {e}'
  if problem is None:
    return arrays
  _set_aside(path, what, problem)
  return None


def _log(config, *args):
  if config.runtime.get('verbose', True) and jax.process_index() == 0:
    print(*args, flush=True)


def _lead() -> bool:
  """Whether this process writes the study's files (process 0)."""
  return jax.process_index() == 0


def _from_lead(tree):
  """Process 0's value of a tree of numpy arrays (the same shapes on every
  process), on every process; a collective: all must call it together."""
  if jax.process_count() == 1:
    return tree
  def enc(a):  # psum underneath: no bools
    a = np.asarray(a)
    return a.astype(np.int32) if a.dtype == bool else a
  out = multihost_utils.broadcast_one_to_all(jax.tree.map(enc, tree))
  return jax.tree.map(lambda o, a: np.asarray(o).astype(np.asarray(a).dtype),
                      out, tree)


def _barrier(name: str):
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


# --------------------------------------------------------------- pre-training


@dataclasses.dataclass
class Net:
  """One pre-trained regressor: its run config, flax module and numpy weights."""
  name: str                 # 'valence', 'arousal' or 'joint'
  targets: tuple
  config: ml_collections.ConfigDict
  model: Any
  variables: Dict[str, Any]

  @property
  def head(self):
    return self.variables['params']['head']


def net_specs(config) -> List[tuple]:
  """(name, targets) of the nets: twins, one per target, or one joint net."""
  targets = tuple(config.targets)
  unknown = [t for t in targets if t not in TARGETS]
  if unknown:
    raise ValueError(f'Unknown targets {unknown}; valid: {TARGETS}')
  if config.get('joint', False):
    return [('joint', targets)]
  return [(t, (t,)) for t in targets]


def pretrain_config(config, targets) -> ml_collections.ConfigDict:
  c = copy.deepcopy(config.pretrain)
  with c.unlocked():
    c.task.targets = tuple(targets)
  return c


def pretrain(config, workdir: str) -> List[Net]:
  """Trains (or resumes, or reuses) each net; returns them with their weights."""
  root = config.get('pretrain_dir') or os.path.join(workdir, 'pretrain')
  nets = []
  for name, targets in net_specs(config):
    cfg = pretrain_config(config, targets)
    wd = os.path.join(root, name)
    # Process 0's view: every process must take the same branch (all of them
    # train together).
    if _from_lead(np.asarray(os.path.exists(os.path.join(wd, 'results.json')))):
      loop.check_workdir_config(cfg, wd)  # a finished run of another config?
    else:
      _log(config, f'Pre-training {name} in {wd}')
      t = time.perf_counter()
      res = loop.train_and_evaluate(cfg, wd)
      _log(config, f'  {name}: val rmse {res.get("val/rmse_mean", float("nan")):.4f}'
           f' ({time.perf_counter() - t:.0f} s)')
    _, tree = ckpt_lib.load_numpy(wd, config.get('pretrain_checkpoint', 'best'))
    model = loop.build_model(cfg, get_task(**cfg.task))
    variables = {'params': tree['params']}
    if tree.get('batch_stats'):
      variables['batch_stats'] = tree['batch_stats']
    nets.append(Net(name, targets, cfg, model, variables))
  if any(n.model != nets[0].model for n in nets):
    raise ValueError('The nets differ in architecture; the batched fine-tuning '
                     'stacks their dense parts, so they must match.')
  return nets


# -------------------------------------------------------------- personal data


@dataclasses.dataclass
class PersonalData:
  """Every kept frame of the personal dataset, preprocessed as in pre-training."""
  images: np.ndarray    # [N, H, W, C] float32
  labels: np.ndarray    # [N, 2] valence, arousal
  subject: np.ndarray   # [N]
  clip: np.ndarray      # [N]
  frame: np.ndarray     # [N]


def load_personal_data(config) -> PersonalData:
  """Renders / reads the personal split, keeps annotated frames of the chosen
  subjects (every `frame_stride`-th frame), checks labels, preprocesses."""
  import grain  # pylint: disable=g-import-not-at-top
  pc = config.personal
  source = get_source(pc, pc.split)
  fields = ('image', 'valence', 'arousal', 'subject', 'clip', 'frame', 'has_va')

  def read(i):
    r = source[int(i)]
    return {k: np.asarray(r.get(k, -1 if k in ('clip', 'frame') else 0))
            for k in fields}

  stride, wanted = pc.get('frame_stride', 1), tuple(pc.get('subjects', ()))
  indices = np.arange(len(source))
  if hasattr(source, 'video_position') and source.video_position(0):
    # Known without rendering: skip the frames the study will not keep.
    pos = np.array([source.video_position(int(i)) for i in indices])
    keep_idx = np.ones(len(indices), bool)
    if wanted:
      keep_idx &= np.isin(pos[:, 0], wanted)
    if stride > 1:
      keep_idx &= pos[:, 2] % stride == 0
    indices = indices[keep_idx]
  ds = grain.MapDataset.source(indices).map(read).to_iter_dataset(
      grain.ReadOptions(num_threads=config.runtime.get('data_threads', 2),
                        prefetch_buffer_size=64))
  keep = []
  for r in ds:
    if not r['has_va'] or (wanted and int(r['subject']) not in wanted):
      continue
    if stride > 1 and int(r['frame']) % stride:
      continue
    keep.append(r)
  if not keep:
    raise workdir_lib.ConfigError(
        f'No annotated frames of subjects {wanted or "(all)"} in '
        f'{pc.name} {dict(pc.source)} split {pc.split!r}.')
  col = lambda k: np.stack([r[k] for r in keep])  # noqa: E731
  data = PersonalData(images=col('image'),
                      labels=np.stack([col('valence'), col('arousal')], -1)
                      .astype(np.float32),
                      subject=col('subject'), clip=col('clip'), frame=col('frame'))
  check_personal_data(data)
  pre = pipeline.preprocess_from_config(config.pretrain.data,
                                        name=f'{pc.name}/{pc.split}')
  # Labels are checked above, by subject; Preprocess sees the image only.
  data.images = np.stack([pre({'image': im})['image'] for im in data.images])
  return data


def check_personal_data(data: PersonalData):
  """Raises naming the subject (and frames) whose labels are not finite."""
  bad = ~np.isfinite(data.labels)
  if bad.any():
    for s in np.unique(data.subject[bad.any(1)]):
      rows = np.flatnonzero((data.subject == s) & bad.any(1))
      names = [TARGETS[j] for j in range(bad.shape[1]) if bad[rows, j].any()]
      where = ', '.join(f'clip {data.clip[r]} frame {data.frame[r]}'
                        for r in rows[:3])
      raise pipeline.BadRecordError(
          f'Subject {s}: {"/".join(names)} label is NaN or inf in {len(rows)} '
          f'frame(s) ({where}{", ..." if len(rows) > 3 else ""}); fix or drop '
          'them before the study.')


def study_subjects(config, data: PersonalData) -> np.ndarray:
  wanted = tuple(config.personal.get('subjects', ()))
  have = np.unique(data.subject)
  missing = [s for s in wanted if s not in have]
  if missing:
    raise workdir_lib.ConfigError(
        f'personal.subjects: {missing} have no annotated frames.')
  return np.asarray(wanted) if wanted else have


def make_folds(config, data: PersonalData, subjects) -> np.ndarray:
  """Fold id of every frame (-1 for frames of subjects outside the study)."""
  fold = np.full(len(data.subject), -1, np.int32)
  for s in subjects:
    rows = np.flatnonzero(data.subject == s)
    fold[rows] = kfold.subject_folds(data.clip[rows], config.folds, int(s),
                                     config.seed, config.get('fold_by', 'clip'),
                                     data.frame[rows])
  return fold


# ------------------------------------------------------------------- features


def _tree_digest(h, tree, prefix: str):
  for path, leaf in sorted(partition.flatten(tree).items()):
    leaf = np.ascontiguousarray(np.asarray(leaf))
    h.update(f'{prefix}/{"/".join(path)}:{leaf.dtype}:{leaf.shape}'.encode())
    h.update(leaf.tobytes())


def fingerprint(config, net: Net, num_frames: int) -> str:
  """sha256 of the backbone (architecture, weights) and of the frames fed to it."""
  h = hashlib.sha256()
  desc = {'model': net.config.model.to_dict(),
          'preprocess': net.config.data.to_dict(),
          'personal': config.personal.to_dict(), 'frames': num_frames}
  h.update(json.dumps(desc, sort_keys=True, default=str).encode())
  _tree_digest(h, net.variables['params'].get('features', {}), 'params')
  _tree_digest(h, net.variables.get('batch_stats', {}).get('features', {}),
               'batch_stats')
  return h.hexdigest()


def _savez_atomic(path: str, **arrays):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb') as f:
    np.savez(f, **arrays)
  os.replace(tmp, path)


def _batched_apply(fn, x: np.ndarray, batch: int, *args) -> np.ndarray:
  """fn(x[i:i+batch], *args) over fixed-size (padded) batches, concatenated."""
  out = []
  for i in range(0, len(x), batch):
    xb = x[i:i + batch]
    n = len(xb)
    if n < batch:
      xb = np.concatenate([xb, np.zeros((batch - n,) + xb.shape[1:], xb.dtype)])
    out.append(np.asarray(fn(xb, *args))[:n])
  return np.concatenate(out)


def extract_features(net: Net, images: np.ndarray, batch: int) -> np.ndarray:
  """The frozen conv part's output (the head's input) of every frame."""
  embed = jax.jit(lambda x: net.model.apply(net.variables, x, False,
                                            method='embed'))
  return _batched_apply(embed, images, batch).astype(np.float32)


def _checked_features(path: str, z: dict, fp: str) -> np.ndarray:
  old = str(z['fingerprint'])
  if old != fp:
    raise CacheMismatchError(
        f'{path} holds features of a different backbone or data '
        f'(fingerprint {old[:12]}, expected {fp[:12]}); delete it or use '
        'a new workdir to extract them again.')
  return z['features']


def _load_features(path: str, fp: str, wait_s: float = 0.) -> np.ndarray:
  """The cached features at `path`, refused unless written for `fp`. wait_s:
  how long to wait for a file another host has just written to show up (a
  shared file system may list it late)."""
  deadline = time.monotonic() + wait_s
  while True:
    try:
      z = np.load(path)
      break
    except FileNotFoundError:
      if time.monotonic() > deadline:
        raise
      time.sleep(0.5)
  with z:
    return _checked_features(path, {k: z[k] for k in ('fingerprint', 'features')},
                             fp)


def cached_features(config, workdir: str, net: Net, data: PersonalData):
  """workdir/features/<net>.npz, extracted once and checked on every load; a
  damaged file is moved aside (one warning line) and extracted again.

  With several processes, process 0 extracts and writes the file and the
  others read it, so all train on the same bits."""
  path = os.path.join(workdir, 'features', f'{net.name}.npz')
  fp = fingerprint(config, net, len(data.subject))
  z = None
  if _lead() and os.path.exists(path):
    z = _read_npz(path, ('fingerprint', 'features'), 'extract the features '
                  'again', check=lambda a: _features_problem(a, fp, data))
  if _from_lead(np.asarray(z is not None)):  # process 0's view
    return (_checked_features(path, z, fp) if _lead()
            else _load_features(path, fp, wait_s=60.))
  if _lead():
    t = time.perf_counter()
    feats = extract_features(net, data.images, config.runtime.feature_batch)
    _savez_atomic(path, features=feats, fingerprint=np.asarray(fp))
    _log(config, f'Features {net.name}: {feats.shape} in '
         f'{time.perf_counter() - t:.1f} s -> {path}')
  _barrier(f'features/{net.name}')
  return feats if _lead() else _load_features(path, fp, wait_s=60.)


def _features_problem(arrays: dict, fp: str, data: PersonalData
                      ) -> Optional[str]:
  """Why a readable cache of this backbone and data (`fp`) is unusable; a
  cache of another one is refused by `_checked_features` instead."""
  f = arrays['features']
  if str(arrays['fingerprint']) == fp and (f.ndim < 2 or
                                           len(f) != len(data.subject)):
    return f'features of shape {f.shape}, expected {len(data.subject)} rows'
  return None


def head_outputs(net: Net, features: np.ndarray, batch: int) -> np.ndarray:
  """f(x): the pre-trained net's outputs [N, P] (dropout off)."""
  apply = ft.head_apply(net.model)
  fn = jax.jit(lambda x: apply(net.head, {}, x, None, False)[0])
  return _batched_apply(fn, features, batch)


def mc_dropout_samples(net: Net, features: np.ndarray, key, passes: int,
                       rate: float, budget: int) -> np.ndarray:
  """[T, N, P] predictions of T dropout passes (rate `rate`) of the pre-trained
  head; each frame batch is ONE call vmapped over the T dropout keys."""
  model = net.model.clone(dropout=rate)
  apply = ft.head_apply(model)
  keys = jax.random.split(key, passes)
  fn = jax.jit(lambda x, ids: ft.mc_dropout_predict(apply, net.head, x, keys,
                                                    ids))
  act = ft.activation_elems(model, features.shape[1:], method='predict_head')
  per_frame = 4 * passes * (features.shape[1] + 2 * act)
  batch = int(max(1, min(len(features), budget // per_frame)))
  out = []
  for i in range(0, len(features), batch):
    x = features[i:i + batch]
    ids = np.arange(i, i + len(x))
    if len(x) < batch:  # one shape, one compile
      pad = batch - len(x)
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
      ids = np.concatenate([ids, np.zeros(pad, ids.dtype)])
    out.append(np.asarray(fn(x, ids))[:, :len(features[i:i + batch])])
  return np.concatenate(out, axis=1)


# ----------------------------------------------------------------------- plan


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
  fraction takes a prefix (the samplers are prefix-consistent)."""
  pools = {}
  for s in subjects:
    rows = np.flatnonzero(data.subject == s)
    pools[s] = [rows[folds[rows] != k] for k in range(config.folds)]
  n_pad = max(len(p) for ps in pools.values() for p in ps)
  orders = {}
  for b in range(len(nets)):
    for si, s in enumerate(subjects):
      idx = np.zeros((config.folds, n_pad), np.int64)
      valid = np.zeros((config.folds, n_pad), bool)
      for k, p in enumerate(pools[s]):
        idx[k, :len(p)], valid[k, :len(p)] = p, True
      for name in config.samplers:
        args = dict(valid=valid)
        if name == 'random':
          # The same frames get labelled for every net (the labels are shared).
          args['key'] = jax.random.fold_in(
              jax.random.fold_in(key, _RANDOM_SAMPLER), si)
        if name in ('gsx', 'igs'):
          args['features'] = feats[b][idx]
        if name in ('gsy', 'igs'):
          args['outputs'] = outputs[b][idx]
        if name == 'mcdue':
          args['pred_samples'] = np.moveaxis(mc[b][:, idx], 0, 1)
        order = samplers.select_batch(name, **args)
        for k, p in enumerate(pools[s]):
          o = order[k, :len(p)]
          assert (o >= 0).all() and len(set(o.tolist())) == len(p)
          orders[(b, s, k, name)] = idx[k][o]
  if jax.process_count() > 1:
    # MC dropout / greedy sampling on another host's floats could break a tie
    # the other way: every process takes process 0's orders (same lengths).
    keys = list(orders)
    flat = _from_lead(np.concatenate([orders[k] for k in keys])
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


# --------------------------------------------------------------------- chunks


def _make_tx(section):
  kw = dict(section.optim)
  name, lr = kw.pop('name'), kw.pop('learning_rate')
  return optim.OPTIMIZERS.get(name)(lr, **kw)


def _recipe(section, drop_remainder=False) -> ft.Recipe:
  return ft.Recipe(batch_size=section.batch_size, epochs=section.epochs,
                   drop_remainder=drop_remainder)


def _chunk_problem(z: dict) -> Optional[str]:
  n = len(z['ids'])
  if z['ids'].ndim != 1 or any(len(z[k]) != n for k in ('sse', 'count', 'loss')):
    return ('members of different lengths: ' +
            ', '.join(f'{k} {z[k].shape}' for k in ('ids', 'sse', 'count', 'loss')))
  return None


def _done_models(workdir: str) -> Dict[int, dict]:
  """Finished models from the chunk files: id -> {sse, count, loss}. A damaged
  chunk file is moved aside (one warning line): its models train again."""
  done = {}
  for path in sorted(glob.glob(os.path.join(workdir, 'personal', 'chunk-*.npz'))):
    z = _read_npz(path, ('ids', 'sse', 'count', 'loss'), 'train its models '
                  'again', check=_chunk_problem)
    if z is None:
      continue
    for i, sse, cnt, loss in zip(z['ids'], z['sse'], z['count'], z['loss']):
      done[int(i)] = dict(sse=sse, count=int(cnt), loss=float(loss))
  return done


def _agreed_done_models(workdir: str, plan: Plan, nets) -> Dict[int, dict]:
  """`_done_models` as process 0 reads them, on every process: all of them
  then skip the same models and cut the same chunks."""
  if jax.process_count() == 1:
    return _done_models(workdir)
  outputs = [len(nets[b].targets) for b in plan.net]
  p = max(outputs, default=1)
  has = np.zeros(len(plan), bool)
  sse = np.full((len(plan), p), np.nan, np.float32)
  count = np.zeros(len(plan), np.int32)
  loss = np.full(len(plan), np.nan, np.float32)
  if _lead():
    for i, r in _done_models(workdir).items():
      if 0 <= i < len(plan):
        has[i], count[i], loss[i] = True, r['count'], r['loss']
        sse[i, :len(r['sse'])] = r['sse']
  has, sse, count, loss = _from_lead((has, sse, count, loss))
  return {i: dict(sse=sse[i, :outputs[i]], count=int(count[i]),
                  loss=float(loss[i])) for i in np.flatnonzero(has).tolist()}


class _Runner:
  """Trains the plan's models of one kind in chunks; saves each chunk."""

  def __init__(self, config, workdir, kind, plan, nets, x, y, x_block: int,
               y_block: int):
    self.config, self.workdir, self.kind, self.plan = config, workdir, kind, plan
    self.nets = nets
    model = nets[0].model
    section = config.finetune if kind == 'head' else config.no_transfer
    has_bn = kind == 'full' and 'batch_stats' in jax.eval_shape(
        lambda: model.init({'params': jax.random.key(0)},
                           jnp.zeros((1,) + x.shape[1:])))
    self.recipe = _recipe(section, drop_remainder=has_bn)
    # bfloat16 dense parts: params, grads, momentum, features and compute in
    # bf16 halve the bytes every step moves (the loss and RMSE stay float32).
    self.dtype = jnp.dtype(section.get('dtype', 'float32'))
    if self.dtype != jnp.float32:
      if kind != 'head':
        raise ValueError('no_transfer.dtype must be float32; only the dense '
                         'parts (finetune.dtype) train in reduced precision.')
      model = model.clone(dtype=self.dtype)
      x = np.asarray(x).astype(self.dtype)
    apply = ft.head_apply(model) if kind == 'head' else ft.full_apply(model)
    rt = config.runtime
    # Several devices (of one process or of all, after jax.distributed): each
    # trains its share of a chunk's models (no communication); chunks are then
    # a multiple of the device count. (shard_models=False: every process
    # trains every model on its first device.)
    self.mesh = (ft.model_mesh() if jax.device_count() > 1
                 and rt.get('shard_models', True) else None)
    self.trainer = ft.BatchedTrainer(
        apply, _make_tx(section), self.recipe,
        rt.get(f'{kind}_segment_steps', rt.segment_steps),
        rt.get(f'{kind}_map_batch', 0), rt.get(f'{kind}_unroll', False),
        mesh=self.mesh)
    # Shared by all models: on every device, once.
    self.x, self.y = ft.replicate(self.mesh, x), ft.replicate(self.mesh, y)
    # Model i reads rows x[net_i * x_block + r] and y[net_i * y_block + r].
    self.x_block, self.y_block = x_block, y_block
    self.key = jax.random.fold_in(jax.random.key(config.seed), _MODELS)
    self.model = model
    self.sample_shape = x.shape[1:]
    self._heads = (ft.stack_trees([n.head for n in nets]) if kind == 'head'
                   else None)
    sample = jnp.zeros((1,) + self.sample_shape)
    self._init_fn = jax.vmap(lambda k: model.init(
        {'params': k, 'dropout': k}, sample, False))
    # Per-model keys from model ids, and whole nets from their keys: each
    # device makes its own models'.
    self._fresh = ft.per_device(self._init_fn, self.mesh, 'm', 'm')
    self._keys = ft.per_device(lambda ids: ft.model_keys(self.key, ids),
                               self.mesh, 'm', 'm')
    self._init_keys = ft.per_device(lambda ids: ft.model_keys(
        jax.random.fold_in(self.key, _INIT), ids), self.mesh, 'm', 'm')

  def init_params(self, nets_idx, ids):
    """Stacked initial params/extra of the models: the pre-trained dense part of
    their net (heads), or a fresh init from the model's key (whole nets), on
    the default device."""
    if self.kind == 'head':
      return jax.tree.map(jnp.asarray, self._head_params(nets_idx)), {}
    v = self._init_fn(ft.model_keys(jax.random.fold_in(self.key, _INIT), ids))
    return v['params'], v.get('batch_stats', {})

  def _head_params(self, nets_idx):
    """The stacked pre-trained heads of nets `nets_idx`, numpy, in self.dtype."""
    return jax.tree.map(lambda h: np.asarray(h[nets_idx]).astype(self.dtype),
                        self._heads)

  def per_model_bytes(self, n_pad, test_pad):
    one = lambda t: jax.tree.map(lambda a: a[0], t)  # noqa: E731
    params, extra = jax.eval_shape(lambda: one(self.init_params(
        np.zeros(1, int), np.zeros(1, int))))
    opt = jax.eval_shape(self.trainer.tx.init, params)
    if self.kind == 'head':
      act = ft.activation_elems(self.model, self.sample_shape,
                                method='predict_head')
    else:
      act = ft.activation_elems(self.model, self.sample_shape,
                                mutable=('batch_stats',))
    return ft.bytes_per_model(params, opt, extra, self.recipe.batch_size,
                              int(np.prod(self.sample_shape)), act, test_pad,
                              order_elems=self.recipe.epochs * n_pad)

  def run(self, ids_all: Sequence[int], done: dict, counter: dict,
          max_chunks: Optional[int], on_chunk: Optional[Callable],
          preemption: Optional[distributed.Preemption] = None):
    plan, rt = self.plan, self.config.runtime
    if not len(ids_all):
      return
    n_pad = max(len(plan.train[i]) for i in ids_all)
    test_pad = max(len(plan.test[i]) for i in ids_all)
    # Similar sizes share a chunk, so few steps are spent on finished models.
    todo = sorted((i for i in ids_all if i not in done),
                  key=lambda i: (-len(plan.train[i]), i))
    if not todo:
      return
    per_model = self.per_model_bytes(n_pad, test_pad)
    shared = ft.tree_bytes((self.x, self.y))  # replicated on every device
    # Per device, the same on every process; the chunk fills all of them.
    budget = ft.memory_budget(rt.memory_budget_mb * 2**20) - shared
    devices = self.mesh.size if self.mesh is not None else 1
    m = ft.chunk_size(per_model, max(budget, per_model) * devices, len(ids_all),
                      rt.get(f'{self.kind}_max_models_per_chunk', 0)
                      or rt.get('max_models_per_chunk', 0))
    m = -(-m // devices) * devices  # whole models per device
    # Chunks are cut from the sorted list of ALL the kind's models, so a resumed
    # study trains the same chunks as an uninterrupted one.
    order = sorted(ids_all, key=lambda i: (-len(plan.train[i]), i))
    chunks = [order[i:i + m] for i in range(0, len(order), m)]
    chunks = [[i for i in c if i not in done] for c in chunks]
    chunks = [c for c in chunks if c]
    _log(self.config, f'[{self.kind}] {len(todo)} of {len(ids_all)} models to '
         f'train, {len(chunks)} chunk(s) of <= {m} '
         f'(~{per_model / 2**20:.2f} MiB per model, budget '
         f'{(budget + shared) / 2**20:.0f} MiB)')
    for ci, ids in enumerate(chunks):
      if max_chunks is not None and counter['chunks'] >= max_chunks:
        raise StudyInterrupted(f'Stopped after {counter["chunks"]} chunk(s).')
      # Every process, before every chunk: the chunk count is the step of the
      # preemption sync point (all processes train the same chunks).
      if preemption is not None and preemption.reached(counter['chunks']):
        raise StudyPreempted(counter['chunks'], len(done), len(plan))
      t = time.perf_counter()
      res = self._train_chunk(ids, m, n_pad, test_pad)  # whole, everywhere
      path = os.path.join(self.workdir, 'personal',
                          f'chunk-{self.kind}-{ids[0]:07d}-{len(ids):05d}.npz')
      if _lead():
        _savez_atomic(path, ids=np.asarray(ids), **res)
      for j, i in enumerate(ids):
        done[i] = dict(sse=res['sse'][j], count=int(res['count'][j]),
                       loss=float(res['loss'][j]))
      counter['chunks'] += 1
      dt = time.perf_counter() - t
      steps = int(sum(self.recipe.total_steps(len(plan.train[i])) for i in ids))
      if len(chunks) <= 20 or (ci + 1) % (len(chunks) // 10) == 0:
        _log(self.config, f'[{self.kind}] chunk {ci + 1}/{len(chunks)}: '
             f'{len(ids)} models, {steps} model-steps in {dt:.1f} s '
             f'({steps / dt:.0f}/s)')
      if on_chunk is not None:
        on_chunk(dict(kind=self.kind, index=counter['chunks'], ids=list(ids),
                      seconds=dt, path=path))

  def _train_chunk(self, ids, m, n_pad, test_pad):
    """Trains the models `ids` as one chunk of m slots (dummies after them);
    every device gets only its own slots' inputs and starting params."""
    plan, n_real = self.plan, len(ids)
    ids_pad = ft.pad_models(np.asarray(ids), m, _DUMMY_ID)

    def build(slots):  # the chunk's per-model inputs (numpy), for `slots` only
      k = len(slots)
      rows = np.zeros((k, n_pad), np.int32)
      n = np.zeros(k, np.int32)
      test = np.zeros((k, test_pad), np.int32)
      valid = np.zeros((k, test_pad), bool)
      net = np.zeros(k, np.int32)
      for j, s in enumerate(slots):
        if s >= n_real:
          continue  # a dummy: never steps, net 0, empty test set
        i = ids[s]
        tr, te = plan.train[i], plan.test[i]
        rows[j, :len(tr)], n[j] = tr, len(tr)
        test[j, :len(te)], valid[j, :len(te)] = te, True
        net[j] = plan.net[i]
      out = dict(rows=rows, n=n, test=test, valid=valid,
                 x_off=net * np.int32(self.x_block),
                 y_off=net * np.int32(self.y_block),
                 ids=ids_pad[slots].astype(np.int32))
      if self.kind == 'head':
        out['params'] = self._head_params(net)
      return out

    a = ft.stack_on_mesh(self.mesh, m, build)
    if self.kind == 'head':
      params, extra = a['params'], {}
    else:
      v = self._fresh(self._init_keys(a['ids']))
      params, extra = v['params'], v.get('batch_stats', {})
    state = self.trainer.init(params, extra)
    sub = ft.Subsets(a['rows'], a['n'], a['x_off'], a['y_off'],
                     self._keys(a['ids']))
    state, loss = self.trainer.train(state, self.x, self.y, sub)
    sse, cnt, _ = self.trainer.evaluate(state, self.x, self.y, a['test'],
                                        a['valid'], a['x_off'], a['y_off'])
    return dict(sse=sse[:n_real], count=cnt[:n_real], loss=loss[:n_real])


# -------------------------------------------------------------------- results


def _rmse(sse, count):
  return float(np.sqrt(sse / max(count, 1)))


def model_rows(plan: Plan, done: dict, nets, transfer0: List[dict]) -> List[dict]:
  """One row per (model, target): RMSE on its test fold."""
  rows = list(transfer0)
  for i in range(len(plan)):
    r = done[i]
    for p, target in enumerate(nets[plan.net[i]].targets):
      rows.append(dict(target=target, condition=plan.condition[i],
                       sampler=plan.sampler[i], fraction=plan.fraction[i],
                       subject=plan.subject[i], fold=plan.fold[i],
                       n_train=len(plan.train[i]), n_test=len(plan.test[i]),
                       rmse=_rmse(r['sse'][p], r['count']),
                       final_loss=r['loss'], model_id=i))
  return rows


def transfer0_rows(nets, outputs, data, folds, subjects, num_folds) -> List[dict]:
  rows = []
  for b, net in enumerate(nets):
    cols = [TARGETS.index(t) for t in net.targets]
    for s in subjects:
      for k in range(num_folds):
        te = np.flatnonzero((data.subject == s) & (folds == k))
        err = np.square(outputs[b][te] - data.labels[te][:, cols])
        for p, target in enumerate(net.targets):
          rows.append(dict(target=target, condition='transfer_0', sampler='',
                           fraction=0.0, subject=int(s), fold=k, n_train=0,
                           n_test=len(te), rmse=float(np.sqrt(err[:, p].mean())),
                           final_loss=float('nan'), model_id=-1))
  return rows


def summarize(rows: List[dict]) -> List[dict]:
  """RMSE mean over folds per subject, then mean / std / min / max over subjects."""
  groups: Dict[tuple, Dict[int, list]] = {}
  for r in rows:
    g = (r['target'], r['condition'], r['sampler'], r['fraction'])
    groups.setdefault(g, {}).setdefault(r['subject'], []).append(r)
  out = []
  for (target, cond, sampler, fraction), by_subject in groups.items():
    per = np.array([np.mean([r['rmse'] for r in rs]) for rs in by_subject.values()])
    n_train = np.mean([r['n_train'] for rs in by_subject.values() for r in rs])
    out.append(dict(target=target, condition=cond, sampler=sampler,
                    fraction=fraction, n_train=float(n_train),
                    rmse_mean=float(per.mean()), rmse_std=float(per.std()),
                    rmse_min=float(per.min()), rmse_max=float(per.max()),
                    subjects=len(per)))
  key = lambda r: (TARGETS.index(r['target']),  # noqa: E731
                   (CONDITIONS + ('sweep',)).index(r['condition']),
                   r['sampler'], r['fraction'])
  return sorted(out, key=key)


def conditions_table(summary: List[dict]) -> str:
  """The three conditions per target, as printed at the end of a study."""
  lines = [f'{"RMSE (mean ± std over subjects)":34s}' +
           ''.join(f'{CONDITION_NAMES[c]:>18s}' for c in CONDITIONS)]
  for t in TARGETS:
    cells = {r['condition']: r for r in summary
             if r['target'] == t and r['condition'] in CONDITIONS}
    if not cells:
      continue
    lines.append(f'{t:34s}' + ''.join(
        f'{cells[c]["rmse_mean"]:>11.4f} ± {cells[c]["rmse_std"]:.3f}'
        if c in cells else f'{"-":>18s}' for c in CONDITIONS))
  return '\n'.join(lines)


def _write_csv(path, rows, columns):
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=columns, extrasaction='ignore')
  w.writeheader()
  w.writerows(rows)
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(buf.getvalue())
  os.replace(tmp, path)


def write_results(workdir, config, summary, rows):
  cols = ['target', 'condition', 'sampler', 'fraction', 'n_train', 'rmse_mean',
          'rmse_std', 'rmse_min', 'rmse_max', 'subjects']
  _write_csv(os.path.join(workdir, 'results.csv'), summary, cols)
  _write_csv(os.path.join(workdir, 'models.csv'), rows,
             ['target', 'condition', 'sampler', 'fraction', 'subject', 'fold',
              'n_train', 'n_test', 'rmse', 'final_loss', 'model_id'])
  conds = {t: {c: {k: r[k] for k in ('rmse_mean', 'rmse_std')}
               for r in summary if r['target'] == t
               for c in [r['condition']] if c in CONDITIONS}
           for t in TARGETS}
  doc = {'conditions': {t: v for t, v in conds.items() if v}, 'rows': summary,
         'config': json.loads(config.to_json_best_effort())}
  tmp = os.path.join(workdir, f'results.json.tmp{os.getpid()}')
  with open(tmp, 'w') as f:
    json.dump(doc, f, indent=1)
  os.replace(tmp, os.path.join(workdir, 'results.json'))


def plot_conditions(summary, path):
  """Fig. 5: RMSE of the three conditions per target (bars, std as error)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  targets = [t for t in TARGETS if any(r['target'] == t for r in summary)]
  fig, ax = plt.subplots(figsize=(6, 4))
  width = 0.8 / len(CONDITIONS)
  for j, c in enumerate(CONDITIONS):
    vals = [[r for r in summary if r['target'] == t and r['condition'] == c]
            for t in targets]
    xs = [i + (j - 1) * width for i, v in enumerate(vals) if v]
    if xs:
      ax.bar(xs, [v[0]['rmse_mean'] for v in vals if v], width,
             yerr=[v[0]['rmse_std'] for v in vals if v], capsize=3,
             label=CONDITION_NAMES[c])
  ax.set_xticks(range(len(targets)), targets)
  ax.set_ylabel('RMSE (mean over subjects)')
  ax.set_title('Transfer-learning conditions')
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_sweep(summary, path):
  """Fig. 6: RMSE vs training-set size per sampler; dashed: Transfer 100%."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  targets = [t for t in TARGETS if any(r['target'] == t for r in summary)]
  fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 4),
                           squeeze=False)
  for ax, t in zip(axes[0], targets):
    sweep = [r for r in summary if r['target'] == t and r['condition'] == 'sweep']
    for s in sorted({r['sampler'] for r in sweep}):
      rs = sorted((r for r in sweep if r['sampler'] == s),
                  key=lambda r: r['fraction'])
      ax.plot([100 * r['fraction'] for r in rs], [r['rmse_mean'] for r in rs],
              marker='o', ms=3, label=s)
    full = [r for r in summary if r['target'] == t
            and r['condition'] == 'transfer_100']
    if full:
      ax.axhline(full[0]['rmse_mean'], ls='--', color='k', label='Transfer 100%')
    ax.set_xlabel('training set size (% of the training fold)')
    ax.set_ylabel('RMSE (mean over subjects)')
    ax.set_title(t)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


# ---------------------------------------------------------------------- study


FOLD_BY = ('clip', 'frames')   # kfold.subject_folds
DTYPES = ('float32', 'bfloat16')


def source_subjects(source) -> Optional[set]:
  """The subjects of a personal source's annotated records, found without
  reading an image (synthetic video, or a real dataset's parsed entries);
  None when that is not possible (then they are checked after loading)."""
  if hasattr(source, 'video_position') and source.video_position(0):
    return {int(source.video_position(i)[0]) for i in range(len(source))}
  entries = getattr(source, 'entries', None)
  if entries is not None:
    return {int(e['subject']) for e in entries
            if e.get('has_va') and 'subject' in e}
  return None


def check_study_config(config, workdir: str):
  """Raises workdir.ConfigError listing every name of the study that does not
  exist (targets, conditions, samplers, fractions, folds, the fine-tuning
  optimisers, the pre-training configs, the personal dataset, split and
  subjects), before anything is pre-trained or written."""
  problems = []

  def among(field, values, valid):
    bad = [v for v in values if v not in valid]
    if bad:
      problems.append(f'{field}: unknown {", ".join(map(repr, bad))}; valid: '
                      f'{", ".join(valid)}')

  among('targets', tuple(config.targets), TARGETS)
  among('conditions', tuple(config.conditions), CONDITIONS)
  among('samplers', tuple(config.samplers), samplers.SAMPLERS.names())
  among('fold_by', (config.get('fold_by', 'clip'),), FOLD_BY)
  among('pretrain_checkpoint', (config.get('pretrain_checkpoint', 'best'),),
        ('best', 'latest'))
  bad = [f for f in config.fractions if not 0 < f <= 1]
  if bad:
    problems.append(f'fractions: {bad} not in (0, 1]')
  if not isinstance(config.folds, int) or config.folds < 2:
    problems.append(f'folds: {config.folds!r}, must be an integer >= 2')
  for section in ('finetune', 'no_transfer'):
    sec = config[section]
    kw = dict(sec.optim)
    name = kw.pop('name', None)
    kw.pop('learning_rate', None)
    if name not in optim.OPTIMIZERS:
      problems.append(f'{section}.optim.name: unknown optimizer {name!r}; '
                      f'valid: {", ".join(optim.OPTIMIZERS.names())}')
    else:
      try:
        workdir_lib._bind(optim.OPTIMIZERS.get(name),  # pylint: disable=protected-access
                          f'{section}.optim ({name})', 0.1, **kw)
      except workdir_lib.ConfigError as e:
        problems.append(str(e))
    for k in ('batch_size', 'epochs'):
      if not isinstance(sec[k], int) or sec[k] < 1:
        problems.append(f'{section}.{k}: {sec[k]!r}, must be an integer >= 1')
    dtypes = DTYPES if section == 'finetune' else ('float32',)
    among(f'{section}.dtype', (sec.get('dtype', 'float32'),), dtypes)
  if all(t in TARGETS for t in config.targets):
    root = config.get('pretrain_dir') or os.path.join(workdir, 'pretrain')
    for name, targets in net_specs(config):
      fresh = not os.path.exists(os.path.join(root, name, 'results.json'))
      try:
        workdir_lib.validate_config(pretrain_config(config, targets),
                                    check_files=fresh)
      except workdir_lib.ConfigError as e:
        problems.append(f'pretrain ({name}): {str(e).removeprefix("config: ")}')
        break
  pc = config.personal
  stride = pc.get('frame_stride', 1)
  if not isinstance(stride, int) or stride < 1:
    problems.append(f'personal.frame_stride: {stride!r}, must be an integer >= 1')
  where = f'personal ({pc.get("name")} {dict(pc.get("source", {}))} split ' \
          f'{pc.get("split")!r})'
  try:
    source = get_source(pc, pc.split)
  except (KeyError, ValueError, TypeError) as e:
    problems.append(f'{where}: {workdir_lib._message(e)}')  # pylint: disable=protected-access
    source = None
  have = source_subjects(source) if source is not None else None
  wanted = [int(s) for s in pc.get('subjects', ())]
  if have is not None:
    missing = [s for s in wanted if s not in have]
    if missing or not have:
      problems.append(
          f'personal.subjects: {missing or "none"} not in {where}, which has '
          f'annotated subjects {_ranges(sorted(have)) or "none"}')
  if problems:
    raise workdir_lib.ConfigError('config: ' + '; '.join(problems))


def _ranges(values: Sequence[int]) -> str:
  """'0-9, 12' for [0, 1, ..., 9, 12]."""
  out, start = [], None
  for i, v in enumerate(values):
    if start is None:
      start = v
    if i + 1 == len(values) or values[i + 1] != v + 1:
      out.append(str(start) if start == v else f'{start}-{v}')
      start = None
  return ', '.join(out)


def _study_config_for_check(config):
  """The config minus runtime knobs, which do not change results."""
  c = copy.deepcopy(config)
  with c.unlocked():
    del c['runtime']
  return c


def run_study(config: ml_collections.ConfigDict, workdir: str, *,
              max_chunks: Optional[int] = None,
              on_chunk: Optional[Callable[[dict], None]] = None) -> dict:
  """Runs (or resumes) the whole personalization study of `config` in `workdir`.

  Every name the study looks up is checked first (`check_study_config`), so a
  typo is one error before hours of pre-training. On SIGTERM the study stops
  with `distributed.Preempted` (pre-training: at an agreed step, saved; later:
  before its next chunk, the chunks trained so far saved); running again
  resumes. A damaged chunk or feature file is moved aside with a warning and
  its models trained (its features extracted) again.

  max_chunks: stop (raise StudyInterrupted) once this call has trained that many
    chunks; on_chunk(info) runs after each saved chunk (it may raise). Both
    simulate interruptions; running again resumes.

  Returns:
    {'summary': rows of results.csv, 'models': per-model rows, 'table': str}.
  """
  check_study_config(config, workdir)  # hours before pre-training ends
  os.makedirs(workdir, exist_ok=True)
  loop.check_workdir_config(_study_config_for_check(config), workdir)  # 0 writes
  # SIGTERM: pre-training saves and stops by itself (train_and_evaluate);
  # later, the study stops before its next chunk (`_Runner.run`).
  with distributed.Preemption() as preemption:
    return _run_study(config, workdir, preemption, max_chunks, on_chunk)


def _run_study(config, workdir, preemption, max_chunks, on_chunk) -> dict:
  t0 = time.perf_counter()
  nets = pretrain(config, workdir)
  data = load_personal_data(config)
  subjects = study_subjects(config, data)
  folds = make_folds(config, data, subjects)
  rt = config.runtime
  budget = ft.memory_budget(rt.memory_budget_mb * 2**20)
  key = jax.random.key(config.seed)
  feats = [cached_features(config, workdir, n, data) for n in nets]
  outputs = [head_outputs(n, f, rt.feature_batch) for n, f in zip(nets, feats)]
  mc = [None] * len(nets)
  if 'mcdue' in config.samplers:
    mc = [mc_dropout_samples(n, f, jax.random.fold_in(
        jax.random.fold_in(key, _MC_DROPOUT), b), config.mcdue.passes,
                             config.mcdue.rate, budget)
          for b, (n, f) in enumerate(zip(nets, feats))]
  orders = selection_orders(config, nets, feats, outputs, mc, data, folds,
                            subjects, key)
  plan = build_plan(config, nets, data, folds, subjects, orders)
  _log(config, f'{len(subjects)} subjects x {config.folds} folds, '
       f'{len(data.subject)} frames; {len(plan)} models to train '
       f'({time.perf_counter() - t0:.0f} s so far)')

  # Twin nets: their feature / label blocks are stacked, model i reads block
  # plan.net[i]. A joint net has one block with both targets.
  n = len(data.subject)
  cols = [[TARGETS.index(t) for t in net.targets] for net in nets]
  y = np.concatenate([data.labels[:, c] for c in cols])
  done = _agreed_done_models(workdir, plan, nets)
  counter = {'chunks': 0}
  heads = [i for i in range(len(plan)) if plan.kind[i] == 'head']
  fulls = [i for i in range(len(plan)) if plan.kind[i] == 'full']
  _Runner(config, workdir, 'head', plan, nets, np.concatenate(feats), y,
          x_block=n, y_block=n).run(heads, done, counter, max_chunks, on_chunk,
                                    preemption)
  _Runner(config, workdir, 'full', plan, nets, data.images, y,
          x_block=0, y_block=n).run(fulls, done, counter, max_chunks, on_chunk,
                                    preemption)

  t0_rows = (transfer0_rows(nets, outputs, data, folds, subjects, config.folds)
             if 'transfer_0' in config.conditions else [])
  rows = model_rows(plan, done, nets, t0_rows)
  bad = [r for r in rows if not np.isfinite(r['rmse'])]
  if bad:  # kept (a diverged model is a result), but said out loud
    _log(config, f'WARNING: {len(bad)} model(s) diverged (RMSE not finite), '
         f'e.g. {bad[0]}')
  summary = summarize(rows)
  if _lead():
    write_results(workdir, config, summary, rows)
    plot_conditions(summary, os.path.join(workdir, 'conditions.png'))
    if any(r['condition'] == 'sweep' for r in summary):
      plot_sweep(summary, os.path.join(workdir, 'sweep.png'))
  table = conditions_table(summary)
  _log(config, f'\n{table}\n\nResults in {workdir} '
       f'({time.perf_counter() - t0:.0f} s)')
  return {'summary': summary, 'models': rows, 'table': table}
