"""The frozen conv part's outputs, extracted once per net and cached, and the
pre-trained dense part's outputs on them (plain, and MC dropout passes).

workdir/features/<net>.npz holds the features of every personal frame with a
fingerprint of the backbone (architecture, weights) and of the frames; a cache
of another backbone is refused, naming the file. With several processes,
process 0 extracts and writes it, and the others read it.
"""
import functools
import hashlib
import json
import os
import time
from typing import Optional

import jax
import numpy as np

from fer_jax import atomic
from fer_jax.models import partition
from fer_jax.protocols.personal import files
from fer_jax.protocols.personal.data import PersonalData, float_images
from fer_jax.protocols.personal.pretrain import Net
from fer_jax.train import batched
from fer_jax.train import distributed
from fer_jax.train import memory
from fer_jax.train import workdir as workdir_lib


class CacheMismatchError(workdir_lib.ConfigMismatchError):
  """A cached file was written for a different backbone or data."""


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


class _Static:
  """A flax module as a jit static argument: equal modules (the same
  architecture, whatever the weights) share one compiled function. Hashed by
  its repr, as config fields may be lists."""

  def __init__(self, module):
    self.module, self._hash = module, hash(repr(module))

  def __hash__(self):
    return self._hash

  def __eq__(self, other):
    return isinstance(other, _Static) and self.module == other.module


# Weights are arguments, not constants baked into the program: one compile per
# architecture and shape, not one per net.
@functools.partial(jax.jit, static_argnums=0)
def _embed(model: _Static, variables, x):
  return model.module.apply(variables, x, False, method='embed')


@functools.partial(jax.jit, static_argnums=0)
def _head(model: _Static, head, x):
  return batched.head_apply(model.module)(head, {}, x, None, False)[0]


@functools.partial(jax.jit, static_argnums=0)
def _mc_passes(model: _Static, head, x, keys, ids):
  return batched.mc_dropout_predict(model.module, {'params': {'head': head}},
                                    x, keys, ids, method='predict_head')


def _batched_apply(fn, x: np.ndarray, batch: int) -> np.ndarray:
  """fn(x[i:i+batch]) over fixed-size (padded) batches, concatenated. The
  outputs stay on the device until the end (one fetch, no sync per batch), so
  the host prepares the next batch while the device computes."""
  out = []
  for i in range(0, len(x), batch):
    xb = x[i:i + batch]
    n = len(xb)
    if n < batch:
      xb = np.concatenate([xb, np.zeros((batch - n,) + xb.shape[1:], xb.dtype)])
    out.append(fn(xb)[:n])
  return np.concatenate(jax.device_get(out))


def extract_features(net: Net, images: np.ndarray, batch: int,
                     lookup: Optional[np.ndarray] = None) -> np.ndarray:
  """The frozen conv part's output (the head's input) of every frame; uint8
  images with their `lookup` (PersonalData) are looked up batch by batch."""
  model, variables = _Static(net.model), jax.device_put(net.variables)
  return _batched_apply(
      lambda x: _embed(model, variables, float_images(x, lookup)), images,
      batch).astype(np.float32)


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
  lead = distributed.is_lead()
  z = None
  if lead and os.path.exists(path):
    z = files.read_npz(path, ('fingerprint', 'features'),
                       'extract the features again',
                       check=lambda a: _features_problem(a, fp, data))
  if distributed.from_lead(np.asarray(z is not None)):  # process 0's view
    return (_checked_features(path, z, fp) if lead
            else _load_features(path, fp, wait_s=60.))
  if lead:
    t = time.perf_counter()
    feats = extract_features(net, data.images, config.runtime.feature_batch,
                             data.lookup)
    atomic.savez(path, features=feats, fingerprint=np.asarray(fp))
    files.log(config, f'Features {net.name}: {feats.shape} in '
              f'{time.perf_counter() - t:.1f} s -> {path}')
  distributed.barrier(f'features/{net.name}')
  return feats if lead else _load_features(path, fp, wait_s=60.)


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
  model, head = _Static(net.model), jax.device_put(net.head)
  return _batched_apply(lambda x: _head(model, head, x), features, batch)


def mc_dropout_samples(net: Net, features: np.ndarray, key, passes: int,
                       rate: float, budget: int) -> np.ndarray:
  """[T, N, P] predictions of T dropout passes (rate `rate`) of the pre-trained
  head; each frame batch is ONE call vmapped over the T dropout keys."""
  model = net.model.clone(dropout=rate)
  static, head = _Static(model), jax.device_put(net.head)
  keys = jax.random.split(key, passes)
  act = memory.activation_elems(model, features.shape[1:],
                                method='predict_head')
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
    out.append(np.asarray(_mc_passes(static, head, x, keys, ids))
               [:, :len(features[i:i + batch])])
  return np.concatenate(out, axis=1)
