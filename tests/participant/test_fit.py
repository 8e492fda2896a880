"""`fit`'s pieces by hand, and the workflow end to end on a rendered
`amigos_like` subject with an oracle labeller and a VA workdir as the base
(expensive: a general net pre-trained here, every sampler in three rounds):
no frame proposed twice, the personal model beats the general one at 40
labels, and the saved workdir predicts as the fitted head does. (`fit` on the
published mini-Xception base, and its mistakes: test_propose.py.)

The general model is a small net pre-trained on `affectnet_like` (the
study's recipe at a smaller scale); the README's curve
(launch/personal_curve.py) uses the study's own pre-trained net.
"""
import csv
import os

import numpy as np
import pytest

from fer_jax import labeling
from fer_jax import participant
from fer_jax.labeling import files as label_files
from fer_jax.participant import curve
from fer_jax.participant import labelled
from fer_jax.participant import personal_model
from fer_jax.participant.propose import NEEDS_LABELS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope='module')
def va_base(tmp_path_factory):
  """A small valence/arousal net trained on the wild preset (the general
  model, which has never seen the lab subjects)."""
  from configs.personalization import common
  from fer_jax.train import loop
  c = common.pretrain_config(32, dict(name='small_cnn', widths=(8, 16),
                                      hidden=64), records=1500, epochs=1)
  c.task.targets = ('valence', 'arousal')
  c.data.num_threads = 2
  c.total_steps = 150
  c.eval_every_steps = c.checkpoint_every_steps = 150
  c.log_every_steps = 50
  c.optim = dict(name='adam', learning_rate=2e-3)
  wd = str(tmp_path_factory.mktemp('va_base'))
  loop.train_and_evaluate(c, wd)
  return wd


@pytest.fixture(scope='module')
def video(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('video'))
  return participant.render_subject(out, subject=0, clips=list(range(6)),
                                    frames_per_clip=40, image_size=64, fps=10.)


@pytest.fixture(scope='module')
def rounds_run(va_base, video, tmp_path_factory):
  """Every sampler in three rounds (10, 20, 40 labels): a learning check of
  a few minutes, run by .ci/run's expensive stage."""
  out = str(tmp_path_factory.mktemp('curve'))
  return curve.learning_curve(out, video.video, video.truth, va_base,
                              samplers=curve.SAMPLERS, sizes=(10, 20, 40),
                              log=lambda _: None)


# ------------------------------------------------------------ hand values


def test_time_folds_are_contiguous_blocks_in_time():
  frames = np.array([50, 10, 30, 20, 40, 60, 70])
  # In time order 10 20 30 | 40 50 | 60 70 (7 = 3 + 2 + 2).
  want = np.array([1, 0, 0, 0, 1, 2, 2])
  np.testing.assert_array_equal(labelled.time_folds(frames, 3), want)


def test_scores_are_rmse_and_ccc_by_hand():
  y = np.array([[0., 1.], [1., 0.], [2., 1.]])
  pred = np.array([[0., 1.], [1., 1.], [3., 1.]])
  s = personal_model.scores(pred, y)
  assert s['valence']['rmse'] == pytest.approx(np.sqrt(1 / 3))
  # Valence: means 4/3 and 1, variances 14/9 and 2/3, covariance 1.
  assert s['valence']['ccc'] == pytest.approx(2 / (14 / 9 + 2 / 3 + 1 / 9))
  assert s['arousal']['rmse'] == pytest.approx(np.sqrt(1 / 3))
  assert s['arousal']['ccc'] == 0.0  # a constant prediction


def test_the_curve_is_saved_as_csv_rows_and_a_plot(tmp_path):
  rows = [dict(sampler=s, labels=n, model=m, valence_rmse=0.1 * n,
               arousal_rmse=0.2, valence_ccc=0.5, arousal_ccc=0.25,
               test_frames=100 - n)
          for s in ('random', 'igs') for n in (10, 20)
          for m in ('personal', 'general')]
  csv_path, png_path = curve.save(curve.Curve(rows, {}), str(tmp_path))
  with open(csv_path) as f:
    back = list(csv.DictReader(f))
  assert tuple(back[0]) == curve.COLUMNS
  assert [(r['sampler'], int(r['labels']), r['model'], float(r['valence_rmse']))
          for r in back] == [(r['sampler'], r['labels'], r['model'],
                              r['valence_rmse']) for r in rows]
  assert os.path.getsize(png_path) > 1000


def test_label_studio_answers_win_over_labels_csv(tmp_path):
  subject = str(tmp_path)
  label_files.append_answers(subject, [
      labeling.Answer(21, 1, 'labelled', 0.9, 0.9),
      labeling.Answer(4, 1, 'labelled', 0.2, -0.1),
      labeling.Answer(8, 1, 'labelled', 0.3, 0.3)])
  got = labelled.read_labels(
      subject, os.path.join(ROOT, 'tests', 'labeling', 'label_studio_export.json'))
  # The export labels 3 and 21 (last answer -0.5, 0.6), skips 8 (so it is
  # no longer labelled) and says "no face" for 15.
  assert sorted(got) == [3, 4, 21]
  assert (got[21].valence, got[21].arousal) == (-0.5, 0.6)
  assert (got[4].valence, got[4].arousal) == (0.2, -0.1)


# ------------------------------------------------------------ the workflow


def _round_rows(subject, number):
  with open(os.path.join(subject, f'round_{number}', 'to_label.csv')) as f:
    return list(csv.DictReader(f))


@pytest.mark.expensive
def test_every_sampler_runs_in_rounds_and_no_frame_comes_twice(rounds_run):
  for sampler, subject in rounds_run.folders.items():
    assert labeling.rounds(subject) == [1, 2, 3]
    seen = []
    for number, size in zip((1, 2, 3), (10, 10, 20)):
      rows = _round_rows(subject, number)
      assert len(rows) == size
      first = 'random' if sampler == 'random' else 'gsx'
      assert {r['sampler'] for r in rows} == {first if number == 1 else sampler}
      seen += [int(r['frame']) for r in rows]
    assert len(seen) == len(set(seen)) == 40, sampler
    answered = labelled.read_labels(subject)
    assert sorted(answered) == sorted(seen)
  assert set(NEEDS_LABELS) <= set(rounds_run.folders)


@pytest.mark.expensive
def test_the_personal_model_beats_the_general_one_at_40_labels(rounds_run):
  rows = [r for r in rounds_run.rows if r['labels'] == 40]
  rmse = lambda model, t: np.mean([r[f'{t}_rmse'] for r in rows  # noqa: E731
                                   if r['model'] == model])
  for t in ('valence', 'arousal'):
    assert rmse('personal', t) < rmse('general', t), curve.table(rows)
  # Over both targets, by a clear margin (the small general net's valence is
  # the closer one; with the study's net, README, both are far apart).
  both = lambda m: rmse(m, 'valence') + rmse(m, 'arousal')  # noqa: E731
  assert both('personal') < 0.8 * both('general'), curve.table(rows)
  # And the curve falls: 40 labels beat 10 on average over the samplers.
  mean = lambda n: np.mean([r['valence_rmse'] + r['arousal_rmse']  # noqa: E731
                            for r in rounds_run.rows
                            if r['labels'] == n and r['model'] == 'personal'])
  assert mean(40) < mean(10)


@pytest.mark.expensive
def test_the_va_workdir_personal_model_predicts_as_the_fitted_head(
    rounds_run, va_base, video):
  from tests.participant import workdir_check
  subject = rounds_run.folders['igs']
  info = personal_model.load_fit(subject)
  assert info['labels'] == 40 and info['folds'] == 5 and info['general_head']
  assert set(info['cv']) == {'personal', 'general', 'mean'}
  res = personal_model.fit(subject, va_base, video=video.video,
                           log=lambda _: None)  # the same labels, refitted
  workdir_check.assert_predicts_as_the_fitted_head(res, va_base, subject,
                                                   video.video)
