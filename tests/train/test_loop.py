"""End-to-end behaviour of the training loop: resume after SIGKILL, data-parallel
equivalence on 8 devices, refusal to resume over a different config."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, 'tests', 'train', 'tiny_config.py')


def _cmd(workdir, *overrides, config=CONFIG):
  return [sys.executable, os.path.join(ROOT, 'launch', 'train.py'),
          f'--config={config}', f'--workdir={workdir}', *overrides]


def _env(devices=1):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1')
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
  return env


def _final_params(workdir):
  from fer_jax.train.checkpoint import load_numpy
  step, tree = load_numpy(workdir)
  return step, tree['params']


def _losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(l) for l in f]
  return {r['step']: r['train/loss'] for r in rows if 'train/loss' in r}


def _assert_trees_close(a, b, atol):
  import jax
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def _sigkill_after_checkpoint(proc, latest, min_step: int) -> int:
  """SIGKILLs `proc` once `latest` holds a checkpoint >= min_step; returns
  the newest checkpoint step left behind. Where it dies depends on timing:
  the resume tests use `_run_paused` / `_sigkill_paused` instead."""
  deadline = time.time() + 300
  while time.time() < deadline:
    done = [d for d in latest.iterdir() if d.name.isdigit()] if latest.exists() else []
    if any(int(d.name) >= min_step for d in done):
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return max(int(d.name) for d in latest.iterdir() if d.name.isdigit())


# Runs launch/train.py with Checkpoints.save patched (in the child only, from
# the test) to stop for good before saving step STEP in the folder LATEST, once
# every earlier save is on disk; it then writes MARKER. Killed there, the run
# has logged and evaluated step STEP (metrics.jsonl, callbacks.json, best/) but
# its newest checkpoint is the one before: the resume replays those steps.
_PAUSED = r"""
import os, runpy, sys, time
root, latest, step, marker, script = sys.argv[1:6]
sys.path.insert(0, root)
sys.argv = [script] + sys.argv[6:]
from fer_jax.train import checkpoint
save = checkpoint.Checkpoints.save
def paused(self, s, *args, **kwargs):
  here = os.path.realpath(str(self.latest.directory))
  if s == int(step) and here == os.path.realpath(latest):
    self.wait()
    open(marker, 'w').close()
    time.sleep(600)
  return save(self, s, *args, **kwargs)
checkpoint.Checkpoints.save = paused
runpy.run_path(script, run_name='__main__')
"""


def _run_paused(cmd, latest, step: int, marker):
  """Starts `cmd` (a launch/train.py command) so that it stops before saving
  checkpoint `step` in `latest`; see `_PAUSED`."""
  return subprocess.Popen(
      [cmd[0], '-c', _PAUSED, ROOT, str(latest), str(step), str(marker),
       *cmd[1:]], env=_env(), stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True)


def _sigkill_paused(proc, marker):
  """SIGKILLs `proc` once it has stopped at its pause point (`marker` exists)."""
  deadline = time.time() + 300
  try:
    while not os.path.exists(marker):
      if proc.poll() is not None:
        raise AssertionError('the run ended before its pause point:\n'
                             + proc.stderr.read()[-3000:])
      assert time.time() < deadline, 'the run never reached its pause point'
      time.sleep(0.05)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def _assert_json_close(a, b, where, rtol=1e-5, atol=1e-6):
  """Same structure and strings, numbers within tolerance."""
  if isinstance(a, dict):
    assert isinstance(b, dict) and sorted(a) == sorted(b), (where, a, b)
    for k in a:
      _assert_json_close(a[k], b[k], f'{where}/{k}', rtol, atol)
  elif isinstance(a, list):
    assert isinstance(b, list) and len(a) == len(b), (where, a, b)
    for i, (x, y) in enumerate(zip(a, b)):
      _assert_json_close(x, y, f'{where}[{i}]', rtol, atol)
  elif isinstance(a, float) or isinstance(b, float):
    assert isinstance(b, (int, float)) and isinstance(a, (int, float)), (where, a, b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=where)
  else:
    assert a == b, (where, a, b)


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _assert_runs_equal(ref, run, atol=1e-6):
  """Everything a run leaves equal to the uninterrupted run's: every kept
  checkpoint in latest/ and best/ (params, BatchNorm statistics, optimiser
  state, rng, lr_scale, step), every row of metrics.jsonl (train and eval),
  results.json and callbacks.json (when either run has one)."""
  from fer_jax.train.checkpoint import load_numpy, saved_steps
  for which in ('latest', 'best'):
    steps = saved_steps(ref, which)
    assert steps == saved_steps(run, which), which
    for s in steps:
      _, a = load_numpy(ref, which, s)
      _, b = load_numpy(run, which, s)
      assert sorted(a) == sorted(b)
      for field in a:
        la, lb = _leaves_with_paths(a[field]), _leaves_with_paths(b[field])
        assert [p for p, _ in la] == [p for p, _ in lb], (which, s, field)
        for (p, x), (_, y) in zip(la, lb):
          np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol,
                                     rtol=0, err_msg=f'{which}/{s}/{field}{p}')
  rows_a = _read_rows(ref)
  rows_b = _read_rows(run)
  assert [r['step'] for r in rows_a] == [r['step'] for r in rows_b]
  _assert_json_close(rows_a, rows_b, 'metrics.jsonl')
  for name in ('results.json', 'callbacks.json'):
    pa, pb = os.path.join(ref, name), os.path.join(run, name)
    assert os.path.exists(pa) == os.path.exists(pb), name
    if os.path.exists(pa):
      _assert_json_close(_read_json(pa), _read_json(pb), name)


def _read_rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f if l.strip()]


def _leaves_with_paths(tree):
  import jax
  return [(jax.tree_util.keystr(p), x)
          for p, x in jax.tree_util.tree_leaves_with_path(tree)]


# Reduce-on-plateau that acts at every evaluation after the first (no value
# beats the best by 10), so lr_scale and callbacks.json change along the run.
_PLATEAU_CONFIG = """
import sys
sys.path.insert(0, {root!r})
from tests.train.tiny_config import get_config as _tiny


def get_config():
  c = _tiny()
  c.callbacks.reduce_on_plateau = dict(patience=1, min_delta=10.0, factor=0.7)
  return c
"""


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
  # Checkpoints every 4 steps, train rows every 2, evaluations every 6: every
  # checkpoint is a logging step, so a resume from any checkpoint rebuilds the
  # same train rows (the test below covers the other case).
  config = tmp_path / 'plateau_config.py'
  config.write_text(_PLATEAU_CONFIG.format(root=ROOT))
  steps = ['--config.total_steps=60', '--config.checkpoint_every_steps=4']
  ref = tmp_path / 'ref'
  subprocess.run(_cmd(ref, *steps, config=config), env=_env(), check=True,
                 capture_output=True)
  scales = [h['reduce_on_plateau']['scale'] for h in
            _read_json(ref / 'callbacks.json')['history'].values()]
  assert min(scales) < 0.5  # the callback did act

  # Killed after step 12 was logged and evaluated (callbacks.json written)
  # but before its checkpoint: the resume starts at 8 and replays step 12.
  run = tmp_path / 'run'
  _sigkill_paused(_run_paused(_cmd(run, *steps, config=config),
                              run / 'checkpoints' / 'latest', 12,
                              tmp_path / 'paused'), tmp_path / 'paused')
  assert not (run / 'results.json').exists()
  evals = [r['step'] for r in _read_rows(run)
           if any(k.startswith('val/') for k in r)]
  assert evals == [6, 12]
  out = subprocess.run(_cmd(run, *steps, config=config), env=_env(), check=True,
                       capture_output=True, text=True)
  assert f'Resuming {run} from step 8.' in out.stdout + out.stderr
  step_a, pa = _final_params(ref)
  step_b, pb = _final_params(run)
  assert step_a == step_b == 60
  _assert_trees_close(pa, pb, atol=1e-6)
  _assert_runs_equal(str(ref), str(run))


def test_resume_from_a_checkpoint_between_log_rows_keeps_the_train_rows(tmp_path):
  steps = ['--config.total_steps=6', '--config.checkpoint_every_steps=3',
           '--config.log_every_steps=2', '--config.eval_every_steps=6']
  # A checkpoint step that is not a logging step (3) gets a train row of its
  # own, so a resume from it rebuilds the same rows. Stopped before saving
  # step 6, after logging it: the resume starts at 3 and logs 4 and 6 again.
  run = tmp_path / 'run'
  _sigkill_paused(_run_paused(_cmd(run, *steps), run / 'checkpoints' / 'latest',
                              6, tmp_path / 'paused'), tmp_path / 'paused')
  before = _losses(run)
  assert sorted(before) == [2, 3, 4, 6]
  out = subprocess.run(_cmd(run, *steps), env=_env(), check=True,
                       capture_output=True, text=True)
  assert f'Resuming {run} from step 3.' in out.stdout + out.stderr
  after = _losses(run)
  assert sorted(after) == [2, 3, 4, 6]
  np.testing.assert_allclose([before[s] for s in (2, 3, 4, 6)],
                             [after[s] for s in (2, 3, 4, 6)], rtol=1e-5)


def test_eight_devices_give_the_same_loss_curve(tmp_path):
  steps = ['--config.total_steps=10', '--config.log_every_steps=1']
  one, eight = tmp_path / 'one', tmp_path / 'eight'
  subprocess.run(_cmd(one, *steps), env=_env(1), check=True, capture_output=True)
  subprocess.run(_cmd(eight, *steps), env=_env(8), check=True, capture_output=True)
  la, lb = _losses(one), _losses(eight)
  assert sorted(la) == list(range(1, 11))
  np.testing.assert_allclose([la[s] for s in sorted(la)], [lb[s] for s in sorted(lb)],
                             rtol=1e-4)
  _assert_trees_close(_final_params(one)[1], _final_params(eight)[1], atol=1e-5)


def test_refuses_to_resume_over_a_different_config(tmp_path, tiny):
  from fer_jax.train.workdir import ConfigMismatchError, check_workdir_config
  check_workdir_config(tiny(), str(tmp_path))
  check_workdir_config(tiny(), str(tmp_path))  # same config: fine
  with pytest.raises(ConfigMismatchError, match='batch_size: 16 vs 32'):
    check_workdir_config(tiny(batch_size=32), str(tmp_path))


def test_unknown_dataset_and_model_list_valid_names(tiny):
  from fer_jax.data.sources import get_source
  from fer_jax.models import get_model
  with pytest.raises(KeyError, match='valid dataset names: .*synthetic'):
    get_source(tiny(**{'data.name': 'affectnett'}).data, 'train')
  with pytest.raises(KeyError, match='valid model names: .*small_cnn'):
    get_model('resnet9000')


def test_unknown_config_override_is_an_error(tmp_path):
  out = subprocess.run(_cmd(tmp_path, '--config.optim.lerning_rate=0.1'),
                       env=_env(), capture_output=True, text=True)
  assert out.returncode != 0
  assert 'lerning_rate' in out.stderr


def test_frozen_features_do_not_move_and_bf16_trains(tmp_path, tiny):
  import jax
  from fer_jax.train.checkpoint import load_numpy
  from fer_jax.train.loop import Trainer, train_and_evaluate
  c = tiny(total_steps=4, trainable='head', **{'data.eval_records': 32})
  init = jax.device_get(Trainer(c, str(tmp_path / 'x')).state.params)
  train_and_evaluate(c, str(tmp_path / 'head'))
  _, final = load_numpy(str(tmp_path / 'head'))
  _assert_trees_close(init['features'], final['params']['features'], atol=0)
  moved = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(init['head']),
                                              jax.tree.leaves(final['params']['head']))]
  assert min(moved) > 0

  res = train_and_evaluate(tiny(total_steps=4, bf16=True, **{'data.eval_records': 32}),
                           str(tmp_path / 'bf16'))
  assert np.isfinite(res['val/loss'])
  _, bf = load_numpy(str(tmp_path / 'bf16'))
  assert all(x.dtype == np.float32 for x in jax.tree.leaves(bf['params']))


def test_dropout_trains_on_the_data_mesh(tmp_path, tiny):
  # Regression: under Explicit mesh axes flax's Dropout mask (unsharded) met
  # the data-sharded activations in lax.select and raised ShardingTypeError.
  from fer_jax.train import loop
  c = tiny(**{'data.eval_records': 32, 'total_steps': 4})
  c.model.dropout = 0.5
  res = loop.train_and_evaluate(c, str(tmp_path))
  assert np.isfinite(res['val/rmse_mean'])


def test_unknown_best_metric_is_an_error_not_a_missing_checkpoint(tmp_path, tiny):
  from fer_jax.train import loop
  c = tiny(**{'data.eval_records': 32, 'total_steps': 6, 'best_metric': 'val/acc'})
  with pytest.raises(KeyError, match="best_metric 'val/acc'.*val/rmse_mean"):
    loop.train_and_evaluate(c, str(tmp_path))
