"""Multi-process training on JAX's distributed runtime, on one machine: CPU
processes with gloo collectives stand in for hosts.

- 2 processes x 4 devices train like 1 process x 8 devices, and their
  checkpoint resumes in a single process;
- SIGTERM (preemption): every process saves at one agreed step and exits 0,
  the same command resumes and ends where an uninterrupted run ends;
- the compiled data-parallel train step holds the gradient collectives and
  no host transfer;
- `distributed.initialize` and the single-process SIGTERM fallback.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.train.test_loop import (ROOT, _assert_trees_close, _cmd, _env,
                                   _final_params, _losses)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(workdir, *overrides, processes=2, devices=4):
  """`processes` copies of launch/train.py on this machine, logs beside workdir."""
  port = _free_port()
  procs = []
  for i in range(processes):
    cmd = _cmd(workdir, *overrides, f'--coordinator_address=127.0.0.1:{port}',
               f'--num_processes={processes}', f'--process_id={i}')
    log = open(f'{workdir}.p{i}.log', 'w')
    procs.append(subprocess.Popen(cmd, env=_env(devices), stdout=log,
                                  stderr=subprocess.STDOUT))
    log.close()
  return procs


def _wait(workdir, procs, timeout=240):
  """Waits for every process; returns their logs; fails (with the logs) unless
  all exit 0."""
  deadline = time.time() + timeout
  try:
    for p in procs:
      p.wait(timeout=max(deadline - time.time(), 1))
  except subprocess.TimeoutExpired:
    for p in procs:
      p.kill()
      p.wait()
  logs = [open(f'{workdir}.p{i}.log').read() for i in range(len(procs))]
  codes = [p.returncode for p in procs]
  assert codes == [0] * len(procs), (
      f'exit codes {codes}\n' + '\n'.join(l[-3000:] for l in logs))
  return logs


def _run_single(workdir, *overrides, devices=8):
  return subprocess.run(_cmd(workdir, *overrides), env=_env(devices), check=True,
                        capture_output=True, text=True)


def _assert_same_losses(a, b):
  assert sorted(a) == sorted(b)
  np.testing.assert_allclose([a[s] for s in sorted(a)], [b[s] for s in sorted(b)],
                             rtol=1e-4)


def _steps(workdir, which='latest'):
  root = os.path.join(workdir, 'checkpoints', which)
  return sorted(int(d) for d in os.listdir(root) if d.isdigit())


# Every run logs every step; the reference keeps all its checkpoints.
_STEPS = ['--config.log_every_steps=1', '--config.checkpoint_every_steps=3']
_REF_STEPS = 30


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """Workdir of a 30-step run in one process on 8 devices, every checkpoint
  kept (the schedule is constant and batch k depends on the seed and k only,
  so its first 12 steps are those of a 12-step run)."""
  ref = str(tmp_path_factory.mktemp('ref') / 'ref')
  _run_single(ref, *_STEPS, f'--config.total_steps={_REF_STEPS}',
              '--config.keep_checkpoints=20')
  return ref


def _ref_params(ref, step):
  from fer_jax.train.checkpoint import load_numpy
  return load_numpy(ref, step=step)[1]['params']


def _ref_losses(ref, last):
  return {s: l for s, l in _losses(ref).items() if s <= last}


@pytest.mark.slow
def test_two_processes_match_one_and_resume_in_one(tmp_path, reference):
  steps = [*_STEPS, '--config.total_steps=12']
  two = str(tmp_path / 'two')
  logs = _wait(two, _start(two, *steps))

  # The loss at every step and the final parameters of 1 process x 8 devices.
  la = _losses(two)
  assert sorted(la) == list(range(1, 13))
  _assert_same_losses(la, _ref_losses(reference, 12))
  step, p_two = _final_params(two)
  assert step == 12
  _assert_trees_close(p_two, _ref_params(reference, 12), atol=1e-5)
  # Process 0 wrote the logs and results; process 1 printed nothing of them.
  assert 'All results' in logs[0] and 'All results' not in logs[1]
  for name in ('config.json', 'metrics.jsonl', 'results.json', 'tensorboard'):
    assert os.path.exists(os.path.join(two, name)), name

  # The 2-process checkpoint resumes in one process (on 4 devices, not 8):
  # drop the last step and its results, and it trains the rest again.
  assert _steps(two) == [9, 12]
  for which in ('latest', 'best'):
    shutil.rmtree(os.path.join(two, 'checkpoints', which, '12'), ignore_errors=True)
  os.remove(os.path.join(two, 'results.json'))
  out = _run_single(two, *steps, devices=4)
  assert f'Resuming {two} from step 9.' in out.stdout
  assert _steps(two)[-1] == 12
  _assert_trees_close(_final_params(two)[1], p_two, atol=1e-5)
  _assert_same_losses(_losses(two), la)


_RUN_STEPS = [*_STEPS, f'--config.total_steps={_REF_STEPS}']


def _sigterm_when_stepping(workdir, procs, timeout=240):
  """SIGTERM to every process once a checkpoint past step 3 exists."""
  latest = os.path.join(workdir, 'checkpoints', 'latest')
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.isdir(latest) and any(d.isdigit() and int(d) >= 6
                                     for d in os.listdir(latest)):
      break
    if any(p.poll() is not None for p in procs):
      break
    time.sleep(0.05)
  for p in procs:
    p.send_signal(signal.SIGTERM)


def _check_preempted(workdir, outputs):
  """Every process saved the same step before the end, and exited cleanly."""
  saved = set()
  for out in outputs:
    assert 'Traceback' not in out, out[-3000:]
    lines = [l for l in out.splitlines() if l.startswith('Preempted: saved step')]
    assert len(lines) == 1, out[-3000:]
    saved.add(int(lines[0].split()[-1].rstrip('.')))
  assert len(saved) == 1, f'processes saved different steps: {saved}'
  step = saved.pop()
  assert 6 <= step < 30
  assert _steps(workdir)[-1] == step
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  return step


def _check_resumed(workdir, out, step, reference):
  assert f'Resuming {workdir} from step {step}.' in out
  final_step, params = _final_params(workdir)
  assert final_step == _REF_STEPS
  _assert_trees_close(params, _ref_params(reference, _REF_STEPS), atol=1e-5)
  _assert_same_losses(_losses(workdir), _losses(reference))
  assert os.path.exists(os.path.join(workdir, 'results.json'))


@pytest.mark.expensive
@pytest.mark.slow
def test_sigterm_two_processes_save_at_one_step_and_resume(tmp_path, reference):
  run = str(tmp_path / 'run')
  procs = _start(run, *_RUN_STEPS)
  _sigterm_when_stepping(run, procs)
  step = _check_preempted(run, _wait(run, procs))

  logs = _wait(run, _start(run, *_RUN_STEPS))
  _check_resumed(run, logs[0], step, reference)


def test_sigterm_one_process_saves_and_resumes(tmp_path, reference):
  run = str(tmp_path / 'run')
  proc = subprocess.Popen(_cmd(run, *_RUN_STEPS), env=_env(8),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  _sigterm_when_stepping(run, [proc])
  out, _ = proc.communicate(timeout=240)
  assert proc.returncode == 0, out[-3000:]
  step = _check_preempted(run, [out])
  out = _run_single(run, *_RUN_STEPS)
  _check_resumed(run, out.stdout, step, reference)


_HLO_SCRIPT = r'''
import json, re, sys
sys.path.insert(0, sys.argv[1])
import jax
from tests.conftest import tiny_config
from fer_jax.data import pipeline
from fer_jax.train import mesh as mesh_lib
from fer_jax.train.loop import Trainer

c = tiny_config()
t = Trainer(c, sys.argv[2])
ds = pipeline.train_dataset(t.train_data.source, t.preprocess(c.data.train_split), t.batch_size,
                            t.total_steps, c.seed)
batch = mesh_lib.global_batch(ds[0], t.mesh)
hlo = t.train_step.lower(t.state, batch).compile().as_text()
ops = sorted(set(re.findall(
    r'(?<= )(all-reduce|all-reduce-start|reduce-scatter|all-gather|all-to-all|'
    r'outfeed|infeed|send|send-done|recv|recv-done|custom-call)\(', hlo)))
targets = sorted(set(re.findall(r'custom_call_target="([^"]+)"', hlo)))
print(json.dumps(dict(devices=jax.device_count(), ops=ops, targets=targets)))
'''


def test_train_step_hlo_has_gradient_collectives_and_no_host_transfer(tmp_path):
  out = subprocess.run([sys.executable, '-c', _HLO_SCRIPT, ROOT, str(tmp_path)],
                       env=_env(8), check=True, capture_output=True, text=True)
  info = json.loads(out.stdout.strip().splitlines()[-1])
  ops, targets = set(info['ops']), info['targets']
  assert info['devices'] == 8
  assert ops & {'all-reduce', 'all-reduce-start', 'reduce-scatter'}, sorted(ops)
  host = {'outfeed', 'infeed', 'send', 'send-done', 'recv', 'recv-done'}
  assert not ops & host, sorted(ops & host)
  assert not [t for t in targets if 'callback' in t.lower() or 'host' in t.lower()], \
      targets


# --- distributed.initialize and the single-process SIGTERM fallback, in-process.

def test_initialize_modes():
  from fer_jax.train import distributed
  calls = []
  init = lambda **kw: calls.append(kw)  # noqa: E731
  assert not distributed.initialize(initialize_fn=init)
  assert not distributed.initialize('none', initialize_fn=init)
  assert calls == []
  assert distributed.initialize('auto', platforms='cpu', initialize_fn=init)
  assert calls.pop() == {}
  # A coordinator address alone means explicit; explicit needs all three.
  assert distributed.initialize(coordinator_address='h:1', num_processes=2,
                                process_id=1, platforms='cpu', initialize_fn=init)
  assert calls.pop() == dict(coordinator_address='h:1', num_processes=2,
                             process_id=1)
  with pytest.raises(ValueError, match='num_processes'):
    distributed.initialize(coordinator_address='h:1', process_id=0,
                           initialize_fn=init)
  with pytest.raises(ValueError, match='coordinator_address'):
    distributed.initialize('none', num_processes=2, process_id=0,
                           initialize_fn=init)
  with pytest.raises(ValueError, match='valid: none, auto, explicit'):
    distributed.initialize('slurm', initialize_fn=init)
  # auto with a partial override: passed through, the rest is detected.
  assert distributed.initialize('auto', process_id=3, platforms='tpu',
                                initialize_fn=init)
  assert calls == [dict(process_id=3)]
  import jax
  assert jax.config.jax_cpu_collectives_implementation == 'gloo'


def test_single_process_preemption_flag_and_handler_restored():
  from fer_jax.train import distributed
  before = signal.getsignal(signal.SIGTERM)
  with distributed.Preemption() as p:
    assert not p.sync and not p.reached(1)
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(100):  # the handler runs between bytecodes
      if p.reached(2):
        break
      time.sleep(0.01)
    assert p.reached(2)
  assert signal.getsignal(signal.SIGTERM) is before
