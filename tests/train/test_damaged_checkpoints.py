"""Damaged checkpoints: each corruption of the newest checkpoint either resumes
from the older one, ending bitwise where an uninterrupted run ends, or stops
with one line naming the folder; none restores silently wrong."""
import glob
import json
import os
import shutil

import numpy as np
import pytest

# A finished 6-step run: latest/ holds steps 4 and 6, best/ the best of the
# evaluations at 3 and 6. Re-running it over a copy whose step 6 is damaged
# resumes from step 4 and retrains steps 5 and 6.
RUN = {'total_steps': 6, 'checkpoint_every_steps': 2, 'eval_every_steps': 3,
       'log_every_steps': 2, 'data.eval_records': 32}


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  from tests.conftest import tiny_config
  from fer_jax.train.loop import train_and_evaluate
  wd = str(tmp_path_factory.mktemp('damaged') / 'ref')
  train_and_evaluate(tiny_config(**RUN), wd)
  return wd


def _copy(reference, tmp_path):
  wd = str(tmp_path / 'run')
  shutil.copytree(reference, wd)
  return wd


def _step_dir(wd, step, which='latest'):
  return os.path.join(wd, 'checkpoints', which, str(step))


def _largest_data_file(step_dir):
  files = glob.glob(os.path.join(step_dir, 'default', 'ocdbt.process_*', 'd', '*'))
  return max(files, key=os.path.getsize)


def truncate(step_dir):
  path = _largest_data_file(step_dir)
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _flip(step_dir, fraction):
  """Inverts 64 bytes of the largest data file at `fraction` of its length."""
  path = _largest_data_file(step_dir)
  offset = int(os.path.getsize(path) * fraction)
  with open(path, 'r+b') as f:
    f.seek(offset)
    data = f.read(64)
    f.seek(offset)
    f.write(bytes(b ^ 0xFF for b in data))


def flip_middle(step_dir):  # zstd usually notices this one
  _flip(step_dir, 0.5)


def flip_near_start(step_dir):  # zstd usually does not: finite garbage
  _flip(step_dir, 0.01)


def delete_metadata(step_dir):
  os.remove(os.path.join(step_dir, 'default', '_METADATA'))


def delete_manifest(step_dir):
  os.remove(os.path.join(step_dir, 'default', 'manifest.ocdbt'))


def empty_folder(step_dir):
  for entry in os.listdir(step_dir):
    path = os.path.join(step_dir, entry)
    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


DAMAGE = [truncate, flip_middle, flip_near_start, delete_metadata,
          delete_manifest, empty_folder]


def _params(wd, step):
  from fer_jax.train.checkpoint import load_numpy
  return load_numpy(wd, step=step)[1]['params']


def _assert_equal_trees(a, b):
  import jax
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope='module')
def abstract_state(reference):
  from tests.conftest import tiny_config
  from fer_jax.train import checkpoint as ckpt_lib
  from fer_jax.train.loop import Trainer
  return ckpt_lib.abstract_like(Trainer(tiny_config(**RUN), reference).state)


@pytest.mark.parametrize('damage', DAMAGE, ids=lambda f: f.__name__)
def test_restore_falls_back_to_the_newest_intact_and_moves_the_damaged_aside(
    damage, reference, abstract_state, tmp_path, capsys):
  from fer_jax.train import checkpoint as ckpt_lib
  wd = _copy(reference, tmp_path)
  damage(_step_dir(wd, 6))
  ckpts = ckpt_lib.Checkpoints(wd)
  state = ckpts.restore_latest(abstract_state)
  assert ckpts.latest_step() == 4
  ckpts.close()
  assert int(state.step) == 4
  _assert_equal_trees(state.params, _params(reference, 4))
  warnings = capsys.readouterr().err.strip().splitlines()
  assert len(warnings) == 1 and warnings[0].startswith(f'warning: {_step_dir(wd, 6)} ')
  moved = glob.glob(_step_dir(wd, 6) + '.damaged-*')
  assert len(moved) == 1 and f'moved it to {moved[0]} and resumed from step 4' in warnings[0]
  assert ckpt_lib.saved_steps(wd) == [4]


# The whole run for a few of them: resumed from step 4, it ends where the
# undamaged run ended (the rest restore the same way, above).
@pytest.mark.parametrize('damage', [truncate, flip_near_start, empty_folder],
                         ids=lambda f: f.__name__)
def test_resumes_from_the_older_checkpoint_and_ends_as_uninterrupted(
    damage, reference, tmp_path, capsys):
  from tests.conftest import tiny_config
  from fer_jax.train.checkpoint import saved_steps
  from fer_jax.train.loop import train_and_evaluate
  wd = _copy(reference, tmp_path)
  damage(_step_dir(wd, 6))
  train_and_evaluate(tiny_config(**RUN), wd)
  out = capsys.readouterr()
  assert f'Resuming {wd} from step 4.' in out.out
  warnings = [l for l in out.err.splitlines() if l.startswith('warning:')]
  assert len(warnings) == 1, out.err
  assert _step_dir(wd, 6) + ' ' in warnings[0] and 'resumed from step 4' in warnings[0]
  moved = glob.glob(_step_dir(wd, 6) + '.damaged-*')
  assert len(moved) == 1 and moved[0] in warnings[0]
  assert saved_steps(wd) == [4, 6]
  _assert_equal_trees(_params(wd, 6), _params(reference, 6))
  with open(os.path.join(wd, 'results.json')) as f, \
       open(os.path.join(reference, 'results.json')) as g:
    assert json.load(f) == json.load(g)


def test_metadata_the_arrays_do_not_need_is_no_damage(reference, tmp_path, capsys):
  # The step's _CHECKPOINT_METADATA (which holds the fingerprint) and the
  # per-process OCDBT manifest: the arrays still restore, intact and finite.
  from tests.conftest import tiny_config
  from fer_jax.train.loop import train_and_evaluate
  wd = _copy(reference, tmp_path)
  os.remove(os.path.join(_step_dir(wd, 6), '_CHECKPOINT_METADATA'))
  os.remove(glob.glob(os.path.join(_step_dir(wd, 6), 'default', 'ocdbt.process_*',
                                   'manifest.ocdbt'))[0])
  train_and_evaluate(tiny_config(**RUN), wd)
  out = capsys.readouterr()
  assert f'Resuming {wd} from step 6.' in out.out and 'warning' not in out.err
  _assert_equal_trees(_params(wd, 6), _params(reference, 6))


def test_no_checkpoint_restores_is_one_line_naming_the_folder(reference, tmp_path):
  from tests.conftest import tiny_config
  from fer_jax.train.checkpoint import DamagedCheckpointError, saved_steps
  from fer_jax.train.loop import train_and_evaluate
  wd = _copy(reference, tmp_path)
  truncate(_step_dir(wd, 6))
  empty_folder(_step_dir(wd, 4))
  with pytest.raises(DamagedCheckpointError) as e:
    train_and_evaluate(tiny_config(**RUN), wd)
  message = str(e.value)
  assert '\n' not in message
  assert f'No checkpoint in {os.path.join(wd, "checkpoints", "latest")} restores' in message
  assert _step_dir(wd, 6) + ' ' in message and _step_dir(wd, 4) + ' ' in message
  assert saved_steps(wd) == [4, 6]  # nothing moved: the user decides


def test_load_numpy_skips_a_damaged_newest_and_falls_back_from_best(
    reference, tmp_path, capsys):
  from fer_jax.train.checkpoint import DamagedCheckpointError, load_numpy, saved_steps
  wd = _copy(reference, tmp_path)
  flip_middle(_step_dir(wd, 6))
  step, tree = load_numpy(wd)
  assert step == 4
  _assert_equal_trees(tree['params'], _params(reference, 4))
  err = capsys.readouterr().err
  assert err.count('warning:') == 1 and _step_dir(wd, 6) + ' ' in err
  assert saved_steps(wd) == [4, 6]  # a reader moves nothing
  with pytest.raises(DamagedCheckpointError, match=f'^{_step_dir(wd, 6)} '):
    load_numpy(wd, step=6)

  best = saved_steps(wd, 'best')
  assert best
  shutil.rmtree(os.path.join(wd, 'checkpoints', 'best'))
  step, _ = load_numpy(wd, 'best')
  assert step == 4
  err = capsys.readouterr().err
  assert 'No best checkpoint in' in err and 'using the latest checkpoint' in err


def test_restore_best_falls_back_to_latest(reference, abstract_state, tmp_path,
                                           capsys):
  from fer_jax.train import checkpoint as ckpt_lib
  wd = _copy(reference, tmp_path)
  (best_step,) = ckpt_lib.saved_steps(wd, 'best')
  truncate(_step_dir(wd, best_step, 'best'))
  ckpts = ckpt_lib.Checkpoints(wd, best_metric='val/rmse_mean')
  state = ckpts.restore_best(abstract_state)
  ckpts.close()
  assert int(state.step) == 6
  err = capsys.readouterr().err
  assert _step_dir(wd, best_step, 'best') + ' does not restore' in err
  assert 'used the latest checkpoint' in err
  assert glob.glob(_step_dir(wd, best_step, 'best') + '.damaged-*')

  shutil.rmtree(os.path.join(wd, 'checkpoints', 'best'))
  ckpts = ckpt_lib.Checkpoints(wd, best_metric='val/rmse_mean')
  assert int(ckpts.restore_best(abstract_state).step) == 6
  ckpts.close()
  assert 'No best checkpoint in' in capsys.readouterr().err
