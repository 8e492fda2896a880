"""Paper 000's personalization study, its parts: the engine's epoch order, bf16
rounding, MC dropout, folds, bad input and the feature cache (the engine against
one model trained plainly: test_finetune_reference.py; the end-to-end study:
test_personalization_study.py)."""
import copy
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fer_jax import atomic
from fer_jax.models import get_model
from fer_jax.protocols import kfold
from fer_jax.protocols.personal import data as personal_data
from fer_jax.protocols.personal import features
from fer_jax.protocols.personal import plan as plan_lib
from fer_jax.protocols.personal import pretrain
from fer_jax.protocols.personal import runner
from fer_jax.train import batched


def test_epoch_order_ignores_padding():
  key = jax.random.key(0)
  a = np.asarray(batched.epoch_order(key, 3, 17, 17))
  b = np.asarray(batched.epoch_order(key, 3, 17, 40))
  np.testing.assert_array_equal(a, b[:17])
  assert sorted(b[:17]) == list(range(17))


def test_bf16_updates_are_stochastically_rounded_and_unbiased():
  # 1 + 1e-3 is not a bfloat16 (its ulp at 1 is 2**-7): nearest rounding gives
  # 1 every time; stochastic rounding gives 1 + 2**-7 with probability
  # 1e-3 / 2**-7, so the mean over many keys is 1 + 1e-3.
  p = {'w': jnp.ones((4096,), jnp.bfloat16)}
  u = {'w': jnp.full((4096,), 1e-3, jnp.bfloat16)}
  got = batched.apply_updates(p, u, jax.random.key(0))['w'].astype(jnp.float32)
  assert set(np.unique(np.asarray(got)).tolist()) <= {1.0, 1 + 2**-7}
  ulp_hits = float(np.mean(np.asarray(got) > 1))
  want = float(jnp.asarray(1e-3, jnp.bfloat16).astype(jnp.float32)) / 2**-7
  assert abs(ulp_hits - want) < 4 * np.sqrt(want * (1 - want) / 4096)
  assert float(optax.apply_updates(p, u)['w'][0]) == 1.0  # nearest: lost
  f32 = {'w': jnp.ones((3,))}
  np.testing.assert_array_equal(  # float32 leaves: plain addition
      batched.apply_updates(f32, {'w': jnp.full((3,), 1e-3)}, jax.random.key(0))['w'],
      np.full(3, 1.001, np.float32))


# ------------------------------------------------------------- MC dropout


def test_mc_dropout_vmapped_passes_equal_a_loop():
  model = get_model('small_cnn', num_outputs=1, hidden=32, dropout=0.5)
  x = np.random.default_rng(0).normal(size=(20, 10)).astype(np.float32)
  head = model.init({'params': jax.random.key(0)}, x[:1],
                    method='predict_head')['params']['head']
  variables = {'params': {'head': head}}

  def mc(x, keys, ids=None, m=model):
    return np.asarray(batched.mc_dropout_predict(m, variables, x, keys, ids,
                                                 method='predict_head'))
  keys = jax.random.split(jax.random.key(1), 6)
  got = mc(x, keys)
  loop = np.stack([mc(x, k[None])[0] for k in keys])
  np.testing.assert_allclose(got, loop, atol=1e-6)
  assert got.shape == (6, 20, 1)
  assert (got.std(0) > 0).all()
  # Splitting the frames into batches draws the same masks.
  ids = np.arange(20)
  parts = [mc(x[s], keys, ids[s]) for s in (slice(0, 7), slice(7, 20))]
  np.testing.assert_allclose(np.concatenate(parts, 1), got, atol=1e-6)
  none = mc(x, keys, m=model.clone(dropout=0.0))
  assert (none == none[:1]).all()  # p = 0: every pass the same, std 0


# ------------------------------------------------------------------ folds


def test_folds_are_disjoint_cover_and_keep_clips_whole():
  clips = np.repeat([3, 1, 4, 5, 9, 2, 6, 8], [10, 30, 5, 12, 7, 20, 9, 9])
  fold = kfold.subject_folds(clips, 3, subject=4, seed=0)
  assert set(fold) == {0, 1, 2}
  for c in np.unique(clips):
    assert len(set(fold[clips == c])) == 1  # no clip on both sides
  sizes = np.bincount(fold)
  assert sizes.sum() == len(clips) and sizes.max() - sizes.min() <= 30
  np.testing.assert_array_equal(
      fold, kfold.subject_folds(clips, 3, subject=4, seed=0))


def test_folds_refuse_too_few_clips_or_frames():
  with pytest.raises(ValueError, match='Subject 7 has 3 clip'):
    kfold.subject_folds(np.repeat([0, 1, 2], 20), 5, subject=7)
  with pytest.raises(ValueError, match='Subject 8 has 4 frame'):
    kfold.subject_folds(np.arange(4), 5, subject=8, by='frames')
  fold = kfold.subject_folds(np.repeat([0, 1], 10), 5, subject=1, by='frames',
                             frames=np.tile(np.arange(10), 2))
  assert np.bincount(fold).tolist() == [4] * 5


def test_fraction_selecting_zero_samples_names_subject_and_fraction():
  assert plan_lib.num_selected(0.05, 40, 3, 0) == 2
  with pytest.raises(ValueError, match='Subject 3 fold 1: fraction 0.05'):
    plan_lib.num_selected(0.05, 9, 3, 1)


def test_nan_labels_name_the_subject():
  labels = np.zeros((6, 2), np.float32)
  labels[4, 1] = np.nan
  data = personal_data.PersonalData(images=np.zeros((6, 2, 2, 3)), labels=labels,
                         subject=np.array([0, 0, 0, 5, 5, 5]),
                         clip=np.array([0, 0, 1, 2, 2, 3]),
                         frame=np.array([0, 1, 0, 0, 1, 0]))
  with pytest.raises(ValueError, match='Subject 5: arousal label is NaN'):
    personal_data.check_personal_data(data)


# ------------------------------------------------------------ feature cache


def test_features_from_another_backbone_are_refused(tmp_path):
  import ml_collections
  from configs import common
  cfg = common.base_config()
  cfg.data.image_size = 8
  cfg.model = dict(name='small_cnn', widths=(4,), hidden=8)
  model = get_model('small_cnn', num_outputs=1, widths=(4,), hidden=8)
  v = model.init({'params': jax.random.key(0)}, jnp.zeros((1, 8, 8, 3)))
  net = pretrain.Net('valence', ('valence',), cfg, model, jax.tree.map(np.asarray, v))
  study = ml_collections.ConfigDict(dict(
      personal=dict(name='synthetic', source=dict(preset='amigos_like')),
      runtime=dict(feature_batch=4, verbose=False)))
  data = personal_data.PersonalData(
      images=np.random.default_rng(0).uniform(size=(6, 8, 8, 3)).astype(
          np.float32), labels=np.zeros((6, 2), np.float32),
      subject=np.zeros(6), clip=np.zeros(6), frame=np.arange(6))
  first = features.cached_features(study, str(tmp_path), net, data)
  again = features.cached_features(study, str(tmp_path), net, data)
  np.testing.assert_array_equal(first, again)
  other = copy.deepcopy(net)
  other.variables['params']['features']['conv0']['kernel'] += 1e-3
  path = os.path.join(str(tmp_path), 'features', 'valence.npz')
  with pytest.raises(features.CacheMismatchError, match=re.escape(path)):
    features.cached_features(study, str(tmp_path), other, data)


def _tiny_feature_net():
  import ml_collections
  from configs import common
  cfg = common.base_config()
  cfg.data.image_size = 8
  cfg.model = dict(name='small_cnn', widths=(4,), hidden=8)
  model = get_model('small_cnn', num_outputs=1, widths=(4,), hidden=8)
  v = model.init({'params': jax.random.key(0)}, jnp.zeros((1, 8, 8, 3)))
  net = pretrain.Net('valence', ('valence',), cfg, model, jax.tree.map(np.asarray, v))
  study = ml_collections.ConfigDict(dict(
      personal=dict(name='synthetic', source=dict(preset='amigos_like')),
      runtime=dict(feature_batch=4, verbose=False)))
  data = personal_data.PersonalData(
      images=np.random.default_rng(0).uniform(size=(6, 8, 8, 3)).astype(
          np.float32), labels=np.zeros((6, 2), np.float32),
      subject=np.zeros(6), clip=np.zeros(6), frame=np.arange(6))
  return study, net, data


def _damage_warnings(caplog, path):
  return [r.getMessage() for r in caplog.records
          if r.getMessage().startswith(f'{path} is damaged')]


def test_a_damaged_feature_cache_is_moved_aside_and_extracted_again(tmp_path,
                                                                     caplog):
  import logging
  study, net, data = _tiny_feature_net()
  first = features.cached_features(study, str(tmp_path), net, data)
  path = os.path.join(str(tmp_path), 'features', 'valence.npz')
  size = os.path.getsize(path)

  def truncate(f):
    f.truncate(size - 100)

  def garble(f):  # inside the features array: only zip's CRC-32 sees it
    f.seek(size // 2)
    f.write(b'\x7f' * 8)

  def empty(f):
    f.truncate(0)

  for n, damage in enumerate((truncate, garble, empty)):
    with open(path, 'r+b') as f:
      damage(f)
    bad = open(path, 'rb').read()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
      again = features.cached_features(study, str(tmp_path), net, data)
    np.testing.assert_array_equal(first, again)
    (line,) = _damage_warnings(caplog, path)
    aside = f'{path}.damaged' + (f'.{n}' if n else '')
    assert f'moved it to {aside} ' in line and 'extract the features' in line
    assert open(aside, 'rb').read() == bad  # kept as it was
  # The re-extracted cache is whole again: read without a warning.
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    np.testing.assert_array_equal(
        features.cached_features(study, str(tmp_path), net, data), first)
  assert not _damage_warnings(caplog, path)


def test_a_damaged_chunk_file_leaves_its_models_to_train_again(tmp_path,
                                                                caplog):
  import logging
  personal = tmp_path / 'personal'
  good = str(personal / 'chunk-head-0000000-00002.npz')
  bad = str(personal / 'chunk-head-0000002-00002.npz')
  short = str(personal / 'chunk-head-0000004-00002.npz')
  for path, ids in ((good, [0, 1]), (bad, [2, 3]), (short, [4, 5])):
    atomic.savez(path, ids=np.asarray(ids), sse=np.ones((2, 2)),
                     count=np.full(2, 7), loss=np.full(2, 0.5))
  with open(bad, 'r+b') as f:
    f.truncate(os.path.getsize(bad) - 1)
  atomic.savez(short, ids=np.asarray([4, 5]), sse=np.ones((1, 2)),
                   count=np.full(2, 7), loss=np.full(2, 0.5))
  with caplog.at_level(logging.WARNING):
    done = runner.done_models(str(tmp_path))
  assert sorted(done) == [0, 1]
  assert done[1]['count'] == 7 and done[1]['loss'] == 0.5
  assert 'train its models again' in _damage_warnings(caplog, bad)[0]
  assert 'members of different lengths' in _damage_warnings(caplog, short)[0]
  assert os.path.exists(bad + '.damaged') and not os.path.exists(bad)
