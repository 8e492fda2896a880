"""Ensemble weights (paper 004's rank formula, fitted simplex weights) and the
ensemble of noisy members beating its best member."""
import numpy as np
import pytest

from fer_jax.protocols import ensemble
from fer_jax.tasks import get_task


def test_rank_weights_follow_the_formula_on_a_hand_made_ranking():
  # Accuracies: member 1 is best (rank 3), member 2 worst (rank 1).
  np.testing.assert_allclose(ensemble.rank_weights([0.6, 0.7, 0.5]),
                             [2 / 6, 3 / 6, 1 / 6])
  # RMSE (lower is better), four members: ranks 2, 4, 1, 3 -> /10.
  np.testing.assert_allclose(ensemble.rank_weights([0.3, 0.1, 0.4, 0.2], 'min'),
                             [.2, .4, .1, .3])
  # Ties share their mean rank.
  np.testing.assert_allclose(ensemble.ranks([0.5, 0.5, 0.9]), [1.5, 1.5, 3])


def test_combine_and_weights_validation():
  a, b = {'valence': np.array([0., 1.])}, {'valence': np.array([1., 3.])}
  np.testing.assert_allclose(ensemble.combine([a, b], [3, 1])['valence'], [.25, 1.5])
  with pytest.raises(ValueError):
    ensemble.combine([a, b], [1, -1])
  with pytest.raises(KeyError, match='valid'):
    ensemble.weights_for('magic', [a, b])


def _va_members(n=2000, sds=(0.3, 0.4, 0.5), seed=0):
  rng = np.random.default_rng(seed)
  y = {'valence': rng.uniform(-1, 1, n), 'arousal': rng.uniform(-1, 1, n),
       'has_va': np.ones(n, bool)}
  members = [{k: y[k] + rng.normal(0, sd, n) for k in ('valence', 'arousal')}
             for sd in sds]
  return y, members


def test_rank_weighted_ensemble_of_noisy_va_members_beats_the_best_member():
  task = get_task('affect', targets=('valence', 'arousal'))
  y, members = _va_members()
  rmse = [task.report(p, y)['rmse_mean'] for p in members]
  w = ensemble.rank_weights(rmse, 'min')
  np.testing.assert_allclose(w, [3 / 6, 2 / 6, 1 / 6])
  ens = task.report(ensemble.combine(members, w), y)['rmse_mean']
  assert ens <= min(rmse)
  # Weights fitted on a validation split do at least as well on a test split.
  yv, val = _va_members(seed=1)
  fitted = ensemble.fit_weights(val, yv)
  assert fitted.min() >= 0 and fitted.sum() == pytest.approx(1)
  assert task.report(ensemble.combine(members, fitted), y)['rmse_mean'] <= ens + 1e-3


def test_rank_weighted_ensemble_of_noisy_classifiers_beats_the_best_member():
  task = get_task('affect', targets=('expression',))
  rng = np.random.default_rng(0)
  n, c = 3000, 7
  labels = rng.integers(0, c, n)
  y = {'expression': labels, 'has_expression': np.ones(n, bool)}

  def member(noise):
    logits = 2.0 * np.eye(c)[labels] + rng.normal(0, noise, (n, c))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return {'expression': e / e.sum(-1, keepdims=True)}
  members = [member(s) for s in (1.5, 1.8, 2.1)]
  acc = [task.report(p, y)['expression/accuracy'] for p in members]
  w = ensemble.rank_weights(acc)
  ens = task.report(ensemble.combine(members, w), y)['expression/accuracy']
  assert ens >= max(acc)


def test_fit_weights_find_a_perfect_member_and_the_least_squares_optimum():
  y, members = _va_members(n=500)
  perfect = {k: y[k].copy() for k in ('valence', 'arousal')}
  np.testing.assert_allclose(ensemble.fit_weights(members + [perfect], y),
                             [0, 0, 0, 1], atol=1e-6)
  # Independent noise: the optimum is w_i ~ 1/var_i (close, on finite samples).
  y, members = _va_members(n=200000, sds=(0.3, 0.6))
  np.testing.assert_allclose(ensemble.fit_weights(members, y), [0.8, 0.2], atol=0.01)


@pytest.mark.expensive
def test_rank_weighted_ensemble_of_three_trained_models_matches_its_best(tmp_path):
  """004's result on trained nets: three differently built and seeded models,
  ranked by validation accuracy, ensembled with w_i = R(A_i) / sum R; on the
  test split the ensemble scores at least as well as its best member."""
  from fer_jax.evaluate import metrics
  from fer_jax.protocols import cross_dataset, ensemble
  from fer_jax.train.loop import train_and_evaluate
  from fer_jax.train.trained import load_run
  from tests.conftest import tiny_config
  members = []
  for seed, widths in enumerate(((8, 16), (16, 32), (8, 16, 32))):
    c = tiny_config(seed=seed, total_steps=400, eval_every_steps=400,
                    checkpoint_every_steps=400, log_every_steps=100,
                    **{'data.eval_records': 1000})
    c.model = dict(name='small_cnn', widths=widths, hidden=64)
    c.task.targets = ('expression',)
    c.optim = dict(name='adam', learning_rate=3e-3)
    wd = str(tmp_path / f'm{seed}')
    train_and_evaluate(c, wd)
    run = load_run(wd, 'best')
    members.append({s: cross_dataset.predict(run, s)[:2]
                    for s in ('validation', 'test')})
  acc = lambda p, lab: float(metrics.accuracy(p['expression'], lab['expression']))
  val = [acc(*m['validation']) for m in members]
  test = [acc(*m['test']) for m in members]
  w = ensemble.weights_for('rank', scores=val)
  np.testing.assert_allclose(w, ensemble.ranks(val) / 6.0)
  combined = ensemble.combine([m['test'][0] for m in members], w)
  ens = acc(combined, members[0]['test'][1])
  assert min(test) > 0.3, test  # each member learned something (7 classes)
  assert ens >= max(test), (ens, test, w)
