"""Pool-based samplers that pick which personal samples to label (paper 000).

Rescigno et al. (2020), section 3.4 and Tables 2-4, sweep the size of each
subject's personal training set and choose WHICH pool samples get labelled with:

  * 'random': a uniformly random order of the pool.
  * 'gsx':    greedy sampling on the features (passive).
  * 'gsy':    reduced greedy sampling on the outputs f(x) of the fixed
              pre-trained model (all K chosen with f() fixed, no update between).
  * 'igs':    reduced improved GS: maximise over candidates the min over the
              labelled set of (feature distance x output distance).
  * 'mcdue':  the K samples with the largest std over T dropout passes
              (T=50, p=0.5 in the paper), in descending order of std.

Greedy steps (Tables 2-3): start with the pool element closest to the centroid
(GSx: of the features; GSy and iGS: the element whose f(x) is closest to the
centroid of f(U)), then repeatedly move to the labelled set the candidate whose
min distance to the labelled set is largest. Distances are Euclidean. We keep a
running min-distance vector and update it from the newly selected row only, so a
step costs O(N D), not a recomputation of all pairs. Internally we compare
squared distances: sqrt is monotone and sqrt(a) * sqrt(b) = sqrt(a b), so every
argmin / argmax (iGS included) picks the same element.

Conventions:
  * Tie-breaking: argmax / argmin take the first (lowest) index, as numpy does;
    MCDUE sorts descending with a stable sort, so equal stds keep index order.
  * Prefix consistency: the greedy rules, MCDUE and random never look at k
    except to stop, so `sampler(..., k=K)[:k] == sampler(..., k=k)` for k <= K.
    Select once with the largest K (or k=None in `select`: the whole pool) and
    slice a prefix for every training-set fraction.
  * `valid` [N] bool marks real pool entries, so pools of different sizes can be
    padded to one N and vmapped (e.g. subjects x folds). Padded entries are never
    selected, never enter a centroid, and may hold garbage (NaN included). Their
    contents do not change the selection: a padded pool gives the same indices as
    the unpadded one. Where k exceeds the number of valid entries, the jitted
    samplers fill the tail of the order with -1.
  * float32 by default (float64 inputs stay float64 when x64 is enabled).

The jitted functions (`gsx`, `gsy`, `igs`, `random_order`, `mcdue`) take a
static k and are vmappable. `SAMPLERS` maps each name to one uniform signature
    fn(*, k, key=None, features=None, outputs=None, pred_samples=None,
       valid=None) -> int32 [k]
and `select` / `select_batch` are the checked, non-jitted entry points.
"""
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.registry import Registry

Array = Any  # np.ndarray or jax.Array.

SAMPLERS = Registry('sampler')


def _float2d(x: Array) -> jax.Array:
  """A float [N, D] array; a 1-D [N] input (one output unit) becomes [N, 1]."""
  x = jnp.asarray(x)
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  return x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)


def _valid(valid: Optional[Array], n: int) -> jax.Array:
  if valid is None:
    return jnp.ones((n,), bool)
  return jnp.asarray(valid).astype(bool)


def _check_k(k: int, n: int):
  if not 0 <= k <= n:
    raise ValueError(f'k={k} must be in [0, {n}] (pool of {n} entries).')


def _sqdist_to(x: jax.Array, i) -> jax.Array:
  """Squared distances [N] from every row of x to row i, by exact differences.

  The expansion |a|^2 + |b|^2 - 2ab cancels badly for near points in float32;
  one exact row per step is cheap and keeps the greedy choices reproducible.
  """
  return jnp.sum(jnp.square(x - x[i]), axis=-1)


def _closest_to_centroid(z: jax.Array, valid: jax.Array) -> jax.Array:
  """Index of the valid row of z closest to the centroid of the valid rows."""
  w = valid.astype(z.dtype)[:, None]
  centroid = jnp.sum(z * w, axis=0) / jnp.maximum(jnp.sum(w), 1.)
  d = jnp.sum(jnp.square(z - centroid), axis=-1)
  i = jnp.argmin(jnp.where(valid, d, jnp.inf))
  return jnp.where(jnp.any(valid), i, -1).astype(jnp.int32)


def _greedy(x: Optional[jax.Array], y: Optional[jax.Array], init: jax.Array,
            valid: jax.Array, k: int) -> jax.Array:
  """Greedy max-min selection over squared distances in x, y or x and y.

  With both x and y the score of a candidate is min over the labelled set of
  dx^2 * dy^2 (iGS); with one of them it is the min of that squared distance.
  `score[n] = -inf` marks entries that cannot be chosen (padded or selected).
  """
  def row(i):
    r = 1.
    if x is not None:
      r = r * _sqdist_to(x, i)
    if y is not None:
      r = r * _sqdist_to(y, i)
    return r

  neg = jnp.array(-jnp.inf, (x if x is not None else y).dtype)
  score = jnp.where(valid, row(init), neg)
  score = jnp.where(init >= 0, score.at[init].set(neg), score)
  order = jnp.full((k,), -1, jnp.int32)
  if k == 0:
    return order
  order = order.at[0].set(init)

  def step(t, carry):
    score, order = carry
    best = jnp.argmax(score).astype(jnp.int32)  # First index among ties.
    ok = score[best] > neg  # False once every valid entry is labelled.
    new = jnp.minimum(score, row(best)).at[best].set(neg)
    score = jnp.where(ok, new, score)
    return score, order.at[t].set(jnp.where(ok, best, -1))

  _, order = jax.lax.fori_loop(1, k, step, (score, order))
  return order


@functools.partial(jax.jit, static_argnames='k')
def gsx(features: Array, k: int, valid: Optional[Array] = None) -> jax.Array:
  """GSx (Table 2): greedy max-min selection in feature space.

  Args:
    features: [N, D] (or [N]) features of the unlabelled pool.
    k: how many to select (static).
    valid: optional [N] bool, False for padding.

  Returns:
    int32 [k], pool indices in selection order; -1 past the valid entries.
  """
  x = _float2d(features)
  _check_k(k, x.shape[0])
  valid = _valid(valid, x.shape[0])
  x = jnp.where(valid[:, None], x, 0.)  # Padding may hold NaN.
  return _greedy(x, None, _closest_to_centroid(x, valid), valid, k)


@functools.partial(jax.jit, static_argnames='k')
def gsy(outputs: Array, k: int, valid: Optional[Array] = None) -> jax.Array:
  """Reduced GSy (Table 2): greedy max-min selection on fixed-model outputs.

  Args:
    outputs: [N, P] (or [N]) outputs f(x) of the pre-trained model on the pool.
    k: how many to select (static).
    valid: optional [N] bool, False for padding.

  Returns:
    int32 [k], pool indices in selection order; -1 past the valid entries.
  """
  y = _float2d(outputs)
  _check_k(k, y.shape[0])
  valid = _valid(valid, y.shape[0])
  y = jnp.where(valid[:, None], y, 0.)
  return _greedy(None, y, _closest_to_centroid(y, valid), valid, k)


@functools.partial(jax.jit, static_argnames='k')
def igs(features: Array, outputs: Array, k: int,
        valid: Optional[Array] = None) -> jax.Array:
  """Reduced iGS (Table 3): max over candidates of min_m Dx[n, m] * Dy[n, m].

  Starts, like GSy, from the element whose f(x) is closest to the centroid of
  f(U).

  Args:
    features: [N, D] (or [N]) features of the pool.
    outputs: [N, P] (or [N]) outputs f(x) of the pre-trained model.
    k: how many to select (static).
    valid: optional [N] bool, False for padding.

  Returns:
    int32 [k], pool indices in selection order; -1 past the valid entries.
  """
  x, y = _float2d(features), _float2d(outputs)
  if x.shape[0] != y.shape[0]:
    raise ValueError(f'features {x.shape} and outputs {y.shape} differ in N.')
  _check_k(k, x.shape[0])
  valid = _valid(valid, x.shape[0])
  x = jnp.where(valid[:, None], x, 0.)
  y = jnp.where(valid[:, None], y, 0.)
  return _greedy(x, y, _closest_to_centroid(y, valid), valid, k)


def _first_k(order: jax.Array, valid: jax.Array, k: int) -> jax.Array:
  """The first k entries of a full order that lists valid entries first."""
  order = order[:k].astype(jnp.int32)
  return jnp.where(jnp.arange(k) < jnp.sum(valid), order, -1)


@functools.partial(jax.jit, static_argnames=('n', 'k'))
def random_order(key: jax.Array, n: int, k: int,
                 valid: Optional[Array] = None) -> jax.Array:
  """A uniformly random order of the valid pool entries, first k of it.

  Entry i gets 32 random bits from fold_in(key, i), so the order of the real
  entries does not depend on how much padding follows them (a padded pool gives
  the same order as the unpadded one). Equal bits keep index order.

  Args:
    key: a PRNG key.
    n: pool size, including padding (static).
    k: how many to select (static).
    valid: optional [n] bool, False for padding.

  Returns:
    int32 [k], distinct pool indices; -1 past the valid entries.
  """
  _check_k(k, n)
  valid = _valid(valid, n)
  bits = jax.vmap(lambda i: jax.random.bits(jax.random.fold_in(key, i)))(
      jnp.arange(n))
  order = jnp.lexsort((bits, ~valid))  # Valid first, then by bits; stable.
  return _first_k(order, valid, k)


@functools.partial(jax.jit, static_argnames='k')
def mcdue(pred_samples: Array, k: int,
          valid: Optional[Array] = None) -> jax.Array:
  """MCDUE (Table 4): the k entries with the largest std over T dropout passes.

  Args:
    pred_samples: [T, N] or [T, N, P] predictions of T stochastic (dropout)
      forward passes over the pool. The std is over T (ddof=0; ddof only scales
      it); with P > 1 outputs, the uncertainty is the mean std over P.
    k: how many to select (static).
    valid: optional [N] bool, False for padding.

  Returns:
    int32 [k], pool indices by descending std (stable: ties by index); -1 past
    the valid entries.
  """
  p = jnp.asarray(pred_samples)
  p = p.astype(jnp.promote_types(p.dtype, jnp.float32))
  if p.ndim not in (2, 3):
    raise ValueError(f'pred_samples must be [T, N] or [T, N, P], got {p.shape}.')
  n = p.shape[1]
  _check_k(k, n)
  valid = _valid(valid, n)
  std = jnp.std(p.reshape(p.shape[0], n, -1), axis=0).mean(axis=-1)
  # Padding sorts last; NaN garbage in it must not reach the sort key.
  order = jnp.argsort(jnp.where(valid, -std, jnp.inf), stable=True)
  return _first_k(order, valid, k)


def _pool_size(features, outputs, pred_samples, valid) -> int:
  if valid is not None:
    return np.shape(valid)[-1]
  if features is not None:
    return np.shape(features)[0]
  if outputs is not None:
    return np.shape(outputs)[0]
  if pred_samples is not None:
    return np.shape(pred_samples)[1]
  raise ValueError('Give the pool: features, outputs, pred_samples or valid.')


def _need(name: str, **arrays):
  for arg, value in arrays.items():
    if value is None:
      raise ValueError(f'Sampler {name!r} needs `{arg}`.')


@SAMPLERS.register('random')
def _random(*, k, key=None, features=None, outputs=None, pred_samples=None,
            valid=None):
  _need('random', key=key)
  n = _pool_size(features, outputs, pred_samples, valid)
  return random_order(key, n, k, valid)


@SAMPLERS.register('gsx')
def _gsx(*, k, key=None, features=None, outputs=None, pred_samples=None,
         valid=None):
  del key, outputs, pred_samples  # Passive: features only.
  _need('gsx', features=features)
  return gsx(features, k, valid)


@SAMPLERS.register('gsy')
def _gsy(*, k, key=None, features=None, outputs=None, pred_samples=None,
         valid=None):
  del key, features, pred_samples
  _need('gsy', outputs=outputs)
  return gsy(outputs, k, valid)


@SAMPLERS.register('igs')
def _igs(*, k, key=None, features=None, outputs=None, pred_samples=None,
         valid=None):
  del key, pred_samples
  _need('igs', features=features, outputs=outputs)
  return igs(features, outputs, k, valid)


@SAMPLERS.register('mcdue')
def _mcdue(*, k, key=None, features=None, outputs=None, pred_samples=None,
           valid=None):
  del key, features, outputs
  _need('mcdue', pred_samples=pred_samples)
  return mcdue(pred_samples, k, valid)


def get_sampler(name: str):
  """The jitted sampler `name`, with the uniform keyword signature."""
  return SAMPLERS.get(name)


def select(name: str, *, k: Optional[int] = None, key=None, features=None,
           outputs=None, pred_samples=None, valid=None) -> np.ndarray:
  """Checked entry point for one pool: the first k indices chosen by `name`.

  k=None selects the whole valid pool (the full order, whose prefixes are the
  selections of every smaller k). Raises ValueError unless 1 <= k <= number of
  valid entries, so the result never holds -1.

  Returns:
    int numpy [k], pool indices in selection order.
  """
  fn = SAMPLERS.get(name)
  n = _pool_size(features, outputs, pred_samples, valid)
  n_valid = n if valid is None else int(np.sum(np.asarray(valid, bool)))
  if k is None:
    k = n_valid
  if not 1 <= k <= n_valid:
    raise ValueError(
        f'Sampler {name!r}: k={k} must be in [1, {n_valid}] for a pool of '
        f'{n_valid} valid entries.')
  return np.asarray(fn(k=k, key=key, features=features, outputs=outputs,
                       pred_samples=pred_samples, valid=valid))


def select_batch(name: str, *, k: Optional[int] = None, key=None, keys=None,
                 features=None, outputs=None, pred_samples=None,
                 valid=None) -> np.ndarray:
  """`select` vmapped over B padded pools (e.g. subjects x folds).

  features [B, N, D], outputs [B, N, P] (or [B, N]), pred_samples [B, T, N]
  or [B, T, N, P], valid [B, N]. Pool b draws its random order from
  fold_in(key, b), or from keys[b] when `keys` [B] is given instead. k=None
  gives every pool's full order, [B, N] with -1 after its valid entries; an
  explicit k must be in [1, the smallest pool].

  Returns:
    int numpy [B, k].
  """
  SAMPLERS.get(name)  # an unknown name fails first
  if key is not None and keys is not None:
    raise ValueError('Give `key` or `keys`, not both.')
  arrays = dict(features=features, outputs=outputs, pred_samples=pred_samples,
                valid=valid, keys=keys)
  arrays = {a: v for a, v in arrays.items() if v is not None}
  if not set(arrays) - {'keys'}:
    raise ValueError('Give the pools: features, outputs, pred_samples or valid.')
  b = {np.shape(v)[0] for v in arrays.values()}
  if len(b) != 1:
    shapes = {a: np.shape(v) for a, v in arrays.items()}
    raise ValueError(f'The leading (batch) sizes differ: {shapes}.')
  b = b.pop()
  first = {a: v[0] for a, v in arrays.items()}
  n = _pool_size(first.get('features'), first.get('outputs'),
                 first.get('pred_samples'), first.get('valid'))
  if valid is None:
    n_valid = np.full((b,), n)
  else:
    n_valid = np.sum(np.asarray(valid, bool), axis=-1)
  if k is None:
    k = n
  elif not 1 <= k <= n_valid.min():
    raise ValueError(
        f'Sampler {name!r}: k={k} must be in [1, {n_valid.min()}], the '
        f'smallest pool has {n_valid.min()} valid entries.')
  return np.asarray(_batched(name, k)(key, arrays))


@functools.lru_cache(maxsize=None)
def _batched(name: str, k: int):
  """One jitted vmap per (sampler, k); pool b's key is keys[b] if given, else
  fold_in(key, b)."""
  fn = SAMPLERS.get(name)

  @jax.jit
  def run(key, arrays):
    arrays = dict(arrays)
    keys = arrays.pop('keys', None)
    b = jax.tree.leaves(arrays)[0].shape[0]
    if key is not None:
      keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(b))
    return jax.vmap(lambda kk, a: fn(k=k, key=kk, **a))(keys, arrays)

  return run
