"""experiment.run: one call for the three shapes of a config's run (what
launch/train.py calls), and the scalar lines it prints."""
import json

import pytest

from fer_jax.protocols import experiment
from tests.conftest import tiny_config


def test_scalar_lines_are_sorted_aligned_and_skip_the_rest():
  got = experiment.scalar_lines({'val/rmse': 0.123456, 'step': 12,
                                 'val/confusion': [[1, 0], [0, 1]],
                                 'a': 2.0, 'name': 'x'})
  assert got == ['a         2.0000', 'step      12', 'val/rmse  0.1235']
  assert experiment.scalar_lines({}) == []


def test_a_plain_config_trains_once_and_returns_results_json(tmp_path):
  c = tiny_config(total_steps=2, eval_every_steps=2, checkpoint_every_steps=2)
  results, path = experiment.run(c, str(tmp_path))
  assert path == str(tmp_path / 'results.json')
  assert json.load(open(path))['val/rmse_mean'] == pytest.approx(
      results['val/rmse_mean'])


def test_kfold_returns_the_mean_over_folds(tmp_path):
  c = tiny_config(total_steps=2, eval_every_steps=2, checkpoint_every_steps=2)
  c.kfold = dict(num_folds=2, group_by='auto', seed=0)
  c.data.train_records = 40
  results, path = experiment.run(c, str(tmp_path))
  assert path == str(tmp_path / 'kfold_results.json')
  saved = json.load(open(path))
  folds = [r['val/rmse_mean'] for r in saved['per_fold']]
  assert results['val/rmse_mean'] == pytest.approx(sum(folds) / 2)
  assert (tmp_path / 'fold_1' / 'results.json').exists()


def test_stages_run_in_turn_and_name_their_results(tmp_path):
  from tests.train import tiny_stages_config
  c = tiny_stages_config.get_config()
  with c.unlocked():
    c.stages = (dict(name='large', total_steps=2),
                dict(name='small', total_steps=2, **{'init.head': 'reinit'}))
  results, path = experiment.run(c, str(tmp_path))
  by_stage = json.load(open(path))
  assert set(by_stage) == {'large', 'small'}
  assert results['small/step'] == by_stage['small']['step'] == 2
  assert (tmp_path / '1_small' / 'results.json').exists()
