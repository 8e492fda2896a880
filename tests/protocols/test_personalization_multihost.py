"""The personalization study on 2 processes x 4 CPU devices (gloo collectives,
localhost standing in for 2 hosts), run by launch/personalize.py unchanged:
the personal models split over the 8 devices of both, killed after its first
chunk and resumed, give the per-model RMSEs of 1 process on 1 device, and the
compiled train steps (of the heads and of the whole nets) hold no collective.

Both runs compile with --xla_backend_optimization_level=0 (the same flags for
both, so the comparison holds; it halves this test's time on a CPU)."""
import csv
import glob
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
CONFIG = os.path.join(ROOT, 'tests', 'protocols',
                      'multihost_personalization_script.py')
COLLECTIVES = ('all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all',
               'collective-permute', 'send', 'recv')


def _env(devices):
  return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1',
              XLA_FLAGS=f'--xla_force_host_platform_device_count={devices} '
                        '--xla_backend_optimization_level=0')


def _cmd(workdir, *flags):
  return [sys.executable, os.path.join(ROOT, 'launch', 'personalize.py'),
          f'--config={CONFIG}', f'--workdir={workdir}', *flags]


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start_two(workdir, pretrain_dir, log):
  """launch/personalize.py as processes 0 and 1, logs in {log}.p{i}.log; each
  dumps the HLO of its compiled train steps ('segment') to {log}.p{i}.hlo."""
  port = _free_port()
  procs = []
  for i in range(2):
    env = _env(4)
    env['XLA_FLAGS'] += (f' --xla_dump_to={log}.p{i}.hlo '
                         '--xla_dump_hlo_module_re=.*segment.*')
    with open(f'{log}.p{i}.log', 'w') as f:
      procs.append(subprocess.Popen(
          _cmd(workdir, f'--config.pretrain_dir={pretrain_dir}',
               f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2',
               f'--process_id={i}'),
          env=env, stdout=f, stderr=subprocess.STDOUT))
  return procs


def _assert_steps_hold_no_collective(log):
  """Both processes compiled train steps, and none holds a collective."""
  for i in range(2):
    steps = glob.glob(f'{log}.p{i}.hlo/*jit_segment.cpu_after_optimizations.txt')
    assert steps, f'no compiled step dumped in {log}.p{i}.hlo'
    for path in steps:
      with open(path) as f:
        hlo = f.read()
      found = [c for c in COLLECTIVES if re.search(rf'\b{c}(-start)?\(', hlo)]
      assert not found, (path, found)


def _logs(log):
  return [open(f'{log}.p{i}.log').read() for i in range(2)]


def _wait(procs, log, timeout=300):
  deadline = time.time() + timeout
  try:
    for p in procs:
      p.wait(timeout=max(deadline - time.time(), 1))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  codes = [p.returncode for p in procs]
  logs = _logs(log)
  assert codes == [0, 0], f'exit codes {codes}\n' + '\n'.join(
      l[-3000:] for l in logs)
  return logs


def _kill_after_first_chunk(procs, workdir, log, timeout=300):
  """SIGKILL to both processes once process 0 has saved a chunk."""
  deadline = time.time() + timeout
  pattern = os.path.join(workdir, 'personal', 'chunk-*.npz')
  try:
    while time.time() < deadline and not glob.glob(pattern):
      assert all(p.poll() is None for p in procs), '\n'.join(
          l[-3000:] for l in _logs(log))
      time.sleep(0.05)
  finally:
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGKILL)
      p.wait()
  chunks = sorted(glob.glob(pattern))
  assert len(chunks) == 1, chunks
  return chunks[0]


def _rmse(workdir):
  with open(os.path.join(workdir, 'models.csv')) as f:
    return {(r['target'], r['condition'], r['sampler'], r['subject'],
             r['fold']): float(r['rmse']) for r in csv.DictReader(f)}


@pytest.mark.expensive
def test_two_processes_killed_and_resumed_equal_one_device(tmp_path):
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  first, log = str(tmp_path / 'first'), str(tmp_path / 'resumed')
  # The reference pre-trains the net both use; the 2 processes start once it
  # has (the rest of the reference runs beside them).
  ref = subprocess.Popen(_cmd(one), env=_env(1), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
  pretrain = os.path.join(one, 'pretrain')
  try:
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(pretrain, 'joint', 'results.json')):
      assert ref.poll() is None and time.time() < deadline, ref.communicate()[0]
      time.sleep(0.05)

    # First run: the heads' chunk is saved, then both processes die.
    procs = _start_two(two, pretrain, first)
    chunk = _kill_after_first_chunk(procs, two, first)
    out = ref.communicate(timeout=300)[0]
    assert ref.returncode == 0, out[-3000:]
  finally:
    if ref.poll() is None:
      ref.kill()
      ref.wait()
  assert os.path.basename(chunk).startswith('chunk-head-')
  _assert_steps_hold_no_collective(first)  # the heads'
  assert not os.path.exists(os.path.join(two, 'models.csv'))
  saved = os.stat(chunk).st_mtime_ns

  # Same command again: both processes skip the saved heads (process 0's
  # reading of the chunk files) and train the whole nets.
  logs = _wait(_start_two(two, pretrain, log), log)
  assert '[head]' not in logs[0], logs[0][-3000:]
  assert '[full] 4 of 4 models to train' in logs[0], logs[0][-3000:]
  assert os.stat(chunk).st_mtime_ns == saved
  # Process 0 alone prints and writes.
  assert 'Results in' in logs[0] and 'Results in' not in logs[1]
  _assert_steps_hold_no_collective(log)  # the whole nets' (conv layers)

  a, b = _rmse(one), _rmse(two)
  assert a.keys() == b.keys() and len(a) > 20
  for k in a:
    assert abs(a[k] - b[k]) < 1e-5, (k, a[k], b[k])
