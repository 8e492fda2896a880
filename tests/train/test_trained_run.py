"""fer_jax/train/trained.py: a run read back by `load_run` holds the checkpoint
the loop saved, and its model predicts as the loop's eval step does."""
import os
import shutil

import jax
import numpy as np
import pytest

from fer_jax.data import pipeline
from fer_jax.data.sources import get_source
from fer_jax.train import checkpoint as ckpt_lib
from fer_jax.train import loop
from fer_jax.train.step import make_predict_fn
from fer_jax.train.trained import load_run
from tests.conftest import tiny_config


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """(config, workdir) of a 4-step run: checkpoints at 2 and 4, best at 4."""
  c = tiny_config(total_steps=4, eval_every_steps=4, checkpoint_every_steps=2,
                  log_every_steps=2, **{'data.train_records': 32,
                                        'data.eval_records': 16})
  wd = str(tmp_path_factory.mktemp('trained') / 'run')
  loop.train_and_evaluate(c, wd)
  return c, wd


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize('which', ['best', 'latest'])
def test_load_run_holds_the_checkpoint_and_the_config(tiny_run, which):
  c, wd = tiny_run
  run = load_run(wd, which)
  step, tree = ckpt_lib.load_numpy(wd, which)
  assert run.workdir == wd and run.step == step
  # small_cnn has BatchNorm: its statistics come along.
  assert sorted(run.variables) == ['batch_stats', 'params']
  _assert_trees_equal(run.variables['params'], tree['params'])
  _assert_trees_equal(run.variables['batch_stats'], tree['batch_stats'])
  assert run.config.model.widths == (8, 16)  # JSON's lists back to tuples
  assert run.task.targets == c.task.targets
  assert run.model == loop.build_model(c, run.task)


def test_its_model_predicts_as_the_train_loop(tiny_run):
  c, wd = tiny_run
  run = load_run(wd, 'latest')
  t = loop.Trainer(c, wd)
  ckpts = ckpt_lib.Checkpoints(wd)
  state = ckpts.restore_latest(ckpt_lib.abstract_like(t.state))
  ckpts.close()
  assert int(state.step) == run.step
  split = c.data.eval_split
  source = pipeline.limit(get_source(c.data, split), 8)
  batch = pipeline.eval_dataset(source, t.preprocess(split), 8)[0]
  want, want_loss = jax.device_get(t.eval_step(state, batch))
  got, got_loss = jax.device_get(
      jax.jit(make_predict_fn(run.model, run.task))(run.variables, batch))
  assert sorted(got) == sorted(want)
  for k in want:
    np.testing.assert_array_equal(got[k], want[k])
  assert got_loss == want_loss


def test_best_falls_back_to_latest_as_checkpoints_do(tiny_run, tmp_path, capsys):
  _, wd = tiny_run
  copy = str(tmp_path / 'run')
  shutil.copytree(wd, copy)
  shutil.rmtree(os.path.join(copy, 'checkpoints', 'best'))
  run = load_run(copy)
  assert run.step == ckpt_lib.load_numpy(wd, 'latest')[0] == 4
  assert 'No best checkpoint' in capsys.readouterr().err


def test_a_folder_without_config_json_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    load_run(str(tmp_path / 'nothing'))
  assert str(e.value) == (f'{tmp_path / "nothing" / "config.json"} does not exist: '
                          '--workdir must be a directory written by launch/train.py')
