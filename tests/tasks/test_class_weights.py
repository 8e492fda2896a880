"""004's class balancing: Keras class_weight='balanced' in the expression
cross-entropy, the counts taken from the training labels (one source or a
mixture)."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from fer_jax.data import statistics
from fer_jax.tasks import get_task
from fer_jax.tasks.affect import balanced_class_weights


def _batch():
  return {'expression': jnp.asarray([0, 3, 3, 6, 2]),
          'has_expression': jnp.asarray([True, True, True, True, False])}


def _logits():
  return jnp.asarray(np.random.default_rng(0).normal(size=(5, 7)), jnp.float32)


def test_balanced_weights_are_keras_formula():
  counts = [10, 0, 5, 20, 5, 5, 5]
  # sklearn.utils.class_weight.compute_class_weight('balanced', ...): n / (k * n_c)
  # over the 6 classes present; the absent class never occurs (weight 0).
  want = [50 / (6 * 10), 0, 50 / (6 * 5), 50 / (6 * 20), 50 / 30, 50 / 30, 50 / 30]
  np.testing.assert_allclose(balanced_class_weights(counts), want, rtol=1e-6)


def test_weighted_loss_matches_a_hand_computed_one():
  counts = (10, 20, 40, 5, 5, 10, 10)
  task = get_task('affect', targets=('expression',), class_weights='balanced',
                  class_counts=counts)
  logits, batch = _logits(), _batch()
  loss, aux = task.loss(logits, batch)
  z = np.asarray(logits, np.float64)
  logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
  y = np.asarray(batch['expression'])
  w = 100 / (7 * np.asarray(counts, np.float64))
  known = np.asarray(batch['has_expression'])
  # Keras: sum_i w_{y_i} * ce_i / N over the samples that carry a label.
  hand = sum(-w[y[i]] * logp[i, y[i]] for i in range(5) if known[i]) / known.sum()
  assert float(loss) == pytest.approx(hand, rel=1e-5)
  assert float(aux['loss/expression']) == pytest.approx(hand, rel=1e-5)
  # Given weights work the same; the evaluation loss is the plain one.
  given = get_task('affect', targets=('expression',),
                   class_weights=tuple(map(float, w)))
  assert float(given.loss(logits, batch)[0]) == pytest.approx(hand, rel=1e-5)
  plain = get_task('affect', targets=('expression',))
  assert float(task.for_evaluation().loss(logits, batch)[0]) == pytest.approx(
      float(plain.loss(logits, batch)[0]), rel=1e-6)
  assert abs(float(plain.loss(logits, batch)[0]) - hand) > 1e-3


def test_class_weight_options_are_checked():
  with pytest.raises(ValueError, match='needs task.class_counts'):
    get_task('affect', targets=('expression',),
             class_weights='balanced').loss(_logits(), _batch())
  with pytest.raises(ValueError, match='7 weights'):
    get_task('affect', targets=('expression',), class_weights=(1.0, 2.0))
  with pytest.raises(ValueError, match='expression loss'):
    get_task('affect', targets=('valence',), class_weights='balanced')
  with pytest.raises(ValueError, match="'balanced'"):
    get_task('affect', targets=('expression',), class_weights='balance')


class _Labelled:
  """A source whose records carry only labels in parsed `entries` (as the
  real-dataset adapters): counting them must not read an image."""
  labels = ('expression',)

  def __init__(self, ys):
    self.entries = [{'expression': y} for y in ys]

  def __len__(self):
    return len(self.entries)

  def __getitem__(self, i):
    raise AssertionError('class counts read an image')


def test_class_counts_of_one_source_and_of_a_mixture(monkeypatch):
  from fer_jax.data import sources
  a = [0] * 6 + [1] * 2 + [6] * 2     # 10 records
  b = [1] * 20 + [3] * 10             # 30 records
  fakes = {'a': _Labelled(a), 'b': _Labelled(b)}
  monkeypatch.setattr(sources, 'get_source',
                      lambda d, split: fakes[d.source.which])
  one = ml_collections.ConfigDict({'name': 'x', 'source': {'which': 'a'},
                                   'train_split': 'train', 'train_records': 0})
  assert statistics.class_counts(one) == (6, 2, 0, 0, 0, 0, 2)
  mix = ml_collections.ConfigDict({'train_split': 'train', 'mixture': [
      dict(name='x', source=dict(which='a'), weight='size'),
      dict(name='x', source=dict(which='b'), weight='size')]})
  # 'size' weights: the concatenated datasets' counts.
  np.testing.assert_allclose(statistics.class_counts(mix), (6, 22, 0, 10, 0, 0, 2))
  mix.mixture[1]['weight'] = 30.0   # same as 'size'
  mix.mixture[0]['weight'] = 30.0   # now half of the samples from each
  np.testing.assert_allclose(statistics.class_counts(mix),
                             40 * (0.5 * np.bincount(a, minlength=7) / 10 +
                                   0.5 * np.bincount(b, minlength=7) / 30))
  mix.mixture[1]['train_records'] = 20  # the first 20 of b: all class 1
  np.testing.assert_allclose(statistics.class_counts(mix),
                             30 * (0.5 * np.bincount(a, minlength=7) / 10 +
                                   0.5 * np.eye(7)[1]))
