"""Paper 000's result pipeline, unit by unit, on tiny hand-made tables (no
training): folds and plan (no test frame, no frame of a test clip, in any
training set), the sweep's prefixes of the sampler's order, the engine's
evaluation, the model and Transfer 0% rows, RMSE averaged per fold, then per
subject, then over subjects, and the files and plots written from them."""
import csv
import json
import math
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from fer_jax.protocols.personal import data as personal_data
from fer_jax.protocols.personal import plan as plan_lib
from fer_jax.protocols.personal import report
from fer_jax.train import batched

# (subject, clip, frame) of every frame, rows shuffled so that no code can rely
# on a subject's frames being contiguous or in clip order. Subject 2 is outside
# the study.
_FRAMES = [
    (0, 10, 0), (0, 10, 1), (0, 10, 2), (0, 11, 0), (0, 11, 1), (0, 12, 0),
    (0, 12, 1), (0, 13, 0),
    (1, 20, 0), (1, 20, 1), (1, 21, 0), (1, 21, 1), (1, 22, 0), (1, 22, 1),
    (2, 30, 0), (2, 31, 0), (2, 32, 0)]
_PERM = np.random.default_rng(3).permutation(len(_FRAMES))


def _data(labels=None) -> personal_data.PersonalData:
  f = np.asarray(_FRAMES)[_PERM]
  n = len(f)
  if labels is None:
    labels = np.zeros((n, 2), np.float32)
  return personal_data.PersonalData(images=np.zeros((n, 1, 1, 1), np.float32),
                         labels=np.asarray(labels, np.float32), subject=f[:, 0],
                         clip=f[:, 1], frame=f[:, 2])


def _row(subject, clip, frame) -> int:
  """The row of frame (subject, clip, frame) in `_data()`."""
  return int(np.flatnonzero(_PERM == _FRAMES.index((subject, clip, frame)))[0])


def _rows(*frames):
  return np.sort([_row(*f) for f in frames])


def _config(**kw):
  c = dict(folds=2, seed=0, fold_by='clip', samplers=('random',),
           fractions=(0.5,), conditions=plan_lib.CONDITIONS)
  c.update(kw)
  return ml_collections.ConfigDict(c)


def _nets(*targets):
  """Stand-ins for pre-trained nets: the pipeline reads only their targets."""
  return [types.SimpleNamespace(targets=t) for t in targets]


# ----------------------------------------------------------- folds and plan


@pytest.mark.parametrize('folds', [2, 3])
def test_no_test_frame_or_frame_of_a_test_clip_is_ever_trained_on(folds):
  config = _config(folds=folds, samplers=('random', 'mcdue'),
                   fractions=(0.3, 1.0))
  data = _data()
  subjects = np.array([0, 1])
  fold = personal_data.make_folds(config, data, subjects)
  assert (fold[data.subject == 2] == -1).all()
  n = len(data.subject)
  rng = np.random.default_rng(0)
  mc = [rng.normal(size=(4, n, 2)).astype(np.float32)]
  orders = plan_lib.selection_orders(config, _nets(('valence', 'arousal')), [None],
                               [None], mc, data, fold, subjects,
                               jax.random.key(0))
  plan = plan_lib.build_plan(config, _nets(('valence', 'arousal')), data, fold,
                       subjects, orders)
  # Per subject and fold: 1 Transfer 100%, 2 samplers x 2 fractions, 1 No
  # Transfer.
  assert len(plan) == 2 * folds * 6
  for i in range(len(plan)):
    s, k = plan.subject[i], plan.fold[i]
    train, test = set(plan.train[i].tolist()), set(plan.test[i].tolist())
    own = set(np.flatnonzero(data.subject == s).tolist())
    assert test and train and train <= own and test <= own, i
    assert not train & test, (i, plan.condition[i])
    # Whole clips: no frame of a test clip is in training.
    assert not (set(data.clip[list(train)]) & set(data.clip[list(test)])), i
    assert (fold[list(test)] == k).all() and (fold[list(train)] != k).all(), i
    if plan.condition[i] != 'sweep':  # the whole training fold
      assert train | test == own, i
  for (b, s, k, name), order in orders.items():
    pool = np.flatnonzero((data.subject == s) & (fold != k))
    assert sorted(order.tolist()) == pool.tolist(), (s, k, name)


def test_frame_folds_are_contiguous_blocks_in_clip_frame_order():
  # by='frames': 6 frames of subject 1 in (clip, frame) order, 3 blocks of 2
  # (here each block is one clip); subject 0's 8 frames in 2 blocks of 4,
  # which cut clip 11 in two (the fallback does not keep clips whole).
  config = _config(folds=3, fold_by='frames')
  data = _data()
  fold = personal_data.make_folds(config, data, np.array([1]))
  want = {(1, 20, 0): 0, (1, 20, 1): 0, (1, 21, 0): 1, (1, 21, 1): 1,
          (1, 22, 0): 2, (1, 22, 1): 2}
  got = {f: int(fold[_row(*f)]) for f in _FRAMES if f[0] == 1}
  assert got == want
  assert (fold[data.subject != 1] == -1).all()
  config = _config(folds=2, fold_by='frames')
  fold = personal_data.make_folds(config, data, np.array([0]))
  first = [(0, 10, 0), (0, 10, 1), (0, 10, 2), (0, 11, 0)]
  for f in _FRAMES:
    if f[0] == 0:
      assert fold[_row(*f)] == (0 if f in first else 1), f
  plan = plan_lib.build_plan(_config(folds=2, fold_by='frames', samplers=()),
                       _nets(('valence', 'arousal')), data, fold,
                       np.array([0]), {})
  # Test fold 0 = the first block, trained on the second, and back.
  assert plan.condition == ['transfer_100', 'transfer_100', 'no_transfer',
                            'no_transfer']
  np.testing.assert_array_equal(plan.test[0], _rows(*first))
  np.testing.assert_array_equal(
      plan.train[0], _rows(*[f for f in _FRAMES if f[0] == 0 and f not in first]))
  np.testing.assert_array_equal(plan.train[1], plan.test[0])
  np.testing.assert_array_equal(plan.train[2], plan.train[0])


# Subject 1's frames with fold_by='frames' and 3 folds: fold k = clip 20 + k.
# MCDUE's uncertainty per frame: two dropout passes +s and -s give std s.
_STD = {(1, 20, 0): 0.1, (1, 20, 1): 0.9, (1, 21, 0): 0.5, (1, 21, 1): 0.2,
        (1, 22, 0): 0.7, (1, 22, 1): 0.3}


def _mcdue_study(fractions):
  config = _config(folds=3, fold_by='frames', samplers=('mcdue',),
                   fractions=fractions, conditions=('transfer_100',))
  data = _data()
  subjects = np.array([1])
  fold = personal_data.make_folds(config, data, subjects)
  s = np.zeros(len(data.subject), np.float32)
  for f, v in _STD.items():
    s[_row(*f)] = v
  mc = [np.stack([s, -s])[:, :, None]]  # [T=2, N, P=1]
  nets = _nets(('valence',))
  orders = plan_lib.selection_orders(config, nets, [None], [None], mc, data, fold,
                               subjects, jax.random.key(0))
  return orders, plan_lib.build_plan(config, nets, data, fold, subjects, orders)


def test_mcdue_orders_the_training_fold_by_descending_dropout_std():
  orders, _ = _mcdue_study((1.0,))
  # Fold 0 tests clip 20: the pool is clips 21 and 22, by std 0.7 0.5 0.3 0.2.
  want = {0: [(1, 22, 0), (1, 21, 0), (1, 22, 1), (1, 21, 1)],
          1: [(1, 20, 1), (1, 22, 0), (1, 22, 1), (1, 20, 0)],
          2: [(1, 20, 1), (1, 21, 0), (1, 21, 1), (1, 20, 0)]}
  for k, frames in want.items():
    assert orders[(0, 1, k, 'mcdue')].tolist() == [_row(*f) for f in frames], k


def test_each_fraction_trains_on_a_prefix_of_the_samplers_order():
  # 4 training frames per fold: 0.125 -> 0.5 rounds up to 1, 0.3 -> 1.2 to 1,
  # 0.375 -> 1.5 up to 2, 0.75 -> 3, 1.0 -> all 4.
  fractions = (0.125, 0.3, 0.375, 0.75, 1.0)
  orders, plan = _mcdue_study(fractions)
  first = [(1, 22, 0), (1, 21, 0), (1, 22, 1), (1, 21, 1)]  # fold 0's order
  want = {0.125: first[:1], 0.3: first[:1], 0.375: first[:2], 0.75: first[:3],
          1.0: first}
  sweep = [i for i in range(len(plan))
           if plan.condition[i] == 'sweep' and plan.fold[i] == 0]
  assert [plan.fraction[i] for i in sweep] == list(fractions)
  for i in sweep:
    np.testing.assert_array_equal(plan.train[i],
                                  _rows(*want[plan.fraction[i]]))
    np.testing.assert_array_equal(plan.test[i],
                                  _rows((1, 20, 0), (1, 20, 1)))
  # Every fold: fraction f trains on the first round-half-up(f * n) of the
  # order the sampler returned.
  for i in range(len(plan)):
    if plan.condition[i] != 'sweep':
      continue
    order = orders[(0, 1, plan.fold[i], 'mcdue')]
    m = math.floor(plan.fraction[i] * len(order) + 0.5)
    np.testing.assert_array_equal(plan.train[i], np.sort(order[:m]))


def test_random_order_is_the_same_for_every_net_and_prefixes_nest():
  config = _config(folds=2, samplers=('random',), fractions=(0.25, 0.5, 1.0))
  data = _data()
  subjects = np.array([0, 1])
  fold = personal_data.make_folds(config, data, subjects)
  nets = _nets(('valence',), ('arousal',))
  orders = plan_lib.selection_orders(config, nets, [None, None], [None, None],
                               [None, None], data, fold, subjects, jax.random.key(5))
  for s in (0, 1):
    for k in range(2):
      np.testing.assert_array_equal(orders[(0, s, k, 'random')],
                                    orders[(1, s, k, 'random')])
  plan = plan_lib.build_plan(config, nets, data, fold, subjects, orders)
  by = {}
  for i in range(len(plan)):
    if plan.condition[i] == 'sweep':
      by.setdefault((plan.net[i], plan.subject[i], plan.fold[i]), []).append(
          set(plan.train[i].tolist()))
  for key, sets in by.items():
    assert sets[0] <= sets[1] <= sets[2], key
    assert len(sets[0]) < len(sets[2]), key


# ------------------------------------------------------------- evaluation


def test_engine_evaluate_sums_squared_errors_over_valid_test_rows_only():
  # Two linear models pred = w * x on 1-d features; model 1 reads the second
  # feature and label blocks (offset 4).
  apply = lambda p, e, x, keys, train: (p['w'] * x, e)  # noqa: E731
  trainer = batched.BatchedTrainer(apply, optax.sgd(0.1), batched.Recipe(2, 1))
  x = np.array([[1.], [2.], [3.], [4.], [10.], [20.], [30.], [40.]], np.float32)
  y = np.array([[1.], [1.], [2.], [2.], [5.], [6.], [7.], [8.]], np.float32)
  state = trainer.init({'w': jnp.array([2., 1.])}, {})
  rows = np.array([[0, 2, 3], [1, 3, 0]], np.int32)
  valid = np.array([[True, True, False], [True, True, True]])
  sse, count, pred = trainer.evaluate(state, jnp.asarray(x), jnp.asarray(y),
                                      rows, valid, np.array([0, 4], np.int32),
                                      np.array([0, 4], np.int32))
  # Model 0: rows 0, 2: (2 - 1)^2 + (6 - 2)^2 = 17; row 3 is padding.
  # Model 1: rows 5, 7, 4: (20 - 6)^2 + (40 - 8)^2 + (10 - 5)^2 = 1245.
  np.testing.assert_allclose(sse, [[17.], [1245.]])
  np.testing.assert_array_equal(count, [2, 3])
  np.testing.assert_allclose(pred[1, :, 0], [20., 40., 10.])


def test_model_rows_give_each_target_the_rmse_of_its_test_fold():
  plan = plan_lib.Plan()
  common = dict(kind='head', net=0, sampler='', fraction=1.0)
  plan.add(subject=0, fold=0, condition='transfer_100', train=np.arange(3),
           test=np.arange(3, 5), **common)
  plan.add(subject=0, fold=1, condition='transfer_100', train=np.arange(2),
           test=np.arange(2, 6), **common)
  done = {0: dict(sse=np.array([2., 8.]), count=2, loss=0.25),
          1: dict(sse=np.array([36., 4.]), count=4, loss=0.5)}
  t0 = [dict(target='valence', condition='transfer_0', rmse=9.)]
  rows = report.model_rows(plan, done, _nets(('valence', 'arousal')), t0)
  assert rows[0] is t0[0]
  got = [(r['target'], r['fold'], r['rmse'], r['n_train'], r['n_test'],
          r['final_loss'], r['model_id']) for r in rows[1:]]
  # sqrt(sse / count) per output.
  assert got == [('valence', 0, 1., 3, 2, 0.25, 0), ('arousal', 0, 2., 3, 2, 0.25, 0),
                 ('valence', 1, 3., 2, 4, 0.5, 1), ('arousal', 1, 1., 2, 4, 0.5, 1)]


# Transfer 0% on twin nets: per (subject, fold) the errors of each net's output
# against its own label column, chosen so that every fold's RMSE is exact.
_ERR = {  # (subject, fold): (valence errors, arousal errors)
    (0, 0): ([1., -1.], [0., 0.]),    # RMSE 1, 0
    (0, 1): ([3.], [1.]),             # 3, 1
    (1, 0): ([2., -2.], [3., -3.]),   # 2, 3
    (1, 1): ([4.], [0.]),             # 4, 0
}
_T0_FRAMES = {(0, 0): [(0, 10, 0), (0, 10, 1)], (0, 1): [(0, 11, 0)],
              (1, 0): [(1, 20, 0), (1, 20, 1)], (1, 1): [(1, 21, 0)]}


def _transfer0_rows():
  n = len(_FRAMES)
  rng = np.random.default_rng(1)
  labels = rng.normal(size=(n, 2)).astype(np.float32)
  data = _data(labels)
  fold = np.full(n, -1, np.int32)
  out_v, out_a = np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32)
  for (s, k), frames in _T0_FRAMES.items():
    ev, ea = _ERR[(s, k)]
    for f, e_v, e_a in zip(frames, ev, ea):
      r = _row(*f)
      fold[r] = k
      out_v[r, 0] = labels[r, 0] + e_v
      out_a[r, 0] = labels[r, 1] + e_a
  # Frames with fold -1 (not in any test fold) must not count anywhere.
  out_v[fold == -1] = out_a[fold == -1] = 100.
  return report.transfer0_rows(_nets(('valence',), ('arousal',)), [out_v, out_a],
                           data, fold, np.array([0, 1]), 2)


def test_transfer_0_rows_compare_each_nets_output_with_its_own_target():
  rows = _transfer0_rows()
  got = {(r['target'], r['subject'], r['fold']): r['rmse'] for r in rows}
  want = {('valence', 0, 0): 1., ('valence', 0, 1): 3., ('valence', 1, 0): 2.,
          ('valence', 1, 1): 4., ('arousal', 0, 0): 0., ('arousal', 0, 1): 1.,
          ('arousal', 1, 0): 3., ('arousal', 1, 1): 0.}
  assert got.keys() == want.keys()
  for k in want:
    assert got[k] == pytest.approx(want[k], abs=1e-6), k
  for r in rows:
    assert (r['condition'], r['sampler'], r['fraction'], r['n_train'],
            r['model_id']) == ('transfer_0', '', 0.0, 0, -1)
    assert r['n_test'] == len(_T0_FRAMES[(r['subject'], r['fold'])])


def test_rmse_is_averaged_per_fold_then_per_subject_then_over_subjects():
  summary = report.summarize(_transfer0_rows())
  got = {r['target']: r for r in summary}
  # Valence: subject 0 (1 + 3) / 2 = 2, subject 1 (2 + 4) / 2 = 3: mean 2.5,
  # std over subjects 0.5. (Pooling the frames would give subject 0
  # sqrt(11 / 3) = 1.91; the std over the 4 folds would be 1.12.)
  # Arousal: subjects 0.5 and 1.5: mean 1, std 0.5.
  for t, (mean, std, lo, hi) in {'valence': (2.5, 0.5, 2., 3.),
                                 'arousal': (1., 0.5, .5, 1.5)}.items():
    r = got[t]
    np.testing.assert_allclose(
        [r['rmse_mean'], r['rmse_std'], r['rmse_min'], r['rmse_max']],
        [mean, std, lo, hi], atol=1e-6, err_msg=t)
    assert (r['condition'], r['subjects'], r['n_train']) == ('transfer_0', 2, 0)


def test_summary_keeps_conditions_samplers_and_fractions_apart():
  rows = []
  for s, k, rmse in [(0, 0, 1.), (0, 1, 2.), (1, 0, 4.), (1, 1, 4.)]:
    for cond, sampler, frac, r, n in [('transfer_100', '', 1.0, rmse, 10),
                                      ('sweep', 'random', 0.5, 2 * rmse, 5),
                                      ('sweep', 'random', 0.1, 3 * rmse, 1),
                                      ('sweep', 'gsx', 0.1, rmse + 1, 1),
                                      ('no_transfer', '', 1.0, rmse + 2, 10)]:
      rows.append(dict(target='arousal', condition=cond, sampler=sampler,
                       fraction=frac, subject=s, fold=k, n_train=n + s,
                       rmse=r))
  summary = report.summarize(rows)
  # Subjects 1.5 and 4: mean 2.75, std 1.25 (times 2, 3, plus 1, plus 2).
  got = [(r['condition'], r['sampler'], r['fraction'], r['rmse_mean'],
          r['rmse_std'], r['n_train']) for r in summary]
  assert got == [('no_transfer', '', 1.0, 4.75, 1.25, 10.5),
                 ('transfer_100', '', 1.0, 2.75, 1.25, 10.5),
                 ('sweep', 'gsx', 0.1, 3.75, 1.25, 1.5),
                 ('sweep', 'random', 0.1, 8.25, 3.75, 1.5),
                 ('sweep', 'random', 0.5, 5.5, 2.5, 5.5)]


# ------------------------------------------------------------ files, plots


def _sweep_rows():
  """Model rows of 2 subjects x 2 folds, valence and arousal; the summary's
  expected mean / std per (target, condition, sampler, fraction)."""
  rows, want = [], {}
  per_subject = {  # condition, sampler, fraction -> (subject 0, subject 1)
      ('transfer_0', '', 0.0): (0.6, 0.8),
      ('transfer_100', '', 1.0): (0.3, 0.5),
      ('no_transfer', '', 1.0): (0.4, 0.6),
      ('sweep', 'random', 0.1): (0.5, 0.7),
      ('sweep', 'random', 0.5): (0.35, 0.55),
      ('sweep', 'mcdue', 0.1): (0.45, 0.75),
      ('sweep', 'mcdue', 0.5): (0.25, 0.45)}
  for ti, t in enumerate(personal_data.TARGETS):
    for (cond, sampler, frac), means in per_subject.items():
      means = [m + ti for m in means]  # arousal: one more
      for s, m in enumerate(means):
        for k, d in enumerate((-0.1, 0.1)):  # fold RMSEs average to m
          rows.append(dict(target=t, condition=cond, sampler=sampler,
                           fraction=frac, subject=s, fold=k, n_train=8,
                           n_test=2, rmse=m + d, final_loss=0.1,
                           model_id=len(rows)))
      want[(t, cond, sampler, frac)] = (np.mean(means), np.std(means))
  return rows, want


def _capture_figures(monkeypatch):
  """The figures the plot functions close, kept open for a look."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  figs = []
  monkeypatch.setattr(plt, 'close', figs.append)
  return figs


def test_results_files_hold_the_summary_of_the_model_rows(tmp_path):
  rows, want = _sweep_rows()
  summary = report.summarize(rows)
  report.write_results(str(tmp_path), _config(), summary, rows)
  with open(tmp_path / 'results.csv') as f:
    table = list(csv.DictReader(f))
  assert len(table) == len(want)
  for r in table:
    mean, std = want[(r['target'], r['condition'], r['sampler'],
                      float(r['fraction']))]
    np.testing.assert_allclose([float(r['rmse_mean']), float(r['rmse_std'])],
                               [mean, std], atol=1e-9)
    assert (r['subjects'], float(r['n_train'])) == ('2', 8.)
  with open(tmp_path / 'models.csv') as f:
    models = list(csv.DictReader(f))
  assert [(m['target'], m['condition'], m['subject'], m['fold'],
           float(m['rmse'])) for m in models] == [
               (r['target'], r['condition'], str(r['subject']), str(r['fold']),
                r['rmse']) for r in rows]
  with open(tmp_path / 'results.json') as f:
    doc = json.load(f)
  for t in personal_data.TARGETS:
    for c in plan_lib.CONDITIONS:
      frac = 0.0 if c == 'transfer_0' else 1.0
      np.testing.assert_allclose(
          [doc['conditions'][t][c]['rmse_mean'],
           doc['conditions'][t][c]['rmse_std']], want[(t, c, '', frac)],
          atol=1e-9)
  assert len(doc['rows']) == len(want)
  table = report.conditions_table(summary)
  assert '0.4000 ± 0.100' in table and '1.4000 ± 0.100' in table  # Transfer 100%


def test_sweep_plot_draws_each_samplers_means_and_the_transfer_100_line(
    tmp_path, monkeypatch):
  rows, want = _sweep_rows()
  figs = _capture_figures(monkeypatch)
  report.write_plots(str(tmp_path), report.summarize(rows))
  assert (tmp_path / 'sweep.png').stat().st_size > 0
  _, fig = figs  # conditions.png, then sweep.png
  axes = fig.axes
  assert [ax.get_title() for ax in axes] == list(personal_data.TARGETS)
  for ax, t in zip(axes, personal_data.TARGETS):
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert sorted(lines) == ['Transfer 100%', 'mcdue', 'random']
    for s in ('mcdue', 'random'):
      np.testing.assert_allclose(lines[s].get_xdata(), [10., 50.])
      np.testing.assert_allclose(
          lines[s].get_ydata(),
          [want[(t, 'sweep', s, f)][0] for f in (0.1, 0.5)], atol=1e-9)
    np.testing.assert_allclose(lines['Transfer 100%'].get_ydata(),
                               [want[(t, 'transfer_100', '', 1.0)][0]] * 2)


def test_conditions_plot_bars_are_the_condition_means_with_their_spread(
    tmp_path, monkeypatch):
  rows, want = _sweep_rows()
  figs = _capture_figures(monkeypatch)
  report.write_plots(str(tmp_path), report.summarize(rows))
  assert (tmp_path / 'conditions.png').stat().st_size > 0
  fig, _ = figs  # conditions.png, then sweep.png
  (ax,) = fig.axes
  bars = [c for c in ax.containers if hasattr(c, 'patches')]
  assert [b.get_label() for b in bars] == [report.CONDITION_NAMES[c]
                                           for c in plan_lib.CONDITIONS]
  for b, c in zip(bars, plan_lib.CONDITIONS):
    frac = 0.0 if c == 'transfer_0' else 1.0
    means = [want[(t, c, '', frac)][0] for t in personal_data.TARGETS]
    stds = [want[(t, c, '', frac)][1] for t in personal_data.TARGETS]
    np.testing.assert_allclose([p.get_height() for p in b.patches], means,
                               atol=1e-9)
    # The error bar of each bar spans mean - std .. mean + std.
    segs = b.errorbar.lines[2][0].get_segments()
    np.testing.assert_allclose([(s[0][1], s[1][1]) for s in segs],
                               [(m - d, m + d) for m, d in zip(means, stds)],
                               atol=1e-9)
