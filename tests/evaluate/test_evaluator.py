"""The one evaluation loop: its arrays and loss against numpy, and counts of
what the evaluations, the train rows and the best checkpoint cost (transfers
to the host, evaluations of the last step, checkpoint writes)."""
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import array as jax_array

from fer_jax.evaluate import evaluator as evaluator_lib
from fer_jax.evaluate.evaluator import Evaluator

N = 10  # records of the toy source


def _source(n=N):
  """Images whose pixels sum to k + 1, labels y = 2 k (float64 on the host)."""
  return [{'image': np.full((2, 2, 1), (k + 1) / 4, np.float32),
           'y': np.float64(2 * k), 'label': np.int64(k % 3)} for k in range(n)]


def _predict(w, batch):
  score = w * jnp.sum(batch['image'], axis=(1, 2, 3))
  err = (score - batch['y']) ** 2
  return {'score': score}, jnp.sum(err * batch['mask'])


def _report(pred, labels):
  return {'mae': float(np.mean(np.abs(pred['score'] - labels['y'])))}


@pytest.fixture
def transfers(monkeypatch):
  """Counts device-to-host copies of jax arrays (each array fetched once)."""
  count = {'arrays': 0}
  value = jax_array.ArrayImpl._value

  def counted(self):
    if self._npy_value is None:
      count['arrays'] += 1
    return value.fget(self)
  monkeypatch.setattr(jax_array.ArrayImpl, '_value', property(counted))
  return count


def _calls(monkeypatch, module, name):
  """Counts calls of module.name (still calling it)."""
  calls = []
  real = getattr(module, name)
  monkeypatch.setattr(module, name, lambda *a, **k: (calls.append(1), real(*a, **k))[1])
  return calls


@pytest.mark.parametrize('batch_size', [3, 4, 16])
def test_predictions_labels_and_loss_against_numpy(batch_size):
  w = 3.0
  out = Evaluator(_predict, _source(), lambda ex: ex, batch_size,
                  report=_report, num_threads=1).run(jnp.float32(w))
  k = np.arange(N)
  score = (w * (k + 1)).astype(np.float32)  # exact in float32
  np.testing.assert_array_equal(out.pred['score'], score)
  # Labels stay the host's numpy arrays: float64 and int64, padding removed.
  assert out.labels['y'].dtype == np.float64 and out.labels['label'].dtype == np.int64
  np.testing.assert_array_equal(out.labels['y'], 2 * k)
  np.testing.assert_array_equal(out.labels['label'], k % 3)
  assert out.labels['mask'].all() and len(out.labels['mask']) == N
  # (3 (k + 1) - 2 k)^2 = (k + 3)^2, summed per batch in float32 (exact
  # integers), then over batches in float64.
  assert out.loss == np.sum((k + 3.0) ** 2) / N
  assert out.metrics == {'mae': np.mean(k + 3.0), 'loss': out.loss}


@pytest.mark.parametrize('batch_size', [2, 5])
def test_one_fetch_per_evaluation_whatever_the_number_of_batches(
    batch_size, transfers, monkeypatch):
  ev = Evaluator(_predict, _source(), lambda ex: ex, batch_size, num_threads=1)
  ev.run(jnp.float32(1.0))  # compiles (and fetches nothing more later)
  gets = _calls(monkeypatch, evaluator_lib.jax, 'device_get')
  transfers['arrays'] = 0
  ev.run(jnp.float32(1.0))
  # 5 or 2 batches: one device_get, moving the concatenated scores and the
  # stacked losses (two arrays), not one copy per batch.
  assert len(gets) == 1 and transfers['arrays'] == 2


def test_global_batches_are_gathered_once_and_give_the_same_numbers(
    transfers, monkeypatch):
  from fer_jax.train import mesh as mesh_lib
  mesh = mesh_lib.data_mesh()
  put = functools.partial(mesh_lib.global_batch, mesh=mesh)
  n_dev = len(jax.devices())
  local = Evaluator(_predict, _source(), lambda ex: ex, 2 * n_dev, num_threads=1)
  ev = Evaluator(_predict, _source(), lambda ex: ex, 2 * n_dev, put_batch=put,
                 num_threads=1)
  want = local.run(jnp.float32(2.0))
  ev.run(jnp.float32(2.0))
  gathers = _calls(monkeypatch, evaluator_lib.multihost_utils, 'process_allgather')
  got = ev.run(jnp.float32(2.0))
  assert len(gathers) == 1
  np.testing.assert_array_equal(got.pred['score'], want.pred['score'])
  np.testing.assert_array_equal(got.labels['label'], want.labels['label'])
  assert got.loss == want.loss


# ------------------------------------------------------------- the train loop

def test_the_last_step_is_evaluated_once_and_a_train_row_is_one_fetch(
    tmp_path, tiny, monkeypatch):
  from fer_jax.train import loop
  runs = _calls(monkeypatch, Evaluator, 'run')
  rows = []
  real_get = jax.device_get

  def device_get(x):
    import sys
    if sys._getframe(1).f_code.co_name == 'write_train_row':
      rows.append(sum(isinstance(l, jax.Array) for l in jax.tree.leaves(x)))
    return real_get(x)
  monkeypatch.setattr(jax, 'device_get', device_get)
  c = tiny(total_steps=6, eval_every_steps=3, log_every_steps=2,
           checkpoint_every_steps=6, **{'data.eval_records': 16,
                                        'data.train_records': 32})
  res = loop.train_and_evaluate(c, str(tmp_path))
  # Evaluations at steps 3 and 6; results.json reuses the one of step 6.
  assert len(runs) == 2
  with open(tmp_path / 'metrics.jsonl') as f:
    evals = [r for r in map(json.loads, f) if 'val/loss' in r]
  assert [r['step'] for r in evals] == [3, 6]
  assert {k: v for k, v in res.items() if k.startswith('val/')} == {
      k: v for k, v in evals[-1].items() if k != 'step'}
  # Train rows at steps 2, 4, 6: one fetch each, of 2 steps' metrics (loss,
  # grad_norm and the task's) and lr_scale.
  with open(tmp_path / 'metrics.jsonl') as f:
    first = json.loads(f.readline())
  per_step = len([k for k in first if k.startswith('train/')
                  and k not in ('train/epoch', 'train/lr_scale')])
  assert per_step >= 2 and rows == [2 * per_step + 1] * 3


def test_a_restored_best_state_is_evaluated_again(tmp_path, tiny, monkeypatch):
  import ml_collections
  from fer_jax.train import loop
  runs = _calls(monkeypatch, Evaluator, 'run')
  # Only the first evaluation counts as improving: the run stops at the third
  # (step 6) and restores the best checkpoint, a state read from disk that
  # results.json evaluates once more (even were it step 6's).
  c = tiny(total_steps=12, eval_every_steps=2, log_every_steps=2,
           checkpoint_every_steps=4, best_metric='val/loss', best_mode='min',
           **{'data.eval_records': 16, 'data.train_records': 32})
  c.callbacks = ml_collections.ConfigDict(
      {'early_stopping': {'patience': 2, 'min_delta': 1e9}})
  res = loop.train_and_evaluate(c, str(tmp_path))
  assert res['stopped_step'] == 6 and res['step'] == res['best_step']
  assert len(runs) == 4


# ------------------------------------------------------- the best checkpoint

def _state(v):
  return {'w': jnp.full((3,), v, jnp.float32)}


def _offer(ckpts, values, first_step=1):
  """Offers one state per value to save_best; returns the steps written."""
  written = []
  save = ckpts.best.save
  ckpts.best.save = lambda step, *a, **k: (written.append(step), save(step, *a, **k))[1]
  for step, value in enumerate(values, first_step):
    ckpts.save_best(step, _state(value), {'val/m': value})
  ckpts.wait()
  ckpts.best.save = save
  return written


def test_a_worse_metric_writes_no_best_checkpoint(tmp_path):
  from fer_jax.train.checkpoint import Checkpoints, saved_steps
  ckpts = Checkpoints(str(tmp_path), best_metric='val/m', best_mode='min')
  assert _offer(ckpts, [1.0, 2.0, 3.0, 0.5, 0.7]) == [1, 4]
  ckpts.close()
  assert saved_steps(str(tmp_path), 'best') == [4]
  # Resumed: the kept metric is read back, a worse one is not written.
  again = Checkpoints(str(tmp_path), best_metric='val/m', best_mode='min')
  assert _offer(again, [0.6, 0.4], first_step=6) == [7]
  assert again.best_step() == 7
  again.close()


@pytest.mark.parametrize('mode', ['min', 'max'])
def test_keep_best_two_keeps_what_orbax_keeps_with_fewer_writes(tmp_path, mode):
  import orbax.checkpoint as ocp
  from fer_jax.train.checkpoint import Checkpoints, saved_steps
  values = [1.0, 3.0, 2.0, 0.5, 2.0, 4.0, 3.0]
  if mode == 'min':
    values = [-v for v in values]
  ckpts = Checkpoints(str(tmp_path / 'run'), best_metric='val/m', best_mode=mode,
                      keep_best=2)
  written = _offer(ckpts, values)
  # Hand count: 1, 2 (fewer than two kept); 3 beats 1; 4 is worse than both;
  # 5 ties 3 (the newer of equal ones is kept); 6 beats 5; 7 ties 2 (kept:
  # 6 and 7).
  assert written == [1, 2, 3, 5, 6, 7]
  mine = ckpts.best_step()
  ckpts.close()
  # Orbax itself, offered every state, keeps the same steps.
  ref = ocp.CheckpointManager(
      str(tmp_path / 'orbax'), item_handlers=ocp.StandardCheckpointHandler(),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=2, create=True, best_fn=lambda m: m['val/m'],
          best_mode=mode, keep_checkpoints_without_metrics=False))
  for step, v in enumerate(values, 1):
    ref.save(step, args=ocp.args.StandardSave(_state(v)), metrics={'val/m': v},
             force=True)
  ref.wait_until_finished()
  kept, best = sorted(ref.all_steps()), ref.best_step()
  ref.close()
  assert saved_steps(str(tmp_path / 'run'), 'best') == kept == [6, 7]
  assert mine == best == 6


# --------------------------------------------------- the other two callers

def test_predict_source_matches_a_loop_over_the_eval_step(tmp_path, tiny):
  from fer_jax.data import pipeline
  from fer_jax.data.sources import get_source
  from fer_jax.evaluate import multitask_report as mr
  from fer_jax.train import loop
  c = tiny(**{'data.train_records': 32})
  t = loop.Trainer(c, str(tmp_path))
  src = pipeline.limit(get_source(c.data, 'validation'), 11)
  pred, lab = mr.predict_source(t, t.state, src, batch_size=4)
  ds = pipeline.eval_dataset(src, t.preprocess('report'), 4)
  batches = list(pipeline.to_iterator(ds, num_threads=1))
  want = [jax.device_get(t.eval_step(t.state, b)[0]) for b in batches]
  for k in want[0]:
    np.testing.assert_array_equal(pred[k], np.concatenate([p[k] for p in want])[:11])
  for k in lab:
    np.testing.assert_array_equal(lab[k], np.concatenate([b[k] for b in batches])[:11])
  assert set(lab) == set(batches[0]) - {'image'}
