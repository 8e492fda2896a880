"""001's cascade: killed in stage 2 it resumes to the same run (checkpoints,
logs, results), and on the synthetic presets it beats direct fine-tuning on
the small wild set."""
import os
import subprocess

import pytest

from tests.train.test_loop import (ROOT, _assert_json_close,
                                   _assert_runs_equal, _assert_trees_close,
                                   _env, _final_params, _read_json,
                                   _run_paused, _sigkill_paused)

STAGES = os.path.join(ROOT, 'tests', 'train', 'tiny_stages_config.py')


def _cmd(workdir, *overrides):
  import sys
  return [sys.executable, os.path.join(ROOT, 'launch', 'train.py'),
          f'--config={STAGES}', f'--workdir={workdir}', *overrides]


@pytest.mark.expensive
def test_cascade_sigkilled_in_stage_two_resumes_to_the_same_run(tmp_path):
  # Checkpoints every 6 steps, as the evaluations; train rows every 2.
  every = '--config.checkpoint_every_steps=6'
  ref = tmp_path / 'ref'
  subprocess.run(_cmd(ref, every), env=_env(), check=True, capture_output=True)
  # Killed in stage 2 after step 18 was logged and evaluated, before its
  # checkpoint: the resume starts stage 2 at 12 and replays that evaluation.
  run = tmp_path / 'run'
  marker = tmp_path / 'paused'
  _sigkill_paused(_run_paused(_cmd(run, every),
                              run / '1_small' / 'checkpoints' / 'latest', 18,
                              marker), marker)
  assert (run / '0_large' / 'results.json').exists()
  assert not (run / '1_small' / 'results.json').exists()
  out = subprocess.run(_cmd(run, every), env=_env(), check=True,
                       capture_output=True, text=True)
  log = out.stdout + out.stderr
  assert 'Stage large: done' in log
  assert f'Resuming {run / "1_small"} from step 12.' in log
  for stage in ('0_large', '1_small'):
    step_a, pa = _final_params(ref / stage)
    step_b, pb = _final_params(run / stage)
    assert step_a == step_b
    _assert_trees_close(pa, pb, atol=1e-6)
    _assert_runs_equal(str(ref / stage), str(run / stage))
  _assert_json_close(_read_json(ref / 'results.json'),
                     _read_json(run / 'results.json'), 'results.json')


@pytest.mark.expensive
@pytest.mark.slow
def test_cascade_beats_direct_fine_tuning_on_the_small_set(tmp_path):
  from configs.transfer import cascade_001
  from fer_jax.train import stages
  acc = {}
  for method in ('cascade', 'direct'):
    res = stages.run_stages(cascade_001.get_config(f'{method},reduced'),
                            str(tmp_path / method))
    acc[method] = res['sfew']['val/expression/accuracy']
  # Measured: 0.7125 vs 0.6775 (400 sfew_like validation images; the SFEW
  # stage keeps the FER-2013 classifier).
  assert acc['cascade'] > acc['direct'] + 0.03, acc
