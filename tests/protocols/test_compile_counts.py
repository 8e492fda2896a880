"""Host work of the personalization study, counted: the jitted feature, head
and MC-dropout helpers take the weights as arguments (a second net of the same
architecture compiles nothing), and the samplers run as one batched call per
sampler, not one per subject or net."""
import contextlib

import jax
import numpy as np
import pytest

from fer_jax.models import get_model
from fer_jax.protocols import samplers
from fer_jax.protocols.personal import features
from fer_jax.protocols.personal import plan as plan_lib
from fer_jax.protocols.personal.data import PersonalData
from fer_jax.protocols.personal.pretrain import Net

_COMPILE = '/jax/core/compile/backend_compile_duration'


@contextlib.contextmanager
def count_compiles():
  """The XLA compiles run within it (a list that fills up)."""
  seen = []

  def listen(event, duration, **kw):
    del duration, kw
    if event == _COMPILE:
      seen.append(event)
  jax.monitoring.register_event_duration_secs_listener(listen)
  try:
    yield seen
  finally:
    jax.monitoring.unregister_event_duration_listener(listen)


def _nets(hidden=24):
  """Two nets of one architecture, random weights (no init to compile)."""
  # A list field (as a run's config.json gives) makes the module unhashable;
  # an architecture no other test builds, so the first net's compile counts.
  model = get_model('small_cnn', num_outputs=2, widths=[3, 5], hidden=hidden)
  shapes = jax.eval_shape(model.init, jax.random.key(0),
                          np.zeros((1, 12, 12, 1), np.float32))
  nets = []
  for seed in (0, 1):
    rng = np.random.default_rng(seed)
    v = jax.tree.map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(s.dtype),
                     shapes)  # positive: valid BatchNorm variances
    v['params'] = jax.tree.map(lambda a: (a - 1) * 0.8, v['params'])
    nets.append(Net(f'net{seed}', ('valence', 'arousal'), None, model, v))
  return nets


def _head_by_hand(head, f):
  """The small CNN's dense part (Dense, ReLU, Dense) in float64."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), head)
  h = np.maximum(f @ p['fc1']['kernel'] + p['fc1']['bias'], 0)
  return h @ p['out']['kernel'] + p['out']['bias']


def test_a_second_net_of_one_architecture_compiles_nothing():
  a, b = _nets()
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(10, 12, 12, 1)).astype(np.float32)
  with count_compiles() as first:
    fa = features.extract_features(a, images, 4)
    ya = features.head_outputs(a, fa, 4)
  with count_compiles() as second:
    fb = features.extract_features(b, images, 4)
    yb = features.head_outputs(b, fb, 4)
  assert first and not second, (first, second)
  assert fa.shape == (10, 3 * 3 * 5) and not np.allclose(fa, fb)
  want = jax.jit(lambda v: b.model.apply(v, images, False, method='embed'))(
      b.variables)
  np.testing.assert_allclose(fb, want, rtol=1e-5, atol=1e-6)
  for net, f, y in ((a, fa, ya), (b, fb, yb)):
    np.testing.assert_allclose(y, _head_by_hand(net.head, f.astype(np.float64)),
                               rtol=1e-5, atol=1e-6)


def test_features_and_head_outputs_are_fetched_once_not_per_batch(monkeypatch):
  net, _ = _nets(hidden=7)
  images = np.random.default_rng(1).uniform(size=(10, 12, 12, 1)).astype(np.float32)
  fetches = []
  real_get = jax.device_get
  monkeypatch.setattr(jax, 'device_get',
                      lambda x: fetches.append(len(x)) or real_get(x))
  f = features.extract_features(net, images, 4)   # batches of 4, 4, 2 (+2 pad)
  y = features.head_outputs(net, f, 4)
  assert fetches == [3, 3], fetches   # one fetch of the 3 batches, each
  assert f.shape == (10, 45) and y.shape == (10, 2)
  want = jax.jit(lambda v: net.model.apply(v, images, False, method='embed'))(
      net.variables)
  np.testing.assert_allclose(f, want, rtol=1e-5, atol=1e-6)


def test_mc_dropout_samples_compile_once_and_use_each_nets_weights():
  # Two hidden units, both active (a large fc1 bias) and an invertible output
  # layer: each pass's dropout mask can be read back from net a's samples.
  a, b = _nets(hidden=2)
  for net in (a, b):
    net.head['fc1']['bias'] = np.full(2, 10., np.float32)
  n, passes, rate = 9, 6, 0.5
  f = np.random.default_rng(1).normal(size=(n, 45)).astype(np.float32)
  key = jax.random.key(3)
  run = lambda net: features.mc_dropout_samples(  # noqa: E731
      net, f, key, passes=passes, rate=rate, budget=1 << 30)
  with count_compiles() as first:
    sa = run(a)
  with count_compiles() as second:
    sb = run(b)
  assert first and not second, (first, second)
  assert sa.shape == sb.shape == (passes, n, 2)

  def parts(net):
    p = jax.tree.map(lambda v: np.asarray(v, np.float64), net.head)
    h = np.maximum(f @ p['fc1']['kernel'] + p['fc1']['bias'], 0)
    return h, p['out']['kernel'], p['out']['bias']
  # Pass t keeps hidden unit u of frame i or zeroes it: samples are
  # (h * mask / (1 - rate)) @ w + bias with a mask of zeros and ones.
  h, w, bias = parts(a)
  assert (h > 0).all()
  mask = (sa - bias) @ np.linalg.inv(w) * (1 - rate) / h
  np.testing.assert_allclose(mask, np.round(mask), atol=1e-4)
  mask = np.round(mask)
  assert set(np.unique(mask)) == {0, 1} and 0.2 < mask.mean() < 0.8
  # The same keys give net b the same masks, applied to its own weights.
  h, w, bias = parts(b)
  np.testing.assert_allclose(sb, (h * mask / (1 - rate)) @ w + bias,
                             rtol=1e-5, atol=1e-4)
  assert not np.allclose(sa, sb)


def _study(subjects=(0, 1), folds=2, frames=7, dim=3):
  rng = np.random.default_rng(4)
  subject = np.repeat(np.asarray(subjects), frames)
  rng.shuffle(subject)
  n = len(subject)
  fold = np.full(n, -1)
  for s in subjects:
    rows = np.flatnonzero(subject == s)
    fold[rows] = np.arange(len(rows)) % folds
  fold[rows[-1]] = 0  # pools of different sizes: padding
  data = PersonalData(images=np.zeros((n, 1, 1, 1), np.float32),
                      labels=np.zeros((n, 2), np.float32), subject=subject,
                      clip=np.arange(n), frame=np.zeros(n, int))
  nets = [None, None]
  feats = [rng.normal(size=(n, dim)).astype(np.float32) for _ in nets]
  outputs = [rng.normal(size=(n, 2)).astype(np.float32) for _ in nets]
  mc = [rng.normal(size=(5, n, 2)).astype(np.float32) for _ in nets]
  return data, fold, nets, feats, outputs, mc


def test_selection_orders_one_sampler_call_each_equal_to_one_pool_at_a_time(
    monkeypatch):
  import ml_collections  # pylint: disable=g-import-not-at-top
  names = ('random', 'igs', 'mcdue')  # per pool; features and outputs; T
  config = ml_collections.ConfigDict(dict(folds=2, samplers=names))
  data, fold, nets, feats, outputs, mc = _study()
  subjects = np.array([0, 1])
  key = jax.random.key(7)
  calls = []
  real = samplers.select_batch

  def counted(name, **kw):
    calls.append(name)
    return real(name, **kw)
  monkeypatch.setattr(samplers, 'select_batch', counted)
  orders = plan_lib.selection_orders(config, nets, feats, outputs, mc, data,
                                     fold, subjects, key)
  assert calls == list(names)  # not one per net x subject
  assert len(orders) == len(nets) * len(subjects) * 2 * len(names)
  # Reference: each pool alone through the unbatched entry point (padded to
  # the longest pool, so each sampler compiles once); pool (subject si, fold
  # k) draws its random order from fold_in(fold_in(fold_in(key, 2), si), k).
  n_pad = max(np.sum((data.subject == s) & (fold != k))
              for s in subjects for k in range(2))
  for (b, s, k, name), got in orders.items():
    si = int(np.flatnonzero(subjects == s)[0])
    pool = np.flatnonzero((data.subject == s) & (fold != k))
    rows = np.concatenate([pool, np.zeros(n_pad - len(pool), int)])
    args = dict(valid=np.arange(n_pad) < len(pool))
    if name == 'random':
      args['key'] = jax.random.fold_in(jax.random.fold_in(
          jax.random.fold_in(key, plan_lib.RANDOM_SAMPLER), si), k)
    if name in ('gsx', 'igs'):
      args['features'] = feats[b][rows]
    if name in ('gsy', 'igs'):
      args['outputs'] = outputs[b][rows]
    if name == 'mcdue':
      args['pred_samples'] = mc[b][:, rows]
    want = pool[samplers.select(name, **args)]
    np.testing.assert_array_equal(got, want, err_msg=str((b, s, k, name)))
  # Random orders are shared by the nets; the others are each net's own.
  for s in subjects:
    for k in range(2):
      np.testing.assert_array_equal(orders[(0, s, k, 'random')],
                                    orders[(1, s, k, 'random')])
  assert any(not np.array_equal(orders[(0, s, k, 'igs')],
                                orders[(1, s, k, 'igs')])
             for s in subjects for k in range(2))


def test_select_batch_takes_key_or_keys_not_both():
  key = jax.random.key(2)
  with pytest.raises(ValueError, match='not both'):
    samplers.select_batch('random', key=key, keys=key[None],
                          valid=np.ones((1, 3), bool))
