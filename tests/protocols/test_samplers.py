"""Samplers against plain transcriptions of the pseudo-code in paper 000."""
import jax
import numpy as np
import pytest

from fer_jax.protocols import samplers


# ---------------------------------------------------------------------------
# Reference transcriptions of Tables 2-4 (numpy float64, plain loops).
# U and L hold pool indices; removing from U keeps the order of the rest, so
# argmax over U takes the lowest original index among ties.


def _dist(a, b):
  return float(np.sqrt(np.sum((np.asarray(a, np.float64) - b) ** 2)))


def _closest_to_centroid(U, Z):
  centroid = np.mean([np.asarray(Z[u], np.float64) for u in U], axis=0)
  return U[int(np.argmin([_dist(Z[u], centroid) for u in U]))]


def ref_gs(Z, K):
  """Table 2: GSx with Z = features, reduced GSy with Z = f(U)."""
  U, L = list(range(len(Z))), []
  x0 = _closest_to_centroid(U, Z)
  U.remove(x0)
  L.append(x0)
  for _ in range(1, K):
    Dx = []
    for n in U:
      D = []
      for m in L:
        D.append(_dist(Z[n], Z[m]))
      Dx.append(min(D))
    xk = U[int(np.argmax(Dx))]
    U.remove(xk)
    L.append(xk)
  return L


def ref_igs(X, Y, K):
  """Table 3: reduced iGS, X features, Y = f(U)."""
  U, L = list(range(len(X))), []
  x0 = _closest_to_centroid(U, Y)
  U.remove(x0)
  L.append(x0)
  for _ in range(1, K):
    D = []
    for n in U:
      Dx, Dy = [], []
      for m in L:
        Dx.append(_dist(X[n], X[m]))
        Dy.append(_dist(Y[n], Y[m]))
      D.append(min(np.array(Dx) * np.array(Dy)))
    xk = U[int(np.argmax(D))]
    U.remove(xk)
    L.append(xk)
  return L


def ref_mcdue(pred_samples, K):
  """Table 4: argsort of the std over T, descending, stable."""
  p = np.asarray(pred_samples, np.float64)
  std = p.std(axis=0)
  if std.ndim == 2:
    std = std.mean(axis=-1)
  return list(np.argsort(-std, kind='stable')[:K])


def _pool(seed, n, d=5, p=1):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = rng.normal(size=(n, p)).astype(np.float32)
  return x, (y[:, 0] if p == 1 else y)


CASES = [(0, 30, 1), (1, 41, 2), (2, 57, 1)]  # seed, N, P.


@pytest.mark.parametrize('seed,n,p', CASES)
def test_greedy_match_reference(seed, n, p):
  x, y = _pool(seed, n, p=p)
  k = n if n <= 30 else n // 2  # The first case checks the whole order.
  np.testing.assert_array_equal(samplers.gsx(x, k), ref_gs(x, k))
  np.testing.assert_array_equal(samplers.gsy(y, k), ref_gs(y.reshape(n, -1), k))
  np.testing.assert_array_equal(
      samplers.igs(x, y, k), ref_igs(x, y.reshape(n, -1), k))


def test_ties_take_lowest_index():
  # On a line 0..4: centroid 2; then 0 and 4 tie (2) -> 0; then 4; then 1 and
  # 3 tie (1) -> 1; then 3.
  z = np.arange(5.)[:, None]
  np.testing.assert_array_equal(samplers.gsx(z, 5), [2, 0, 4, 1, 3])
  np.testing.assert_array_equal(samplers.gsy(z[:, 0], 5), [2, 0, 4, 1, 3])
  # Integer grid with duplicates: many exact ties, same choices as numpy.
  g = np.random.default_rng(7).integers(0, 3, size=(40, 2)).astype(np.float32)
  np.testing.assert_array_equal(samplers.gsx(g, 40), ref_gs(g, 40))


@pytest.mark.parametrize('shape', [(50, 37), (50, 37, 2)])
def test_mcdue_matches_numpy(shape):
  rng = np.random.default_rng(len(shape))
  p = rng.normal(size=shape).astype(np.float32)
  p[:, 5] = p[:, 11]  # Equal stds keep index order.
  p[:, 20] = p[:, 3]
  np.testing.assert_array_equal(samplers.mcdue(p, 37), ref_mcdue(p, 37))
  np.testing.assert_array_equal(samplers.mcdue(p, 10), ref_mcdue(p, 10))


def test_random_is_a_deterministic_permutation():
  key = jax.random.key(0)
  a = samplers.random_order(key, 40, 40)
  np.testing.assert_array_equal(np.sort(a), np.arange(40))
  np.testing.assert_array_equal(a, samplers.random_order(key, 40, 40))
  b = samplers.random_order(jax.random.key(1), 40, 40)
  assert not np.array_equal(a, b)
  assert not np.array_equal(a, np.arange(40))
  # A raw uint32 key works too.
  r = samplers.random_order(jax.random.PRNGKey(3), 40, 40)
  np.testing.assert_array_equal(np.sort(r), np.arange(40))


def _inputs(seed, n, t=6):
  x, y = _pool(seed, n, p=2)
  ps = np.random.default_rng(seed + 100).normal(size=(t, n)).astype(np.float32)
  return dict(key=jax.random.key(seed), features=x, outputs=y, pred_samples=ps)


@pytest.mark.parametrize('name', samplers.SAMPLERS.names())
def test_prefix_consistency(name):
  inputs = _inputs(4, 35)
  full = samplers.select(name, k=None, **inputs)
  assert full.shape == (35,) and len(set(full.tolist())) == 35
  for k in (1, 20):  # Each k compiles once; few keep the test fast.
    np.testing.assert_array_equal(samplers.select(name, k=k, **inputs),
                                  full[:k])


def test_registry():
  assert samplers.SAMPLERS.names() == ['gsx', 'gsy', 'igs', 'mcdue', 'random']
  x, y = _pool(5, 20)
  np.testing.assert_array_equal(
      samplers.get_sampler('igs')(features=x, outputs=y, k=7),
      samplers.igs(x, y, 7))
  with pytest.raises(KeyError, match='gsx'):
    samplers.get_sampler('coreset')
  with pytest.raises(ValueError, match='outputs'):
    samplers.select('gsy', k=3, features=x)
  with pytest.raises(ValueError, match='key'):
    samplers.select('random', k=3, features=x)


def _pad(a, n_pad, axis=0):
  """Pads with NaN, which must not reach any selection."""
  widths = [(0, 0)] * a.ndim
  widths[axis] = (0, n_pad)
  return np.pad(a, widths, constant_values=np.nan)


@pytest.mark.parametrize('name', samplers.SAMPLERS.names())
def test_vmap_padded_pools_equal_unpadded(name):
  sizes, n_max = (22, 17, 22), 32  # Equal sizes share one compile.
  pools = [_inputs(10 + i, n) for i, n in enumerate(sizes)]
  batch = dict(
      features=np.stack([_pad(p['features'], n_max - n)
                         for p, n in zip(pools, sizes)]),
      outputs=np.stack([_pad(p['outputs'], n_max - n)
                        for p, n in zip(pools, sizes)]),
      pred_samples=np.stack([_pad(p['pred_samples'], n_max - n, axis=1)
                             for p, n in zip(pools, sizes)]),
      valid=np.stack([np.arange(n_max) < n for n in sizes]))
  key = jax.random.key(9)
  full = samplers.select_batch(name, k=None, key=key, **batch)
  assert full.shape == (3, n_max)
  for b, (p, n) in enumerate(zip(pools, sizes)):
    p = dict(p, key=jax.random.fold_in(key, b))
    np.testing.assert_array_equal(full[b, :n], samplers.select(name, **p))
    np.testing.assert_array_equal(full[b, n:], -1)  # Padding never chosen.


@pytest.mark.parametrize('name', ['gsx', 'gsy', 'igs', 'mcdue'])
def test_scattered_valid_mask(name):
  # Invalid entries anywhere: same choice as the compressed pool, mapped back.
  n = 40
  inputs = _inputs(20, n)
  valid = np.random.default_rng(21).random(n) < 0.6
  idx = np.flatnonzero(valid)
  garbage = dict(
      features=np.where(valid[:, None], inputs['features'], 1e6),
      outputs=np.where(valid[:, None], inputs['outputs'], np.nan),
      pred_samples=np.where(valid, inputs['pred_samples'], 1e3))
  want = samplers.select(
      name, features=inputs['features'][idx], outputs=inputs['outputs'][idx],
      pred_samples=inputs['pred_samples'][:, idx])
  # The jitted fn with k beyond the valid entries fills the tail with -1.
  out = samplers.get_sampler(name)(k=n, valid=valid, **garbage)
  np.testing.assert_array_equal(out[:len(idx)], idx[want])
  np.testing.assert_array_equal(out[len(idx):], -1)


def test_random_valid_mask():
  valid = np.arange(30) % 3 != 0
  out = samplers.random_order(jax.random.key(2), 30, 30, valid)
  np.testing.assert_array_equal(np.sort(out[:20]), np.flatnonzero(valid))
  np.testing.assert_array_equal(out[20:], -1)


@pytest.mark.parametrize('k', [0, -1, 21])
def test_select_rejects_bad_k(k):
  x, _ = _pool(0, 25)
  valid = np.arange(25) < 20
  with pytest.raises(ValueError, match=rf'k={k}.*20'):
    samplers.select('gsx', k=k, features=x, valid=valid)


def test_select_batch_rejects_k_above_smallest_pool():
  x = np.zeros((2, 10, 3), np.float32)
  valid = np.stack([np.arange(10) < 10, np.arange(10) < 6])
  with pytest.raises(ValueError, match=r'k=7.*6'):
    samplers.select_batch('gsx', k=7, features=x, valid=valid)


def test_empty_pool_gives_minus_one():
  x = np.zeros((4, 2), np.float32)
  out = samplers.gsx(x, 3, valid=np.zeros(4, bool))
  np.testing.assert_array_equal(out, -1)
