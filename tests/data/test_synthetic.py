"""Tests of the synthetic affect dataset: geometry, labels, determinism, styles."""
import math
import pickle

import numpy as np
import pytest

from fer_jax.data import labels
from fer_jax.data.synthetic import affect
from fer_jax.data.synthetic import face
from fer_jax.data.synthetic import face_params
from fer_jax.data.synthetic import presets
from fer_jax.data.synthetic import source as source_lib
from fer_jax.data.synthetic import SyntheticSource

AU = {n: i for i, n in enumerate(labels.AUS)}
SIZE = 256


def _identities(n=4):
  return [face_params.sample_identity(np.random.default_rng(100 + s)) for s in range(n)]


def _pair(idn, au_number, intensity=1.0):
  """Landmarks of a neutral face and of the same face with one AU on (lab, frontal)."""
  au = np.zeros(len(labels.AUS))
  _, neutral, _ = face.render_face(idn, au, image_size=SIZE)
  au[AU[au_number]] = intensity
  _, moved, _ = face.render_face(idn, au, image_size=SIZE)
  return neutral.astype(np.float64), moved.astype(np.float64)


def _eye_opening(lm):
  return np.mean(lm[[40, 41, 46, 47], 1] - lm[[37, 38, 44, 43], 1])


def _lip_gap(lm):
  return lm[66, 1] - lm[62, 1]


# Each check gets (neutral landmarks, landmarks with the AU at 1); pixels at 256x256.
AU_CHECKS = {
    1: lambda n, m: ((n - m)[[21, 22], 1].mean() > 3
                     and (n - m)[[21, 22], 1].mean() > (n - m)[[17, 26], 1].mean() + 2),
    2: lambda n, m: ((n - m)[[17, 26], 1].mean() > 3
                     and (n - m)[[17, 26], 1].mean() > (n - m)[[21, 22], 1].mean() + 2),
    4: lambda n, m: ((m - n)[17:27, 1].mean() > 2
                     and (m[22, 0] - m[21, 0]) < (n[22, 0] - n[21, 0]) - 2),
    5: lambda n, m: _eye_opening(m) > _eye_opening(n) + 2,
    6: lambda n, m: ((n - m)[[40, 41, 46, 47], 1].mean() > 1
                     and _eye_opening(m) < _eye_opening(n) - 1),
    7: lambda n, m: _eye_opening(m) < _eye_opening(n) - 2,
    9: lambda n, m: (n - m)[31:36, 1].mean() > 2,
    12: lambda n, m: ((n - m)[[48, 54], 1].mean() > 3
                      and (m[54, 0] - m[48, 0]) > (n[54, 0] - n[48, 0]) + 3),
    15: lambda n, m: (m - n)[[48, 54], 1].mean() > 3,
    17: lambda n, m: (n - m)[8, 1] > 1.5 and (n - m)[57, 1] > 1.5,
    20: lambda n, m: ((m[54, 0] - m[48, 0]) > (n[54, 0] - n[48, 0]) + 5
                      and (n - m)[[48, 54], 1].mean() <= 0.5),
    23: lambda n, m: (m[57, 1] - m[51, 1]) < (n[57, 1] - n[51, 1]) - 2,
    25: lambda n, m: _lip_gap(m) > _lip_gap(n) + 3 and abs(m[8, 1] - n[8, 1]) < 1,
    26: lambda n, m: (m - n)[8, 1] > 5 and _lip_gap(m) > _lip_gap(n) + 8,
}


def test_every_au_has_a_check():
  assert sorted(AU_CHECKS) == sorted(labels.AUS)


@pytest.mark.parametrize('au_number', sorted(AU_CHECKS))
def test_au_moves_its_landmarks_the_facs_way(au_number):
  for idn in _identities():
    neutral, moved = _pair(idn, au_number)
    assert AU_CHECKS[au_number](neutral, moved), f'AU{au_number} on {idn}'


@pytest.mark.parametrize('au_number', labels.AUS)
def test_au_changes_only_its_part_of_the_face(au_number):
  idn = _identities(1)[0]
  neutral, moved = _pair(idn, au_number)
  d = np.abs(moved - neutral).max(-1)
  parts = {'jaw': range(0, 17), 'brows': range(17, 27), 'nose': range(27, 36),
           'eyes': range(36, 48), 'mouth': range(48, 68)}
  moved_parts = {k for k, r in parts.items() if d[list(r)].max() > 0.5}
  allowed = {1: {'brows'}, 2: {'brows'}, 4: {'brows', 'eyes'}, 5: {'eyes'},
             6: {'eyes'}, 7: {'eyes'}, 9: {'brows', 'nose', 'mouth'}, 12: {'mouth'},
             15: {'mouth'}, 17: {'jaw', 'mouth'}, 20: {'mouth'}, 23: {'mouth'},
             25: {'mouth'}, 26: {'jaw', 'mouth'}}[au_number]
  assert moved_parts and moved_parts <= allowed, (au_number, moved_parts)


@pytest.mark.parametrize('au_number', labels.AUS)
def test_each_au_is_visible_at_64(au_number):
  idn = _identities(1)[0]
  au = np.zeros(len(labels.AUS))
  neutral = face.render_face(idn, au, image_size=64)[0].astype(int)
  au[AU[au_number]] = 1.0
  moved = face.render_face(idn, au, image_size=64)[0].astype(int)
  assert np.abs(moved - neutral).sum(-1).max() > 60


def test_landmarks_follow_the_pose():
  """In-plane pose = a similarity transform of the frontal landmarks; the pupils are
  drawn where the eye centres say (also under yaw)."""
  idn = _identities(1)[0]
  au = np.zeros(len(labels.AUS))
  _, front, _ = face.render_face(idn, au, image_size=128)
  pose = face_params.Pose(roll=0.3, scale=0.8, tx=0.05, ty=-0.04)
  _, lm, _ = face.render_face(idn, au, pose, image_size=128)
  c, s = 0.8 * math.cos(0.3), 0.8 * math.sin(0.3)
  center = np.array([0.5, idn.eye_y + 0.5 * (idn.face_h - idn.forehead)]) * 128 - 0.5
  expect = (front - center) @ np.array([[c, s], [-s, c]]) + center + [6.4, -5.12]
  np.testing.assert_allclose(lm, expect, atol=1e-3)
  for pose in (pose, face_params.Pose(yaw=0.45, roll=-0.2, scale=0.9, tx=-0.05)):
    img, lm, eyes = face.render_face(idn, au, pose, image_size=128)
    gray = img.mean(-1)
    for x, y in eyes:
      assert gray[int(round(y)), int(round(x))] < 40  # the pupil
  # Yaw turns the face: the nose tip moves more than the face outline.
  _, yawed, _ = face.render_face(idn, au, face_params.Pose(yaw=0.45), image_size=128)
  assert (yawed - front)[30, 0] > (yawed - front)[[0, 16], 0].mean() + 3


def _same(r1, r2):
  assert r1.keys() == r2.keys()
  for k in r1:
    assert np.asarray(r1[k]).dtype == np.asarray(r2[k]).dtype, k
    np.testing.assert_array_equal(r1[k], r2[k], err_msg=k)


def test_records_are_deterministic_and_picklable():
  for name in ('affectnet_like', 'afew_va_like'):
    a = SyntheticSource(name, 'validation', image_size=48, seed=3)
    b = pickle.loads(pickle.dumps(SyntheticSource(name, 'validation', image_size=48,
                                                  seed=3)))
    for i in (0, 7, len(a) - 1):
      _same(a[i], b[np.int64(i)])
    assert not np.array_equal(a[0]['image'], a[1]['image'])
    other_seed = SyntheticSource(name, 'validation', image_size=48, seed=4)
    assert not np.array_equal(a[0]['image'], other_seed[0]['image'])


def test_splits_are_disjoint():
  for name in ('sfew_like', 'amigos_like', 'kdef_like'):
    seen = {}
    for split in presets.SPLITS:
      src = SyntheticSource(name, split, image_size=32)
      step = max(1, len(src) // 60)
      for i in range(0, len(src), step):
        r = src[i]
        key = r['image'].tobytes() + r['au_intensity'].tobytes()
        assert seen.setdefault(key, split) == split, (name, split, i)
  clips = {s: {int(SyntheticSource('amigos_like', s, image_size=16)[i]['clip'])
               for i in range(0, 1000, 100)} for s in presets.SPLITS}
  assert not (clips['train'] & clips['validation'] or clips['train'] & clips['test']
              or clips['validation'] & clips['test'])


def test_subjects_keep_identity_across_splits():
  spec = presets.get_preset('amigos_like')
  train = SyntheticSource('amigos_like', 'train', image_size=64)
  test = SyntheticSource('amigos_like', 'test', image_size=64)
  r1 = next(train[i] for i in range(0, 10000, 100) if train[i]['subject'] == 3)
  r2 = next(test[i] for i in range(0, 1000, 100) if test[i]['subject'] == 3)
  # Same identity: the background (the identity's studio colour) and the corners.
  np.testing.assert_array_equal(r1['image'][0, 0], r2['image'][0, 0])
  (id1, st1), (id2, st2) = (source_lib.subject_profile(spec, 0, 3),
                            source_lib.subject_profile(spec, 0, 3))
  assert id1 == id2 and st1.styles == st2.styles
  np.testing.assert_array_equal(st1.rest, st2.rest)
  assert source_lib.subject_profile(spec, 0, 4)[0] != id1


def test_disjoint_subject_presets():
  for name in ('compound_like', 'ck_like'):
    spec = presets.get_preset(name)
    ranges = [source_lib._subject_range(spec, s) for s in presets.SPLITS]
    assert ranges[0][0] == 0 and ranges[-1][1] == spec.num_subjects
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:]))
    for split, (lo, hi) in zip(presets.SPLITS, ranges):
      src = SyntheticSource(name, split, image_size=16)
      subjects = [int(src[i]['subject']) for i in range(0, len(src), len(src) // 20)]
      assert all(lo <= s < hi for s in subjects), (name, split)


_DTYPES = {'image': np.uint8, 'valence': np.float32, 'arousal': np.float32,
           'expression': np.int32, 'compound': np.int32, 'aus': np.float32,
           'au_intensity': np.float32, 'landmarks': np.float32, 'eyes': np.float32,
           'subject': np.int32, 'domain': np.int32, 'clip': np.int32,
           'frame': np.int32, 'index': np.int32, 'has_va': np.bool_,
           'has_expression': np.bool_, 'has_aus': np.bool_, 'has_compound': np.bool_}


@pytest.mark.parametrize('name', presets.PRESETS.names())
def test_records_are_valid(name):
  spec = presets.get_preset(name)
  for split in presets.SPLITS:
    src = SyntheticSource(name, split)
    assert len(src) == spec.splits[split] and src.labels == spec.labels
    size, ch = spec.image_size, spec.channels
    for i in np.linspace(0, len(src) - 1, 6).astype(int):
      r = src[i]
      assert set(r) == set(_DTYPES) == set(source_lib.RECORD_KEYS)
      for k, dt in _DTYPES.items():
        assert np.asarray(r[k]).dtype == dt, (k, np.asarray(r[k]).dtype)
      assert r['image'].shape == (size, size, ch)
      assert r['aus'].shape == r['au_intensity'].shape == (len(labels.AUS),)
      assert r['landmarks'].shape == (68, 2) and r['eyes'].shape == (2, 2)
      assert r['index'] == i and r['domain'] == labels.DOMAINS.index(spec.domain)
      assert 0 <= r['subject'] < spec.num_subjects
      assert -1 <= r['valence'] <= 1 and -1 <= r['arousal'] <= 1
      assert r['has_va'] == ('va' in spec.labels)
      assert r['has_aus'] == ('aus' in spec.labels)
      if not r['has_va']:
        assert r['valence'] == 0 and r['arousal'] == 0
      for group, n in (('expression', len(labels.EXPRESSIONS)),
                       ('compound', len(labels.COMPOUND_EXPRESSIONS))):
        if r[f'has_{group}']:
          assert group in spec.labels and 0 <= r[group] < n
        else:
          assert r[group] == labels.MISSING
      if 'compound' in spec.labels:  # exactly one class per record
        assert r['has_expression'] != r['has_compound']
      elif 'expression' in spec.labels:
        assert r['has_expression'] and labels.EXPRESSIONS[r['expression']] in spec.expressions
      if r['has_aus']:
        np.testing.assert_array_equal(
            r['aus'], (r['au_intensity'] >= affect.AU_THRESHOLD).astype(np.float32))
        assert np.all((r['au_intensity'] >= 0) & (r['au_intensity'] <= 1))
      else:
        assert not r['aus'].any() and not r['au_intensity'].any()
      np.testing.assert_allclose(
          r['eyes'], r['landmarks'][36:48].reshape(2, 6, 2).mean(1), atol=1e-4)
      assert r['eyes'][0, 0] < r['eyes'][1, 0]
      if spec.domain == 'lab':
        assert np.all((r['landmarks'] >= 0) & (r['landmarks'] <= size - 1))
      if spec.kind == 'video':
        assert r['clip'] >= 0 and 0 <= r['frame'] < spec.frames_per_clip
      else:
        assert r['clip'] == labels.MISSING and r['frame'] == 0


def test_image_size_and_channels_override():
  for size, ch in ((48, 1), (96, 3), (224, 3)):
    r = SyntheticSource('sfew_like', 'test', image_size=size, channels=ch)[3]
    assert r['image'].shape == (size, size, ch)
    assert np.all((r['landmarks'] > -size) & (r['landmarks'] < 2 * size))
  small = SyntheticSource('kdef_like', image_size=64)[0]['landmarks']
  big = SyntheticSource('kdef_like', image_size=128)[0]['landmarks']
  np.testing.assert_allclose((big + 0.5) / 128, (small + 0.5) / 64, atol=1e-5)


def test_errors_name_the_valid_choices():
  src = SyntheticSource('sfew_like', 'validation')
  with pytest.raises(IndexError):
    src[len(src)]
  with pytest.raises(IndexError):
    src[-1]
  with pytest.raises(KeyError, match='valid synthetic preset names: .*affectnet_like'):
    SyntheticSource('affectnet')
  with pytest.raises(ValueError, match='valid splits: train, validation, test'):
    SyntheticSource('sfew_like', 'val')


def test_expression_records_show_their_prototype():
  src = SyntheticSource('kdef_like', 'train', image_size=16, all_labels=True)
  by_class = {}
  for i in range(0, len(src), 2):
    r = src[i]
    by_class.setdefault(int(r['expression']), []).append(r['au_intensity'])
  assert set(by_class) == set(range(len(labels.EXPRESSIONS)))
  for e, aus in by_class.items():
    proto = affect.EXPRESSION_AUS[e] > 0
    mean = np.mean(aus, 0)
    if proto.any():
      assert mean[proto].min() > 0.5, (labels.EXPRESSIONS[e], mean)
      assert mean[proto].mean() > mean[~proto].mean() + 0.4
    else:
      assert mean.max() < 0.6


def test_compound_table_follows_du_et_al():
  rows = dict(zip(labels.COMPOUND_EXPRESSIONS, affect.COMPOUND_AUS))
  assert rows['happily_surprised'][[AU[1], AU[2], AU[12], AU[25]]].tolist() == [1] * 4
  assert rows['angrily_surprised'][[AU[4], AU[25], AU[26]]].tolist() == [1] * 3
  assert rows['awed'][AU[12]] == 0
  table = np.concatenate([affect.EXPRESSION_AUS, affect.COMPOUND_AUS])
  d = np.abs(table[:, None] - table[None]).sum(-1)
  assert (d + np.eye(len(table)) * 9).min() > 0  # all 22 prototypes differ
  src = SyntheticSource('compound_like', 'validation', image_size=16)
  kinds = [(bool(r['has_expression']), bool(r['has_compound']))
           for r in (src[i] for i in range(0, len(src), 10))]
  assert (True, False) in kinds and (False, True) in kinds


def test_video_va_is_smooth_and_subjects_have_their_frames():
  src = SyntheticSource('amigos_like', 'train', image_size=16)
  spec = src.spec
  frames = [src[i] for i in range(200, 300)]  # one whole clip
  assert len({int(r['clip']) for r in frames}) == 1
  assert len({int(r['subject']) for r in frames}) == 1
  v = np.array([[r['valence'], r['arousal']] for r in frames])
  assert np.abs(np.diff(v, axis=0)).max() < 0.1
  assert v.std(0).min() > 0.05  # the trajectory does move
  counts = np.bincount([int(src[i]['subject']) for i in range(0, len(src), 100)])
  np.testing.assert_array_equal(counts * spec.frames_per_clip,
                                [len(src) // spec.num_subjects] * spec.num_subjects)


def test_subjects_show_affect_differently():
  """A per-subject linear map AU intensities -> (v, a) fits its own subject's
  held-out frames much better than another subject's map does."""
  src = SyntheticSource('amigos_like', 'train', image_size=16, all_labels=True)
  per_subject = {}
  for i in range(0, len(src), 4):
    r = src[i]
    per_subject.setdefault(int(r['subject']), []).append(
        (np.r_[r['au_intensity'], 1.0], (r['valence'], r['arousal'])))
  fits, held_out = {}, {}
  for s, rows in per_subject.items():
    x = np.array([a for a, _ in rows])
    y = np.array([b for _, b in rows])
    fits[s] = np.linalg.lstsq(x[::2], y[::2], rcond=None)[0]
    held_out[s] = (x[1::2], y[1::2])
  rmse = lambda w, s: np.sqrt(np.mean((held_out[s][0] @ w - held_out[s][1])**2))  # noqa: E731
  own = np.mean([rmse(fits[s], s) for s in fits])
  cross = np.mean([rmse(fits[t], s) for s in fits for t in fits if t != s])
  assert len(fits) == 10
  assert cross > 2.5 * own, (own, cross)
  styles = {source_lib.subject_profile(src.spec, 0, s)[1].styles for s in fits}
  assert len(styles) > 5


def test_video_position_matches_the_rendered_record():
  src = SyntheticSource('amigos_like', 'validation', image_size=16)
  for i in (0, 99, 100, 517, len(src) - 1):
    r = src[i]
    assert src.video_position(i) == (int(r['subject']), int(r['clip']),
                                     int(r['frame']))
  assert SyntheticSource('sfew_like', 'train', image_size=16).video_position(0) is None
