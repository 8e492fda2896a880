"""Early stopping and reduce-on-plateau: on fed metric sequences whose stopping
eval is known, and end to end in tiny runs (stop, restore best, lr drop, resume)."""
import json
import os

import jax
import ml_collections
import numpy as np
import pytest

from fer_jax.train import callbacks as cb


def _feed(c, values, key='val/loss'):
  return [c.update(i + 1, {key: v}) for i, v in enumerate(values)]


def test_early_stopping_stops_after_patience_evals_without_improvement():
  es = cb.EarlyStopping('val/loss', 'min', patience=2)
  stops = _feed(es, [1.0, 0.8, 0.9, 0.85, 0.7])
  assert stops == [False, False, False, True, True]
  assert es.state['best_step'] == 2 and es.state['stopped_step'] == 4


def test_early_stopping_min_delta_and_max_mode():
  es = cb.EarlyStopping('acc', 'max', patience=2, min_delta=0.05)
  # 0.52 and 0.54 do not beat 0.5 by more than 0.05: stop at the 3rd eval.
  assert _feed(es, [0.5, 0.52, 0.54], 'acc') == [False, False, True]
  es = cb.EarlyStopping('acc', 'max', patience=2, min_delta=0.05)
  assert _feed(es, [0.5, 0.56, 0.57, 0.62, 0.6, 0.6], 'acc') == [
      False, False, False, False, False, True]
  assert es.state['best'] == 0.62


def test_reduce_on_plateau_scales_after_patience_with_floor_and_cooldown():
  r = cb.ReduceLROnPlateau('val/loss', 'min', patience=2, factor=0.5, min_scale=0.2)
  scales = _feed(r, [1.0, 1.1, 1.2, 1.3, 1.4, 0.5, 1.0, 1.0, 1.0, 1.0])
  assert scales == [1, 1, .5, .5, .25, .25, .25, .2, .2, .2]
  r = cb.ReduceLROnPlateau('val/loss', 'min', patience=1, factor=0.5, cooldown=2)
  # As Keras: reduce at eval 2; cooldown 2 mutes eval 3 and the counter ends at
  # eval 4, which counts again (so reduces again with patience 1).
  assert _feed(r, [1.0] * 6) == [1, .5, .5, .25, .25, .125]


def test_from_config_defaults_and_min_lr():
  c = ml_collections.ConfigDict({'optim': {'learning_rate': 1e-2}})
  assert not cb.from_config(c, None, 'val/loss', 'min').active  # absent: no-op
  c.callbacks = {'reduce_on_plateau': {'patience': 1, 'min_lr': 1e-4},
                 'early_stopping': {'patience': 3}}
  cbs = cb.from_config(c, None, 'val/rmse_mean', 'min')
  assert cbs.reduce_on_plateau.monitor == 'val/rmse_mean'
  assert cbs.reduce_on_plateau.min_scale == pytest.approx(1e-2)
  assert cbs.early_stopping.mode == 'min'
  c.callbacks.early_stopping.monitor = 'val/ccc'
  with pytest.raises(ValueError, match='restore_best'):
    cb.from_config(c, None, 'val/rmse_mean', 'min')
  c.callbacks.typo = {}
  with pytest.raises(KeyError, match='typo'):
    cb.from_config(c, None, 'val/rmse_mean', 'min')


def _feed_at(c, steps_values, key='val/loss'):
  return [c.update(step, {key: v}) for step, v in steps_values]


def test_epoch_unit_evaluating_once_per_epoch_is_the_evaluation_count():
  # Keras evaluates once per epoch: evaluations at steps 10, 20, ... of a
  # 10-step epoch act exactly where the per-evaluation count acts.
  values = [1.0, 0.8, 0.9, 0.85, 0.7]
  per_eval = cb.EarlyStopping('val/loss', 'min', patience=2)
  per_epoch = cb.EarlyStopping('val/loss', 'min', patience=2, unit='epoch',
                                steps_per_epoch=10)
  assert _feed(per_eval, values) == _feed_at(
      per_epoch, zip(range(10, 60, 10), values)) == [False, False, False, True, True]
  assert per_epoch.state['best_step'] == 20 and per_epoch.state['stopped_step'] == 40


def test_epoch_unit_counts_epochs_when_evaluating_more_often():
  # 10-step epochs, an evaluation every 5 steps, patience 2 epochs: the best is
  # at step 10, then 5 + 5 + 5 + 5 = 20 steps without improvement: stop at 30
  # (counting evaluations, patience 2 would stop at 20).
  es = cb.EarlyStopping('val/loss', 'min', patience=2, unit='epoch',
                        steps_per_epoch=10)
  stops = _feed_at(es, [(5, 1.0), (10, 0.8), (15, 0.9), (20, 0.9), (25, 0.85),
                        (30, 0.9)])
  assert stops == [False] * 5 + [True]
  assert es.state['stopped_step'] == 30 and es.state['wait'] == 20
  # Uneven evaluations (every 7 steps; 004: every 500 steps of a 721-step
  # epoch): patience 1 epoch = 10 steps is reached at 7 + 7 = 14 steps.
  es = cb.EarlyStopping('val/loss', 'min', patience=1, unit='epoch',
                        steps_per_epoch=10)
  assert _feed_at(es, [(7, 1.0), (14, 1.0), (21, 1.0)]) == [False, False, True]
  # 004 at full size: 721-step epochs, evaluations every 500 steps, patience 5
  # epochs = 3605 steps: 8 evaluations without improvement (4000 steps).
  es = cb.EarlyStopping('val/loss', 'min', patience=5, unit='epoch',
                        steps_per_epoch=721)
  stops = _feed_at(es, [(500 * (i + 1), 1.0) for i in range(9)])
  assert stops.index(True) == 8 and es.state['stopped_step'] == 4500


def test_reduce_on_plateau_in_epochs_with_cooldown():
  # 10-step epochs, an evaluation every 5 steps, patience 1 epoch, cooldown 1
  # epoch, a flat loss. Step 5: the first value is the best. 10: wait 5.
  # 15: wait 10 -> x0.5, cooldown 10. 20: cooldown 10 - 5 = 5, nothing counts.
  # 25: cooldown 0, wait 5. 30: wait 10 -> x0.5 again.
  r = cb.ReduceLROnPlateau('val/loss', 'min', patience=1, factor=0.5, cooldown=1,
                           unit='epoch', steps_per_epoch=10)
  assert _feed_at(r, [(s, 1.0) for s in range(5, 35, 5)]) == [
      1, 1, .5, .5, .5, .25]


def test_a_non_finite_metric_is_never_an_improvement():
  nan, inf = float('nan'), float('inf')
  for mode in ('min', 'max'):
    assert not cb._improved(nan, None, mode, 0.0)
    assert not cb._improved(nan, 1.0, mode, 0.0)
  assert not cb._improved(-inf, 1.0, 'min', 0.0)
  assert not cb._improved(inf, 1.0, 'max', 0.0)
  assert cb._improved(0.5, None, 'min', 0.0)
  es = cb.EarlyStopping('val/loss', 'min', patience=2)
  # A NaN first evaluation sets no best; a finite one after it does; NaN and
  # -inf then count as evaluations without improvement.
  assert _feed(es, [nan, 1.0, nan, -inf]) == [False, False, False, True]
  assert es.state['best'] == 1.0 and es.state['best_step'] == 2
  r = cb.ReduceLROnPlateau('val/loss', 'min', patience=1, factor=0.5)
  assert _feed(r, [1.0, nan, 0.9]) == [1, .5, .5]
  assert r.state['best'] == 0.9


def test_from_config_units():
  c = ml_collections.ConfigDict({'optim': {'learning_rate': 1e-4}})
  c.callbacks = {'unit': 'epoch', 'early_stopping': {'patience': 5},
                 'reduce_on_plateau': {'patience': 3, 'min_lr': 1e-4}}
  # Built without the run's epoch (as a config check does), the callbacks
  # refuse to count.
  cbs = cb.from_config(c, None, 'val/loss', 'min')
  with pytest.raises(ValueError, match='steps_per_epoch'):
    cbs.early_stopping.update(10, {'val/loss': 1.0})
  cbs = cb.from_config(c, None, 'val/loss', 'min', steps_per_epoch=721)
  assert cbs.early_stopping.clock.units(5) == 5 * 721
  # The paper's floor equals its lr (Adam 1e-4): as in Keras, never reduced.
  r = cbs.reduce_on_plateau
  assert r.min_scale == 1.0
  assert _feed_at(r, [(721 * (i + 1), 1.0) for i in range(8)]) == [1.0] * 8
  c.callbacks.unit = 'evaluation'
  cbs = cb.from_config(c, None, 'val/loss', 'min', steps_per_epoch=721)
  assert cbs.early_stopping.clock.units(5) == 5
  c.callbacks.unit = 'epochs'
  with pytest.raises(ValueError, match="'evaluation', 'epoch'"):
    cb.from_config(c, None, 'val/loss', 'min', steps_per_epoch=721)


def test_history_restores_the_state_of_the_newest_eval_before_the_resume_step(tmp_path):
  def make():
    return cb.Callbacks(cb.EarlyStopping('m', 'min', patience=2),
                        cb.ReduceLROnPlateau('m', 'min', patience=1, factor=0.5),
                        str(tmp_path))
  import jax.numpy as jnp
  from fer_jax.train.state import TrainState
  state = TrainState(step=jnp.zeros((), jnp.int32), params={}, batch_stats={},
                     opt_state=(), rng=jnp.zeros(2, jnp.uint32),
                     lr_scale=jnp.ones((), jnp.float32))
  a = make()
  for step, v in ((2, 1.0), (4, 2.0), (6, 3.0)):
    state = a.on_eval(step, state, {'m': v})
  assert float(state.lr_scale) == 0.25
  b = make()
  b.restore(5)  # the checkpoint is at step 5: the eval at step 6 never happened
  assert b.reduce_on_plateau.state['scale'] == 0.5
  assert b.early_stopping.state['wait'] == 1 and not b.stopped
  b.restore(6)
  assert b.stopped and b.reduce_on_plateau.state['scale'] == 0.25


# ------------------------------------------------------------ end to end

def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f]


def _config(tiny, callbacks, **kw):
  c = tiny(total_steps=12, eval_every_steps=2, log_every_steps=1,
           checkpoint_every_steps=4, **{'data.eval_records': 32,
                                        'data.train_records': 64}, **kw)
  c.callbacks = ml_collections.ConfigDict(callbacks)
  return c


def test_early_stopping_run_stops_and_restores_the_best_checkpoint(tmp_path, tiny,
                                                                    monkeypatch):
  from fer_jax.train import loop
  from fer_jax.train.checkpoint import load_numpy
  # A huge min_delta: only the first eval improves, so with patience 2 the run
  # stops at the third eval (step 6) whatever the losses are.
  c = _config(tiny, {'early_stopping': {'patience': 2, 'min_delta': 1e9}},
              best_metric='val/loss', best_mode='min')
  seen = []
  evaluate = loop.Trainer.evaluate
  monkeypatch.setattr(loop.Trainer, 'evaluate',
                      lambda self, state, *a, **k: (seen.append(jax.device_get(state)),
                                                    evaluate(self, state, *a, **k))[1])
  wd = str(tmp_path / 'es')
  res = loop.train_and_evaluate(c, wd)
  assert res['stopped_step'] == 6
  rows = _rows(wd)
  assert max(r['step'] for r in rows) == 6
  assert [r['step'] for r in rows if 'val/loss' in r] == [2, 4, 6]
  # The final state (evaluated for results.json) is the best checkpoint.
  val = {r['step']: r['val/loss'] for r in rows if 'val/loss' in r}
  best = min(val, key=val.get)
  assert res['best_step'] == best and res['step'] == best
  step, tree = load_numpy(wd, 'best')
  assert step == best
  for x, y in zip(jax.tree.leaves(seen[-1].params), jax.tree.leaves(tree['params'])):
    np.testing.assert_array_equal(np.asarray(x), y)
  assert res['val/loss'] == pytest.approx(val[best], rel=1e-6)
  # The latest checkpoint is at the stop; starting again trains nothing more.
  assert load_numpy(wd, 'latest')[0] == 6
  again = loop.train_and_evaluate(c, wd)
  assert again['stopped_step'] == 6 and max(r['step'] for r in _rows(wd)) == 6


def test_reduce_on_plateau_lowers_lr_scale_and_survives_a_resume(tmp_path, tiny,
                                                                  monkeypatch, capsys):
  from fer_jax.train import loop
  c = _config(tiny, {'reduce_on_plateau': {'patience': 1, 'factor': 0.5,
                                           'min_delta': 1e9, 'min_scale': 0.1}})
  ref = str(tmp_path / 'ref')
  loop.train_and_evaluate(c, ref)
  scales = {r['step']: r['train/lr_scale'] for r in _rows(ref) if 'train/lr_scale' in r}
  # Evals at 2, 4, 6, ...: the first improves, each later one halves the scale,
  # which the train rows show from the next step on.
  expect = {s: max(0.5 ** max(((s - 1) // 2) - 1, 0), 0.1) for s in scales}
  np.testing.assert_allclose([scales[s] for s in sorted(scales)],
                             [expect[s] for s in sorted(scales)], rtol=1e-6)
  assert scales[12] == pytest.approx(0.1)

  # Crash at the eval of step 6 (after the checkpoint of step 4), resume.
  run = str(tmp_path / 'run')
  evaluate, calls, made = loop.Trainer.evaluate, [], []
  init = loop.ckpt_lib.Checkpoints.__init__
  monkeypatch.setattr(loop.ckpt_lib.Checkpoints, '__init__',
                      lambda self, *a, **k: (made.append(self), init(self, *a, **k))[1])

  def crashing(self, state, *a, **k):
    calls.append(1)
    if len(calls) == 3:
      # Let Orbax finish its async saves, as a killed process's disk would hold.
      made[-1].wait()
      made[-1].close()
      raise KeyboardInterrupt
    return evaluate(self, state, *a, **k)
  monkeypatch.setattr(loop.Trainer, 'evaluate', crashing)
  with pytest.raises(KeyboardInterrupt):
    loop.train_and_evaluate(c, run)
  monkeypatch.setattr(loop.Trainer, 'evaluate', evaluate)
  capsys.readouterr()
  loop.train_and_evaluate(c, run)
  assert 'from step 4' in capsys.readouterr().out
  again = {r['step']: r['train/lr_scale'] for r in _rows(run) if 'train/lr_scale' in r}
  assert again == scales
  with open(os.path.join(ref, cb.FILENAME)) as f1, open(os.path.join(run, cb.FILENAME)) as f2:
    assert json.load(f1) == json.load(f2)


def test_no_callbacks_config_writes_no_callbacks_file(tmp_path, tiny):
  from fer_jax.train import loop
  c = tiny(total_steps=2, eval_every_steps=2, **{'data.eval_records': 16,
                                                 'data.train_records': 32})
  res = loop.train_and_evaluate(c, str(tmp_path))
  assert 'stopped_step' not in res and res['step'] == 2
  assert not os.path.exists(tmp_path / cb.FILENAME)


def test_epoch_unit_run_stops_after_patience_epochs(tmp_path, tiny):
  from fer_jax.train import loop
  # 64 records in batches of 16: 4-step epochs; an evaluation every 2 steps.
  # Only the first evaluation (step 2) improves (huge min_delta): patience 1
  # epoch = 4 steps is reached at step 6 (per evaluation it would be step 4).
  c = _config(tiny, {'unit': 'epoch',
                     'early_stopping': {'patience': 1, 'min_delta': 1e9}},
              best_metric='val/loss', best_mode='min')
  res = loop.train_and_evaluate(c, str(tmp_path))
  assert res['stopped_step'] == 6
