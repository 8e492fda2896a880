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


def _cmd(workdir, *overrides):
  return [sys.executable, os.path.join(ROOT, 'launch', 'train.py'),
          f'--config={CONFIG}', f'--workdir={workdir}', *overrides]


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
  the newest checkpoint step left behind."""
  deadline = time.time() + 300
  while time.time() < deadline:
    done = [d for d in latest.iterdir() if d.name.isdigit()] if latest.exists() else []
    if any(int(d.name) >= min_step for d in done):
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  return max(int(d.name) for d in latest.iterdir() if d.name.isdigit())


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
  steps = ['--config.total_steps=60', '--config.checkpoint_every_steps=3']
  ref = tmp_path / 'ref'
  subprocess.run(_cmd(ref, *steps), env=_env(), check=True, capture_output=True)

  run = tmp_path / 'run'
  proc = subprocess.Popen(_cmd(run, *steps), env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  killed_at = _sigkill_after_checkpoint(proc, run / 'checkpoints' / 'latest', 6)
  assert killed_at < 60, 'the run finished before it could be killed'

  out = subprocess.run(_cmd(run, *steps), env=_env(), check=True,
                       capture_output=True, text=True)
  assert 'Resuming' in out.stdout + out.stderr
  step_a, pa = _final_params(ref)
  step_b, pb = _final_params(run)
  assert step_a == step_b == 60
  _assert_trees_close(pa, pb, atol=1e-6)
  # The resumed log has every step once, with the same losses.
  la, lb = _losses(ref), _losses(run)
  assert sorted(la) == sorted(lb)
  np.testing.assert_allclose([la[s] for s in sorted(la)], [lb[s] for s in sorted(lb)],
                             rtol=1e-5)


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
  from fer_jax.train.loop import ConfigMismatchError, check_workdir_config
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
