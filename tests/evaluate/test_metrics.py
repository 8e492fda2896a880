"""Metrics against hand arithmetic, scipy and direct numpy formulas."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from fer_jax.evaluate import metrics


def _np_ccc(p, t):
  """Lin's CCC straight from its definition, population moments."""
  cov = np.mean((p - p.mean()) * (t - t.mean()))
  return 2 * cov / (p.var() + t.var() + (p.mean() - t.mean()) ** 2)


# p = [1, 2, 3, 4], t = [1, 3, 2, 5]:
#   errors p - t = [0, -1, 1, -1] -> MSE 3/4, MAE 3/4, RMSE sqrt(3)/2.
#   means 2.5 and 2.75; deviations dp = [-1.5, -.5, .5, 1.5],
#   dt = [-1.75, .25, -.75, 2.25]; var_p = 5/4, var_t = 8.75/4 = 35/16,
#   cov = (2.625 - .125 - .375 + 3.375)/4 = 5.5/4 = 11/8.
#   PCC = (11/8) / sqrt(5/4 * 35/16); ICC = (11/4) / (5/4 + 35/16) = 44/55 = .8;
#   CCC = (11/4) / (55/16 + 1/16) = 44/56 = 11/14.
P = np.array([1., 2., 3., 4.])
T = np.array([1., 3., 2., 5.])


def test_hand_values():
  np.testing.assert_allclose(metrics.mse(P, T), 0.75, rtol=1e-6)
  np.testing.assert_allclose(metrics.mae(P, T), 0.75, rtol=1e-6)
  np.testing.assert_allclose(metrics.rmse(P, T), np.sqrt(3) / 2, rtol=1e-6)
  np.testing.assert_allclose(
      metrics.pcc(P, T), (11 / 8) / np.sqrt(5 / 4 * 35 / 16), rtol=1e-6)
  np.testing.assert_allclose(metrics.icc(P, T), 0.8, rtol=1e-6)
  np.testing.assert_allclose(metrics.ccc(P, T), 11 / 14, rtol=1e-6)


def test_against_scipy_and_numpy_per_dimension():
  rng = np.random.default_rng(0)
  t = rng.normal(size=(200, 2))
  p = 0.7 * t + rng.normal(0.3, 0.5, size=(200, 2)) * [1., 2.]
  got_pcc, got_ccc = metrics.pcc(p, t), metrics.ccc(p, t)
  assert got_pcc.shape == got_ccc.shape == (2,)
  for d in range(2):
    np.testing.assert_allclose(
        got_pcc[d], stats.pearsonr(p[:, d], t[:, d])[0], rtol=1e-5)
    np.testing.assert_allclose(got_ccc[d], _np_ccc(p[:, d], t[:, d]), rtol=1e-5)
  np.testing.assert_allclose(
      metrics.rmse(p, t), np.sqrt(np.mean((p - t) ** 2, axis=0)), rtol=1e-5)


def test_perfect_prediction():
  t = np.array([[-1., 0.5], [0.2, 0.1], [0.9, -0.7]])
  np.testing.assert_allclose(metrics.rmse(t, t), [0., 0.], atol=1e-7)
  for fn in (metrics.pcc, metrics.ccc, metrics.icc):
    np.testing.assert_allclose(fn(t, t), [1., 1.], rtol=1e-6)


def test_icc_equals_ccc_iff_means_agree():
  rng = np.random.default_rng(1)
  t = rng.normal(size=50)
  p = 0.5 * (t - t.mean()) + rng.normal(size=50)
  p = p - p.mean() + t.mean()  # equal means
  np.testing.assert_allclose(metrics.icc(p, t), metrics.ccc(p, t), rtol=1e-5)
  # A bias leaves ICC (and PCC) unchanged but lowers CCC.
  np.testing.assert_allclose(metrics.icc(p + 2., t), metrics.icc(p, t),
                             rtol=1e-5)
  assert metrics.ccc(p + 2., t) < metrics.icc(p + 2., t) - 0.1


def test_mask_ignores_entries_even_nan():
  p = np.concatenate([P, [np.nan, 100.]])
  t = np.concatenate([T, [5., np.nan]])
  mask = np.array([1, 1, 1, 1, 0, 0], bool)
  for fn in (metrics.mse, metrics.rmse, metrics.mae, metrics.pcc, metrics.ccc,
             metrics.icc):
    np.testing.assert_allclose(fn(p, t, mask), fn(P, T), rtol=1e-6)


def test_float_weights_equal_repetition():
  # Weight 2 on a sample = that sample twice.
  w = np.array([1., 2., 1., 1.])
  rep_p, rep_t = np.array([1., 2., 2., 3., 4.]), np.array([1., 3., 3., 2., 5.])
  for fn in (metrics.mse, metrics.pcc, metrics.ccc, metrics.icc):
    np.testing.assert_allclose(fn(P, T, w), fn(rep_p, rep_t), rtol=1e-5)


def test_per_entry_mask_on_columns():
  p = np.stack([P, P[::-1]], axis=1)
  t = np.stack([T, T[::-1]], axis=1)
  mask = np.ones((4, 2), bool)
  mask[0, 1] = False  # drop one arousal entry only
  got = metrics.mse(p, t, mask)
  np.testing.assert_allclose(got[0], 0.75, rtol=1e-6)
  # Column 1 without its first entry (P[::-1][0] - T[::-1][0] = 4 - 5):
  # errors [1, -1, 0] -> 2/3.
  np.testing.assert_allclose(got[1], 2 / 3, rtol=1e-6)


def test_undefined_is_nan():
  assert np.isnan(metrics.pcc(np.ones(4), T))
  assert np.isnan(metrics.mse(P, T, np.zeros(4)))


def test_jit_and_jax_inputs():
  p, t = jnp.asarray(P), jnp.asarray(T)
  np.testing.assert_allclose(jax.jit(metrics.ccc)(p, t, jnp.ones(4)), 11 / 14,
                             rtol=1e-6)
  conf = jax.jit(metrics.confusion_matrix, static_argnums=2)(
      jnp.array([0, 1]), jnp.array([0, 0]), 2)
  np.testing.assert_array_equal(conf, [[1, 1], [0, 0]])


# Hand example, 3 classes. labels -> pred:
#   0->0, 0->1, 1->1, 1->1, 1->2, 2->2, 2->0, missing(-1)->2.
LABELS = np.array([0, 0, 1, 1, 1, 2, 2, -1])
PRED = np.array([0, 1, 1, 1, 2, 2, 0, 2])
CONF = [[1, 1, 0],
        [0, 2, 1],
        [1, 0, 1]]


def test_confusion_matrix_and_recall():
  conf = metrics.confusion_matrix(PRED, LABELS, 3)
  np.testing.assert_array_equal(conf, CONF)
  np.testing.assert_allclose(metrics.per_class_recall(conf),
                             [1 / 2, 2 / 3, 1 / 2])
  # The missing label (-1) is not counted: 4 correct out of 7.
  np.testing.assert_allclose(metrics.accuracy(PRED, LABELS), 4 / 7)
  # Logits give the same as their argmax.
  logits = np.eye(3)[PRED] * 3. - 1.
  np.testing.assert_allclose(metrics.accuracy(logits, LABELS), 4 / 7)
  np.testing.assert_array_equal(
      metrics.confusion_matrix(logits, LABELS, 3), CONF)


def test_classification_mask():
  mask = np.array([1, 1, 1, 1, 1, 1, 0, 1], bool)  # drop 2->0
  np.testing.assert_allclose(metrics.accuracy(PRED, LABELS, mask), 4 / 6)
  conf = metrics.confusion_matrix(PRED, LABELS, 3, mask)
  np.testing.assert_array_equal(conf[2], [0, 0, 1])


def test_one_vs_rest_accuracy_matches_binary():
  # Class 0 from CONF (N = 7): TP 1, FN 1, FP 1 -> TN 4, (1 + 4) / 7.
  # Class 1: TP 2, FN 1, FP 1 -> TN 3, 5/7. Class 2: TP 1, FN 1, FP 1 -> 5/7.
  np.testing.assert_allclose(metrics.one_vs_rest_accuracy(np.array(CONF)),
                             [5 / 7, 5 / 7, 5 / 7])
  valid = LABELS >= 0
  got = metrics.per_class_accuracy_binary(
      np.eye(3)[PRED[valid]], np.eye(3)[LABELS[valid]])
  np.testing.assert_allclose(got, [5 / 7, 5 / 7, 5 / 7], rtol=1e-6)


def test_binary_multilabel_and_f1():
  # 4 samples x 3 AUs; -1 = not annotated.
  pred = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]])
  labels = np.array([[1, 0, 0], [0, 1, 0], [1, -1, 0], [0, 1, 0]])
  # AU0: TP 1, FP 1, FN 1, TN 1 -> acc 2/4, F1 2/(2+1+1) = .5.
  # AU1 (3 annotated): TP 2, FP 0, FN 0, TN 1 -> acc 1, F1 1.
  # AU2: all negative, none predicted -> acc 1, F1 defined as 0.
  np.testing.assert_allclose(metrics.per_class_accuracy_binary(pred, labels),
                             [0.5, 1., 1.])
  np.testing.assert_allclose(metrics.f1_per_class(pred, labels), [0.5, 1., 0.])
  # A per-sample mask dropping sample 1 turns AU0 into TP 1, FN 1, TN 1.
  mask = np.array([1, 0, 1, 1], bool)
  np.testing.assert_allclose(
      metrics.per_class_accuracy_binary(pred, labels, mask)[0], 2 / 3)
  np.testing.assert_allclose(metrics.f1_per_class(pred, labels, mask)[0], 2 / 3)


def test_regression_report():
  p = np.stack([P, 2 * P], axis=1)
  t = np.stack([T, 2 * T], axis=1)
  rep = metrics.regression_report(p, t)
  assert set(rep) == {f'{n}/{m}' for n in ('valence', 'arousal')
                      for m in ('mse', 'rmse', 'mae', 'pcc', 'ccc', 'icc')}
  assert all(isinstance(v, float) for v in rep.values())
  assert rep['valence/mse'] == pytest.approx(0.75)
  assert rep['arousal/mse'] == pytest.approx(3.)  # errors doubled
  assert rep['valence/ccc'] == pytest.approx(11 / 14)
  assert rep['arousal/icc'] == pytest.approx(0.8)  # scale-invariant
  with pytest.raises(ValueError):
    metrics.regression_report(p, t, names=('valence',))


def test_classification_report():
  logits = np.eye(3)[PRED]
  rep = metrics.classification_report(logits, LABELS, ('a', 'b', 'c'))
  assert rep['accuracy'] == pytest.approx(4 / 7)
  assert rep['recall/b'] == pytest.approx(2 / 3)
  assert rep['mean_recall'] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
  assert rep['confusion_matrix'] == CONF
  assert all(isinstance(v, int) for row in rep['confusion_matrix'] for v in row)
