"""The personalization study against faults and mistakes: damaged chunk and
feature files are moved aside and redone, a SIGTERM in the chunk phase saves
what is done and exits 0, and a bad name is one line before any pre-training.
Each recovered run ends with the per-model results of an uninterrupted one."""
import csv
import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fer_jax.protocols.personal import study
from fer_jax.train import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
LAUNCHER = os.path.join(ROOT, 'launch', 'personalize.py')
CONFIG = os.path.join(ROOT, 'tests', 'protocols',
                      'multihost_personalization_script.py')
# The multi-host test's tiny study, dense parts only (no No Transfer nets), in
# 2 chunks of 4 models: 2 subjects x 2 folds x (Transfer 100% + one sweep).
OVERRIDES = {'conditions': "('transfer_0', 'transfer_100')",
             'samplers': "('random',)",
             'runtime.head_max_models_per_chunk': '4'}


def _config(**extra):
  import importlib.util
  from fer_jax.train.stages import apply_overrides
  spec = importlib.util.spec_from_file_location('tiny_study', CONFIG)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = apply_overrides(mod.get_config(), {**OVERRIDES, **extra})
  config.runtime.verbose = False
  return config


def _rmse(workdir):
  with open(os.path.join(workdir, 'models.csv')) as f:
    return {(r['target'], r['condition'], r['sampler'], r['subject'],
             r['fold']): float(r['rmse']) for r in csv.DictReader(f)}


def _chunks(workdir):
  return sorted(glob.glob(os.path.join(workdir, 'personal', 'chunk-*.npz')))


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """The uninterrupted study (its pre-trained net is reused by the others)."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  study.run_study(_config(), workdir)
  assert len(_chunks(workdir)) == 2
  return workdir


def _same_results(workdir, reference):
  want, got = _rmse(reference), _rmse(workdir)
  assert want.keys() == got.keys() and len(want) == 2 * 2 * 2 * 3
  for k in want:
    assert abs(want[k] - got[k]) < 1e-6, (k, want[k], got[k])


def test_damaged_chunks_and_features_are_moved_aside_and_redone(
    reference, tmp_path, caplog):
  workdir = str(tmp_path / 'study')
  shutil.copytree(reference, workdir)
  os.remove(os.path.join(workdir, 'models.csv'))
  first, second = _chunks(workdir)
  feats = os.path.join(workdir, 'features', 'joint.npz')
  with open(first, 'r+b') as f:  # truncated (an interrupted copy)
    f.truncate(os.path.getsize(first) // 2)
  with open(second, 'r+b') as f:  # garbled bytes inside an array
    f.seek(os.path.getsize(second) // 3)
    f.write(b'\xff' * 16)
  with open(feats, 'r+b') as f:  # garbled features: zip's CRC-32 catches it
    f.seek(os.path.getsize(feats) // 2)
    f.write(b'\x00\x01' * 32)
  garbled = open(second, 'rb').read()
  with caplog.at_level(logging.WARNING):
    study.run_study(_config(), workdir)
  _same_results(workdir, reference)
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and 'is damaged' in r.getMessage()]
  for path, then in ((first, 'train its models again'),
                     (second, 'train its models again'),
                     (feats, 'extract the features again')):
    line = [w for w in warnings if w.startswith(path + ' ')]
    assert len(line) == 1 and '\n' not in line[0], warnings
    assert then in line[0] and f'{path}.damaged' in line[0]
    assert os.path.exists(f'{path}.damaged')  # kept, not deleted
    assert os.path.exists(path)  # written again
  assert open(f'{second}.damaged', 'rb').read() == garbled
  assert len(warnings) == 3


def test_sigterm_in_the_chunk_phase_saves_and_exits_0_then_resumes(
    reference, tmp_path):
  workdir, marker, go = (str(tmp_path / 'study'), str(tmp_path / 'chunk1'),
                         str(tmp_path / 'go'))
  # launch/personalize.py, with a hook after each saved chunk: the first one
  # says so (marker) and waits until the SIGTERM has been sent (go), so the
  # signal lands at a known point: after chunk 1, before chunk 2.
  script = f'''
import os, runpy, sys, time
sys.path.insert(0, {ROOT!r})
from fer_jax.protocols.personal import study
real = study.run_study
def on_chunk(info):
  open({marker!r}, 'w').close()
  deadline = time.time() + 120
  while not os.path.exists({go!r}) and time.time() < deadline:
    time.sleep(0.05)
  time.sleep(0.5)  # the SIGTERM's Python handler runs by then, whichever
                   # thread the kernel handed the signal to
study.run_study = lambda config, workdir: real(config, workdir, on_chunk=on_chunk)
sys.argv = {[LAUNCHER, f'--config={CONFIG}', f'--workdir={workdir}',
             f'--config.pretrain_dir={os.path.join(reference, "pretrain")}'] +
            [f'--config.{k}={v}' for k, v in OVERRIDES.items()]!r}
runpy.run_path({LAUNCHER!r}, run_name='__main__')
'''
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1')
  proc = subprocess.Popen([sys.executable, '-c', script], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
  try:
    deadline = time.time() + 300
    while not os.path.exists(marker):
      assert proc.poll() is None and time.time() < deadline, \
          proc.communicate()[0][-3000:]
      time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    open(go, 'w').close()
    out = proc.communicate(timeout=120)[0]
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  assert proc.returncode == 0, out[-3000:]
  lines = [l for l in out.splitlines() if l.startswith('Preempted')]
  assert lines == ['Preempted: saved 1 chunk(s) of personal models (4 of 8 '
                   'models done) and stopped. Run the same command again to '
                   'resume.'], out[-3000:]
  assert 'Traceback' not in out
  assert len(_chunks(workdir)) == 1
  assert not os.path.exists(os.path.join(workdir, 'models.csv'))
  study.run_study(_config(pretrain_dir=os.path.join(reference, 'pretrain')),
               workdir)
  assert len(_chunks(workdir)) == 2
  _same_results(workdir, reference)


def test_bad_names_fail_before_pretraining_with_one_line(tmp_path, monkeypatch):
  def no_pretraining(*a, **k):
    raise AssertionError('pre-training started')
  monkeypatch.setattr(study, 'pretrain', no_pretraining)
  config = _config(**{'personal.subjects': '(0, 42)', 'samplers': "('gsz',)",
                      'finetune.optim.name': 'sgdd',
                      'pretrain.model.name': 'resnet9000'})
  workdir = str(tmp_path / 'study')
  with pytest.raises(workdir_lib.ConfigError) as e:
    study.run_study(config, workdir)
  msg = str(e.value)
  assert '\n' not in msg
  for part in ("personal.subjects: [42] not in personal", 'subjects 0-9',
               "samplers: unknown 'gsz'", "finetune.optim.name: unknown "
               "optimizer 'sgdd'", "pretrain (joint): model.name: unknown "
               "model 'resnet9000'"):
    assert part in msg, msg
  assert not os.path.exists(workdir)  # nothing written: the fix just reruns


def test_launcher_prints_one_line_and_exits_2(tmp_path):
  workdir = str(tmp_path / 'study')
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  for flag, want in (('--config.personal.subjects=(0, 42)',
                      'personal.subjects: [42] not in personal'),
                     ('--config.no_such_key=1', "override 'no_such_key'")):
    proc = subprocess.run([sys.executable, LAUNCHER, f'--config={CONFIG}',
                           f'--workdir={workdir}', flag], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(err) == 1 and err[0].startswith('error: '), proc.stderr[-3000:]
    assert want in err[0], err[0]
    assert not os.path.exists(workdir)


def test_a_finished_pretrained_net_asked_for_more_steps_is_refused(reference,
                                                                   tmp_path):
  """A reused pre-trained net is not trained further: a longer pretrain is one
  error (not a silent reuse of the shorter net), and its config.json stays."""
  from fer_jax.protocols.personal import pretrain
  pretrain_dir = os.path.join(reference, 'pretrain')
  stored = os.path.join(pretrain_dir, 'joint', 'config.json')
  before = open(stored).read()
  config = _config()
  steps = config.pretrain.total_steps
  config = _config(**{'pretrain.total_steps': str(2 * steps)})
  with config.unlocked():
    config.pretrain_dir = pretrain_dir
  with pytest.raises(workdir_lib.ConfigMismatchError,
                     match=f'total_steps: {steps} vs {2 * steps}.*not trained '
                     'again'):
    pretrain.pretrain(config, str(tmp_path))
  assert open(stored).read() == before
