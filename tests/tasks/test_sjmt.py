"""SJMT and classical multi-task losses, predictions and reports (003)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax.data import labels
from fer_jax.evaluate import multitask_report as mr
from fer_jax.tasks import get_task


def _log_sigmoid(z):
  return -np.log1p(np.exp(-z))


def _batch():
  """Sample 0 expression-only (class 2), 1 AU-only, 2 expression-only (class 5)."""
  aus = np.zeros((3, 14), np.float32)
  aus[1, [0, 3, 7]] = 1
  return {'expression': np.array([2, -1, 5], np.int32),
          'compound': np.full(3, -1, np.int32), 'aus': aus,
          'has_expression': np.array([True, False, True]),
          'has_aus': np.array([False, True, False]),
          'has_compound': np.zeros(3, bool), 'dataset_id': np.array([0, 1, 0])}


def _with_mixture_labels(b):
  b = dict(b)
  b['labels'], b['label_mask'] = labels.union_targets(
      b, ('expression', 'aus'), None)
  return b


def test_sjmt_loss_equals_hand_computed_value():
  task = get_task('sjmt', groups=('expression', 'aus'))
  assert task.num_outputs == 21
  z = np.random.default_rng(0).normal(size=(3, 21)).astype(np.float32)
  b = _batch()
  want = 0.0
  for i, (lo, hi) in enumerate([(0, 7), (7, 21), (0, 7)]):
    y = np.zeros(21)
    if i == 1:
      y[7:] = b['aus'][1]
    else:
      y[b['expression'][i]] = 1
    zz, yy = z[i, lo:hi].astype(np.float64), y[lo:hi]
    want -= np.sum(yy * _log_sigmoid(zz) + (1 - yy) * _log_sigmoid(-zz))
  want /= 3  # mean over the samples
  for batch in (b, _with_mixture_labels(b)):  # has_* fields or mixture labels
    got, aux = task.loss(jnp.asarray(z), {k: jnp.asarray(v) for k, v in batch.items()})
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    assert set(aux) == {'loss/expression', 'loss/aus'}


def test_sjmt_gradient_is_exactly_zero_outside_own_dataset():
  task = get_task('sjmt', groups=('expression', 'aus'))
  z = jnp.asarray(np.random.default_rng(1).normal(size=(3, 21)) * 30, jnp.float32)
  b = {k: jnp.asarray(v) for k, v in _with_mixture_labels(_batch()).items()}
  g = np.asarray(jax.grad(lambda o: task.loss(o, b)[0])(z))
  own = np.asarray(b['label_mask']).astype(bool)
  assert np.all(g[~own] == 0.0)  # exactly, not approximately
  assert np.all(g[own] != 0.0)
  # Padding (mask 0) gets no gradient either.
  g = np.asarray(jax.grad(lambda o: task.loss(o, b, mask=jnp.array([1, 1, 0]))[0])(z))
  assert np.all(g[2] == 0.0)


def test_sjmt_predicts_every_label_for_every_image():
  task = get_task('sjmt', groups=('expression', 'aus', 'compound'))
  pred = task.predict(jnp.zeros((4, task.num_outputs)))
  assert {k: v.shape for k, v in pred.items()} == {
      'expression': (4, 7), 'aus': (4, 14), 'compound': (4, 15)}


def test_sjmt_rejects_labels_of_another_layout():
  task = get_task('sjmt', groups=('expression',))
  with pytest.raises(ValueError, match='needs 7'):
    task.loss(jnp.zeros((3, 7)), _with_mixture_labels(_batch()))


def test_classical_loss_uses_each_samples_own_head():
  task = get_task('classical_multitask', heads=(('expression',), ('aus',)))
  z = np.random.default_rng(2).normal(size=(3, 21)).astype(np.float32)
  b = _batch()
  def ce(logits, k):
    logits = logits.astype(np.float64)
    return np.log(np.sum(np.exp(logits))) - logits[k]
  want_expr = (ce(z[0, :7], 2) + ce(z[2, :7], 5)) / 2
  y = b['aus'][1]
  zz = z[1, 7:].astype(np.float64)
  want_aus = -np.sum(y * _log_sigmoid(zz) + (1 - y) * _log_sigmoid(-zz))
  jb = {k: jnp.asarray(v) for k, v in b.items()}
  got, aux = task.loss(jnp.asarray(z), jb)
  np.testing.assert_allclose(float(aux['loss/head0/expression']), want_expr, rtol=1e-5)
  np.testing.assert_allclose(float(aux['loss/head1/aus']), want_aus, rtol=1e-5)
  np.testing.assert_allclose(float(got), want_expr + want_aus, rtol=1e-5)
  g = np.asarray(jax.grad(lambda o: task.loss(o, jb)[0])(jnp.asarray(z)))
  assert np.all(g[[0, 2], 7:] == 0) and np.all(g[1, :7] == 0)
  # Without dataset_id (evaluating one dataset) the has_* flags decide.
  del jb['dataset_id']
  np.testing.assert_allclose(float(task.loss(jnp.asarray(z), jb)[0]), float(got),
                             rtol=1e-6)
  pred = task.predict(jnp.asarray(z))
  np.testing.assert_allclose(np.asarray(pred['expression']).sum(-1), 1, rtol=1e-5)


def test_reports_share_the_affect_task_keys():
  rng = np.random.default_rng(3)
  n = 50
  b = {'expression': rng.integers(0, 7, n), 'has_expression': np.ones(n, bool),
       'aus': (rng.random((n, 14)) < 0.3).astype(np.float32),
       'has_aus': np.ones(n, bool), 'compound': rng.integers(0, 15, n),
       'has_compound': np.ones(n, bool)}
  pred = {'expression': np.eye(7)[b['expression']], 'aus': b['aus'],
          'compound': np.eye(15)[b['compound']]}
  rep = get_task('sjmt', groups=('expression', 'aus', 'compound')).report(pred, b)
  assert rep['expression/accuracy'] == 1.0 and rep['compound/accuracy'] == 1.0
  assert rep['expression/per_class_accuracy_mean'] == 1.0
  assert rep['compound/per_class_accuracy_mean'] == 1.0
  assert rep['aus/accuracy_mean'] == 1.0 and rep['aus/f1_mean'] == 1.0
  affect = get_task('affect', targets=('expression', 'aus'))
  shared = set(affect.report(pred, b)) & set(rep)
  assert {'expression/accuracy', 'aus/f1_mean', 'aus/f1/AU1'} <= shared
  # A group nobody carries is left out rather than reported as NaN.
  b['has_aus'][:] = False
  assert 'aus/f1_mean' not in get_task('sjmt').report(pred, b)


def test_au_by_expression_table_and_heatmap(tmp_path):
  expr = np.eye(7)[[0, 0, 3]]
  aus = np.array([[1.0] * 14, [0.0] * 14, [0.5] * 14])
  table, counts = mr.au_by_expression(expr, aus)
  np.testing.assert_array_equal(counts, [2, 0, 0, 1, 0, 0, 0])
  np.testing.assert_allclose(table[0], 0.5)
  np.testing.assert_allclose(table[3], 0.5)
  assert np.isnan(table[1]).all()
  assert 'surprise' in mr.au_table_text(table, counts)
  path = os.path.join(tmp_path, 'fig2.png')
  mr.plot_au_heatmap(table, path)
  assert os.path.getsize(path) > 1000
