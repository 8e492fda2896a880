"""AUs a dataset does not code (labels.AU_MISSING = -1) carry no loss or score."""
import jax.numpy as jnp
import numpy as np

from fer_jax.data import labels
from fer_jax.tasks import get_task


def test_affect_au_loss_and_f1_skip_uncoded_aus():
  n = len(labels.AUS)
  aus = np.zeros((2, n), np.float32)
  aus[0, 0], aus[0, 1:3] = 1.0, labels.AU_MISSING   # AU1 on; AU2, AU4 not coded
  aus[1, :] = labels.AU_MISSING
  aus[1, 1] = aus[1, 3] = 1.0                       # AU2 and AU5 coded, on
  logits = np.zeros((2, n), np.float32)
  logits[0, 1:3] = 50.0  # confident on sample 0's uncoded AUs: must not matter
  logits[1, 1], logits[1, 3] = 50.0, -50.0
  batch = {'aus': jnp.asarray(aus), 'has_aus': jnp.ones(2, bool)}
  task = get_task('affect', targets=('aus',))
  loss, _ = task.loss(jnp.asarray(logits), batch)
  # Hand value: sample 0 codes n - 2 AUs, all at logit 0 (log 2 each); sample 1
  # codes AU2 (logit 50, on: ~0) and AU5 (logit -50, on: 50).
  np.testing.assert_allclose(float(loss), (np.log(2.0) * (n - 2) + 50.0) / 2,
                             rtol=1e-6)
  pred = {'aus': 1 / (1 + np.exp(-logits))}
  rep = task.report(pred, {'aus': aus, 'has_aus': np.ones(2, bool)})
  # AU2: one TP (sample 1); sample 0's "on" for the uncoded AU2 is no FP.
  assert rep['aus/f1/AU2'] == 1.0
  assert rep['aus/f1/AU5'] == 0.0  # coded on, predicted off: one FN


def test_union_label_mask_drops_uncoded_aus():
  n = len(labels.AUS)
  aus = np.zeros(n, np.float32)
  aus[0], aus[5] = 1.0, labels.AU_MISSING
  y, m = labels.union_targets({'aus': aus, 'has_aus': True, 'expression': -1,
                               'has_expression': False}, ('expression', 'aus'))
  sl = labels.group_slices(('expression', 'aus'))['aus']
  assert y[sl][0] == 1.0 and y[sl][5] == 0.0
  assert m[sl].tolist() == [True] * 5 + [False] + [True] * (n - 6)
  assert not m[labels.group_slices(('expression', 'aus'))['expression']].any()


def test_classical_multitask_au_loss_skips_uncoded_aus():
  # Against a -1 target the sigmoid cross-entropy is unbounded below: driving
  # an uncoded AU's logit to -100 must not lower the loss at all.
  n = len(labels.AUS)
  task = get_task('classical_multitask', heads=(('expression',), ('aus',)))
  aus = np.zeros((1, n), np.float32)
  aus[0, :2] = 1.0
  aus[0, 2:5] = labels.AU_MISSING               # three AUs not coded
  batch = {'aus': jnp.asarray(aus), 'has_aus': jnp.ones(1, bool),
           'expression': jnp.full(1, -1), 'has_expression': jnp.zeros(1, bool),
           'dataset_id': jnp.ones(1, jnp.int32)}
  losses = []
  for uncoded_logit in (0.0, -20.0, -100.0):
    out = np.zeros((1, 7 + n), np.float32)
    out[0, 7:9] = 2.0                          # the two coded-on AUs
    out[0, 7 + 2:7 + 5] = uncoded_logit
    loss, aux = task.loss(jnp.asarray(out), batch)
    losses.append(float(loss))
    assert float(aux['loss/head1/aus']) == float(loss)
  # Hand value over the coded AUs alone: two on at logit 2 (log(1 + e^-2)
  # each), the n - 5 others off at logit 0 (log 2 each).
  expected = 2 * np.log1p(np.exp(-2.0)) + (n - 5) * np.log(2.0)
  np.testing.assert_allclose(losses, [expected] * 3, rtol=1e-6)
