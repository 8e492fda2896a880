"""A workdir's config: every name is checked before config.json is written, and
a resume may change only what does not change results."""
import json
import os

import numpy as np
import pytest

from fer_jax.train import loop
from fer_jax.train.workdir import (ConfigError, ConfigMismatchError,
                                   check_workdir_config, validate_config)
from tests.conftest import tiny_config


@pytest.mark.parametrize('key, value, named', [
    ('model.name', 'resnet9000', 'resnet9000'),
    ('model.head', 'softmaxx', 'softmaxx'),
    ('task.name', 'afect', 'afect'),
    ('data.name', 'affectnett', 'affectnett'),
    ('data.source.preset', 'affectnet_lik', 'affectnet_lik'),
    ('data.crop', 'eye', "'eye'"),
    ('data.normalize', 'unit8', 'unit8'),
    ('optim.name', 'sgdd', 'sgdd'),
    ('schedule.name', 'cosin', 'cosin'),
    ('trainable', 'last:x', 'last:x'),
    ('frozen_bn', 'frozen', 'frozen'),
    ('init.head', 'new', "'new'"),
    ('init.torchvision', '/no/such/file.pth', '/no/such/file.pth'),
])
def test_a_bad_name_is_refused_before_anything_is_written(key, value, named, tmp_path):
  c = tiny_config(**{key: value})
  wd = str(tmp_path / 'run')
  with pytest.raises(ConfigError) as e:
    check_workdir_config(c, wd)
  assert named in str(e.value) and key.split('.')[-1] in str(e.value)
  assert not os.path.exists(wd)  # the corrected command starts cleanly
  check_workdir_config(tiny_config(), wd)
  assert os.path.exists(os.path.join(wd, 'config.json'))


def test_bad_source_arguments_and_folders_are_named(tmp_path):
  c = tiny_config(**{'data.source': {'preset': 'affectnet_like', 'sead': 1}})
  with pytest.raises(ConfigError, match="sead"):
    validate_config(c)
  c = tiny_config(**{'data.name': 'fer2013', 'data.source': {'manual_dir': ''}})
  with pytest.raises(ConfigError, match='manual_dir is empty'):
    validate_config(c)
  c.data.source.manual_dir = str(tmp_path / 'missing')
  with pytest.raises(ConfigError, match='missing.* is not a folder'):
    validate_config(c)
  c.data.source.manual_dir = str(tmp_path)
  validate_config(c)  # names fine (the layout is the adapter's to check)


def test_every_shipped_config_validates():
  from configs import va_regression
  from configs.multitask import common as mt
  from configs.transfer import cascade_001, ulloa_002, zaitouny_004
  from fer_jax.train.stages import stage_configs
  configs = [va_regression.get_config(), ulloa_002.get_config('resnet152,semaine'),
             mt.get('sjmt', 'paper'), mt.get('sjmt', 'paper').pretrain]
  configs += [cascade_001.get_config(m) for m in cascade_001.METHODS]
  configs += [zaitouny_004.get_config(m) for m in zaitouny_004.MODELS]
  for c in configs:
    for _, _, s in (stage_configs(c, '/w') if c.get('stages') else [(0, 0, c)]):
      validate_config(s, check_files=False)


# ---- resuming with other settings

@pytest.mark.parametrize('change', [
    {'progress': True}, {'data.num_threads': 1}, {'log_every_steps': 1},
    {'checkpoint_every_steps': 6}, {'keep_checkpoints': 5},
    {'total_steps': 30},                                     # constant lr
    {'total_steps': 30, 'schedule': {'name': 'step', 'every_epochs': 2}},
])
def test_run_only_settings_and_a_longer_run_may_resume(change, tmp_path):
  base = {k: v for k, v in change.items() if k == 'schedule'}
  check_workdir_config(tiny_config(**base), str(tmp_path))
  check_workdir_config(tiny_config(**change), str(tmp_path))
  with open(tmp_path / 'config.json') as f:
    stored = json.load(f)
  key = [k for k in change if k != 'schedule'][0]
  node = stored
  for p in key.split('.'):
    node = node[p]
  assert node == change[key]  # the new value rules from now on


@pytest.mark.parametrize('change, named', [
    ({'eval_every_steps': 3}, 'eval_every_steps: 6 vs 3'),  # picks the best
    ({'total_steps': 6}, 'total_steps: 12 vs 6'),           # shorter
    ({'seed': 1}, 'seed: 0 vs 1'),
])
def test_result_changing_settings_are_refused(change, named, tmp_path):
  check_workdir_config(tiny_config(), str(tmp_path))
  with pytest.raises(ConfigMismatchError, match=named):
    check_workdir_config(tiny_config(**change), str(tmp_path))


def test_a_longer_cosine_run_is_another_run(tmp_path):
  cos = {'schedule': {'name': 'cosine', 'warmup_steps': 0}}
  check_workdir_config(tiny_config(**cos), str(tmp_path))
  with pytest.raises(ConfigMismatchError, match="total_steps: 12 vs 30.*'cosine'"):
    check_workdir_config(tiny_config(**cos, total_steps=30), str(tmp_path))
  check_workdir_config(tiny_config(total_steps=30), str(tmp_path / 'stage'))
  with pytest.raises(ConfigMismatchError, match='finished run is not trained again'):
    check_workdir_config(tiny_config(total_steps=40), str(tmp_path / 'stage'),
                         allow_longer=False)


def test_a_longer_run_goes_on_as_if_it_had_been_started_that_long(tmp_path):
  from fer_jax.train import checkpoint as ckpt_lib
  c = tiny_config(**{'data.eval_records': 32, 'eval_every_steps': 6})
  longer = tiny_config(**{'data.eval_records': 32, 'eval_every_steps': 6,
                          'total_steps': 18, 'progress': True})
  loop.train_and_evaluate(c, str(tmp_path / 'run'))
  loop.train_and_evaluate(longer, str(tmp_path / 'run'))  # resumes at 12
  loop.train_and_evaluate(longer, str(tmp_path / 'fresh'))
  import jax
  step_a, a = ckpt_lib.load_numpy(str(tmp_path / 'run'), 'latest')
  step_b, b = ckpt_lib.load_numpy(str(tmp_path / 'fresh'), 'latest')
  assert step_a == step_b == 18
  for x, y in zip(jax.tree.leaves(a['params']), jax.tree.leaves(b['params'])):
    np.testing.assert_allclose(x, y, atol=1e-6)


def test_a_folder_that_is_not_a_trained_run_is_named(tmp_path):
  from fer_jax.train.workdir import check_trained_run
  with pytest.raises(ConfigError, match='does not exist'):
    check_trained_run(str(tmp_path / 'nope'))
  with pytest.raises(ConfigError, match='no config.json'):
    check_trained_run(str(tmp_path))
  (tmp_path / 'config.json').write_text(json.dumps({'pretrain': {}}))
  with pytest.raises(ConfigError, match='not a trained run.*study'):
    check_trained_run(str(tmp_path))
  (tmp_path / 'config.json').write_text(json.dumps(
      {'model': {}, 'task': {}, 'data': {}, 'stages': [{'name': 'a'}]}))
  with pytest.raises(ConfigError, match='staged run'):
    check_trained_run(str(tmp_path))
  (tmp_path / 'config.json').write_text(json.dumps({'model': {}, 'task': {}, 'data': {}}))
  with pytest.raises(ConfigError, match='never trained'):
    check_trained_run(str(tmp_path))
  (tmp_path / 'checkpoints').mkdir()
  assert check_trained_run(str(tmp_path)) == {'model': {}, 'task': {}, 'data': {}}


def test_a_run_written_before_its_config_stated_pp_still_resumes(tmp_path):
  from configs import common
  from fer_jax.data import pp
  config = tiny_config()
  if not config.data.get('pp'):
    common.set_pp(config, pp.from_fields(config.data))
  check_workdir_config(config, str(tmp_path))
  with open(tmp_path / 'config.json') as f:
    stored = json.load(f)
  stored['data']['pp'] = ''  # as a run of an older checkout stored it
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump(stored, f)
  check_workdir_config(config, str(tmp_path))  # the same pipeline: resumes
  other = tiny_config()
  common.set_pp(other, pp.from_fields(config.data).replace('unit', 'float'))
  stored['data']['pp'] = ''
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump(stored, f)
  with pytest.raises(ConfigMismatchError, match='pp'):
    check_workdir_config(other, str(tmp_path))
