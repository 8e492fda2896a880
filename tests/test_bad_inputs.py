"""Every expected user mistake, through the launchers as a user meets it: exit
status 2, one line `error: ...` naming the key, name, file or record, no
traceback, and a workdir the corrected command still uses.

One tiny run is trained once (module fixture) after the same command with a
typo was refused; the cases then point at it, at a study-like folder, at a
staged root, or at a small on-disk FER-2013 with a corrupt image.
"""
import hashlib
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, 'tests', 'train', 'tiny_config.py')


def _run(launcher, *args, timeout=300):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONUNBUFFERED='1')
  return subprocess.run([sys.executable, os.path.join(ROOT, 'launch', launcher), *args],
                        env=env, capture_output=True, text=True, timeout=timeout,
                        cwd=ROOT)


def _error_line(out):
  """The one `error:` line; asserts there is no traceback and nothing after it."""
  text = out.stdout + out.stderr
  assert 'Traceback' not in text, text[-3000:]
  errors = [l for l in out.stderr.splitlines() if l.startswith('error: ')]
  assert len(errors) == 1, out.stderr[-3000:]
  assert out.stderr.strip().splitlines()[-1] == errors[0]
  return errors[0]


def _digest(path):
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def _png(path, value):
  import cv2
  import numpy as np
  os.makedirs(os.path.dirname(path), exist_ok=True)
  cv2.imwrite(path, np.full((48, 48), value, np.uint8))


@pytest.fixture(scope='module')
def paths(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('bad_inputs')
  trained = str(tmp / 'trained')
  # A typo first: refused before the workdir exists ...
  out = _run('train.py', f'--config={TINY}', f'--workdir={trained}',
             '--config.model.name=resnet9000')
  assert out.returncode == 2 and 'resnet9000' in _error_line(out)
  assert not os.path.exists(trained)
  # ... so the corrected command trains there.
  out = _run('train.py', f'--config={TINY}', f'--workdir={trained}',
             '--config.total_steps=4', '--config.eval_every_steps=4',
             '--config.data.eval_records=16')
  assert out.returncode == 0, out.stderr[-3000:]
  study = tmp / 'study'
  study.mkdir()
  (study / 'config.json').write_text(json.dumps({'pretrain': {}, 'personal': {}}))
  # FER-2013 as per-class folders, one image corrupt; and a csv with a bad row.
  fer = tmp / 'fer'
  _png(str(fer / 'train' / 'happy' / 'a.png'), 200)
  _png(str(fer / 'train' / 'happy' / 'b.png'), 100)
  (fer / 'train' / 'sad').mkdir()
  (fer / 'train' / 'sad' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
  _png(str(fer / 'test' / 'sad' / 'c.png'), 50)
  csv = tmp / 'fercsv'
  csv.mkdir()
  (csv / 'fer2013.csv').write_text('emotion,pixels,Usage\n3,' + ' '.join(['1'] * 2304)
                                   + ',Training\n3,1 2 3,Training\n')
  return {'trained': trained, 'tmp': str(tmp), 'study': str(study),
          'fer': str(fer), 'csv': str(csv), 'config': TINY}


# (id, launcher, arguments, what the error line must name); {name} = paths[name].
# One case per launcher and kind of mistake (each costs a process start, ~2-3 s
# for those that import jax); the variants of each kind (every config name,
# every override form, every resume rule) are in-process tests:
# tests/train/test_workdir.py and tests/train/test_stage_overrides.py.
CASES = [
    ('unknown config key', 'train.py',
     ['--config={config}', '--workdir={trained}', '--config.optim.lerning_rate=0.1'],
     ['optim.lerning_rate', 'learning_rate']),
    ('typo in a name, on a trained run', 'train.py',
     ['--config={config}', '--workdir={trained}', '--config.model.name=resnet9000'],
     ['resnet9000', 'small_cnn']),
    ('config mismatch', 'train.py',
     ['--config={config}', '--workdir={trained}', '--config.batch_size=8'],
     ['{trained}', 'batch_size: 16 vs 8']),
    ('config file argument', 'train.py', ['--config={config}:oops', '--workdir={trained}'],
     ['tiny_config.py:oops', 'get_config']),
    ('missing flag', 'train.py', ['--config={config}'], ['--workdir']),
    ('evaluate: a study folder', 'evaluate.py', ['--workdir={study}'],
     ['{study}', 'not a trained run']),
    ('report: unknown key', 'report.py',
     ['--paper=001', '--arg=reduced', '--workdir={tmp}/report', '--set=no_such_key=1'],
     ['no_such_key']),
    ('prepare: no such manual_dir', 'prepare.py',
     ['--dataset=fer2013', '--manual_dir={tmp}/nope', '--data_dir={tmp}/tfds'], ['nope']),
    ('prepare: unknown dataset', 'prepare.py',
     ['--dataset=fer2031', '--manual_dir={fer}', '--data_dir={tmp}/tfds'], ['fer2031']),
    ('prepare: wrong layout', 'prepare.py',
     ['--dataset=fer2013', '--manual_dir={study}', '--data_dir={tmp}/tfds'],
     ['fer2013.csv', '{study}']),
    ('prepare: bad csv row', 'prepare.py',
     ['--dataset=fer2013', '--manual_dir={csv}', '--data_dir={tmp}/tfds'],
     ['fer2013.csv', ':3']),
    ('prepare: a layout the adapter refuses', 'prepare.py',
     ['--dataset=fer2013', '--manual_dir={fer}', '--data_dir={tmp}/tfds',
      '--source={{"layout": "zip"}}'], ['fer2013', "'zip'", 'csv, folders']),
    ('prepare: corrupt image', 'prepare.py',
     ['--dataset=fer2013', '--manual_dir={fer}', '--data_dir={tmp}/tfds'],
     ['broken.png', '--skip_bad']),
    ('materialize: source not JSON', 'materialize.py',
     ['--data_dir={tmp}/tfds', "--source={{'preset': 1}}"], ['--source']),
    ('compare_multitask: unknown kind', 'compare_multitask.py',
     ['--workdir={tmp}/mt', '--kinds=sjmtt'], ['sjmtt']),
]


@pytest.mark.parametrize('name, launcher, args, named', CASES, ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_and_blocks_nothing(paths, name, launcher, args, named):
  before = _digest(os.path.join(paths['trained'], 'config.json'))
  out = _run(launcher, *[a.format(**paths) for a in args])
  assert out.returncode == 2, (name, out.returncode, out.stderr[-3000:])
  line = _error_line(out)
  for n in named:
    assert n.format(**paths) in line, (name, line)
  # The trained run is as it was, and nothing was written for a refused build.
  assert _digest(os.path.join(paths['trained'], 'config.json')) == before
  assert not os.path.exists(os.path.join(paths['tmp'], 'tfds'))
  assert not os.path.exists(os.path.join(paths['tmp'], 'report', 'alexnet_cascade'))


def test_a_corrupt_image_is_skipped_with_skip_bad(paths):
  # The corrected command of 'prepare: corrupt image' (the training ones: the
  # fixture, and the digest checks above).
  tfds = os.path.join(paths['tmp'], 'tfds_ok')
  out = _run('prepare.py', '--dataset=fer2013', f'--manual_dir={paths["fer"]}',
             f'--data_dir={tfds}', '--skip_bad', '--splits=train,test')
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'train: 2 records' in out.stdout and 'skipped 1' in out.stdout
  assert 'broken.png' in out.stdout


def test_only_expected_errors_lose_their_traceback():
  from fer_jax import cli
  from fer_jax.data.adapters.shared import AdapterError, LayoutError
  from fer_jax.train.workdir import ConfigError, ConfigMismatchError
  for e in (ConfigError('x'), ConfigMismatchError('x'), AdapterError('x'),
            LayoutError('x'), cli.UsageError('x'), FileNotFoundError('x')):
    assert cli.is_expected(e), e
  for e in (KeyError('x'), AssertionError('x'), TypeError('x'), ZeroDivisionError()):
    assert not cli.is_expected(e), e  # bugs keep their traceback
  layout = LayoutError("fer2013: expected 'train/' under manual_dir='/d', not found. "
                       'Expected layout (as distributed):\n  <manual_dir>/fer2013.csv\n')
  assert cli.message(layout) == ("fer2013: expected 'train/' under manual_dir='/d', not "
                                 'found. Expected layout (as distributed): '
                                 '<manual_dir>/fer2013.csv')
  assert cli.message(KeyError('Unknown model')) == 'Unknown model'  # no quotes
