"""Command-line overrides reach every stage of a staged config (winning over the
stage's own value) unless they name one; one that reaches nothing is an error."""
import pytest

from fer_jax import cli
from launch import paper_runs
from fer_jax.train import stages as stages_lib
from fer_jax.train.workdir import ConfigError


def _stages(config):
  return {name: c for name, _, c in stages_lib.stage_configs(config, '/w')}


@pytest.mark.parametrize('arg', ['cascade', 'cascade,reduced', 'direct'])
def test_num_epochs_reaches_every_stage_of_001(arg):
  from configs.transfer import cascade_001
  c = cascade_001.get_config(arg)
  before = {n: s.num_epochs for n, s in _stages(c).items()}
  assert set(before.values()) != {3}  # the stages set their own (30; 1 and 8)
  got = _stages(stages_lib.apply_overrides(c, {'num_epochs': '3'}))
  assert {n: s.num_epochs for n, s in got.items()} == {n: 3 for n in before}
  assert c.num_epochs == 30  # the input config is not changed


def test_num_epochs_reaches_both_stages_of_004_and_callbacks_only_where_they_are():
  from configs.transfer import zaitouny_004
  c = zaitouny_004.get_config('mobilenet_v2')
  got = _stages(stages_lib.apply_overrides(
      c, {'num_epochs': '3', 'callbacks.early_stopping.patience': '7'}))
  assert got['frozen'].num_epochs == got['unfreeze'].num_epochs == 3
  assert got['frozen'].callbacks.early_stopping.patience == 7
  assert not got['unfreeze'].callbacks  # the unfreeze stage has none: untouched
  # Unnamed keys keep the stages' own differences elsewhere.
  assert got['frozen'].optim.learning_rate == 1e-4
  assert got['unfreeze'].optim.learning_rate == 1e-5


def test_manual_dir_reaches_every_stage_of_real_001(tmp_path):
  from configs.transfer import cascade_001
  c = cascade_001.get_config('cascade,real')
  assert [s.data.source.manual_dir for s in _stages(c).values()] == ['', '']
  got = _stages(stages_lib.apply_overrides(c, {'data.source.manual_dir': str(tmp_path)}))
  assert [s.data.source.manual_dir for s in got.values()] == [str(tmp_path)] * 2
  assert [s.data.name for s in got.values()] == ['fer2013', 'sfew']
  # One per stage, by name: the two datasets' own folders.
  got = _stages(stages_lib.apply_overrides(
      c, {'stages.fer.data.source.manual_dir': '/data/fer',
          'stages.1.data.source.manual_dir': '/data/sfew'}))
  assert got['fer'].data.source.manual_dir == '/data/fer'
  assert got['sfew'].data.source.manual_dir == '/data/sfew'


def test_a_named_stage_override_changes_that_stage_only():
  from tests.train import tiny_stages_config
  c = tiny_stages_config.get_config()
  before = _stages(c)
  got = _stages(stages_lib.apply_overrides(c, {'stages.1.optim.learning_rate': '0.25'}))
  assert got['small'].optim.learning_rate == 0.25
  assert got['large'].optim.learning_rate == before['large'].optim.learning_rate
  for name in got:  # nothing else moved
    a, b = before[name].to_dict(), got[name].to_dict()
    a['optim'].pop('learning_rate'), b['optim'].pop('learning_rate')
    assert a == b
  by_name = _stages(stages_lib.apply_overrides(
      c, {'stages.small.optim.learning_rate': '0.25'}))
  assert by_name['small'].to_dict() == got['small'].to_dict()
  # A global key then a stage's own: the stage's wins there, the global elsewhere.
  both = _stages(stages_lib.apply_overrides(
      c, {'total_steps': '4', 'stages.large.total_steps': '2'}))
  assert (both['large'].total_steps, both['small'].total_steps) == (2, 4)


def test_starting_weights_reach_the_first_stage_only():
  from configs.transfer import zaitouny_004
  c = zaitouny_004.get_config('mobilenet_v2')
  got = stages_lib.stage_configs(stages_lib.apply_overrides(
      c, {'init.torchvision': 'mobilenet_v2.pth', 'init.head': 'reinit',
          'init.checkpoint': 'latest'}), '/w')
  (_, d0, first), (_, _, second) = got
  assert first.init.torchvision == 'mobilenet_v2.pth' and first.init.head == 'reinit'
  # The unfreeze stage continues the frozen one: its head is not re-initialised.
  assert second.init.torchvision == '' and second.init.workdir == d0
  assert second.init.head == 'keep'
  assert first.init.checkpoint == second.init.checkpoint == 'latest'


def test_list_entries_are_reachable_by_index():
  from configs.transfer import zaitouny_004
  c = stages_lib.apply_overrides(zaitouny_004.get_config('real'), {
      'data.mixture.0.source.manual_dir': '/data/kdef',
      'data.mixture.1.source.manual_dir': '/data/affectnet'})
  assert [e['source']['manual_dir'] for e in c.data.mixture] == ['/data/kdef',
                                                                 '/data/affectnet']


@pytest.mark.parametrize('overrides, names', [
    ({'no_such_key': '1'}, ['no_such_key', 'num_epochs']),  # lists valid fields
    ({'optim.lerning_rate': '1'}, ['optim.lerning_rate', 'learning_rate']),
    ({'stages.9.num_epochs': '1'}, ["'9'", "0 'fer', 1 'sfew'"]),
    ({'stages.sfew.optim.lr': '1'}, ["'sfew'", 'optim.lr']),
    ({'stages.fer': '1'}, ['stages.fer', 'stages.0.optim']),
    ({'num_epochs': 'abc'}, ['num_epochs', 'number']),
    ({'num_epochs': '2.5'}, ['num_epochs', 'integer']),
    ({'data.source.manual_dir': '/x'}, ['data.source.manual_dir', 'preset']),  # synthetic
])
def test_an_override_that_reaches_nothing_is_one_line_naming_it(overrides, names):
  from configs.transfer import cascade_001
  with pytest.raises(ConfigError) as e:
    stages_lib.apply_overrides(cascade_001.get_config('cascade'), overrides)
  text = cli.message(e.value)
  assert '\n' not in text
  for n in names:
    assert n in text, text


def test_values_take_the_type_of_their_field():
  from tests.conftest import tiny_config
  c = stages_lib.apply_overrides(tiny_config(), {
      'model.name': '123', 'optim.learning_rate': '1', 'progress': 'true',
      'task.targets': 'expression', 'data.augment.rotation': '4'})
  assert c.model.name == '123' and c.optim.learning_rate == 1.0
  assert c.progress is True and c.task.targets == ('expression',)
  assert isinstance(c.data.augment.rotation, float)


def test_config_flags_are_taken_off_the_command_line():
  argv = ['train.py', '--config=c.py', '--config.total_steps=3', '--workdir', 'w',
          '--config.model.name', 'resnet18', '--noconfig.progress', '--config.bf16',
          '--config.stages.1.optim.learning_rate=1e-4', '--config.total_steps=5']
  rest, found = cli.split_config_overrides(argv)
  assert rest == ['train.py', '--config=c.py', '--workdir', 'w']
  assert found == {'model.name': 'resnet18', 'progress': 'False', 'bf16': 'True',
                   'stages.1.optim.learning_rate': '1e-4', 'total_steps': '5'}


def test_report_sets_reach_the_runs_they_name():
  from configs.transfer import ulloa_002
  sets = ['afew_va:data.source.manual_dir=/data/AFEW-VA',
          'semaine:data.source.manual_dir=/data/SEMAINE', 'total_steps=7']
  dirs = {}
  for ds in ulloa_002.DATASETS:
    c = paper_runs.apply_overrides(ulloa_002.get_config(f'{ds},real'), sets,
                                   ('vgg11_bn', ds))
    dirs[ds] = (c.data.source.manual_dir, c.total_steps)
  assert dirs == {'afew_va': ('/data/AFEW-VA', 7), 'semaine': ('/data/SEMAINE', 7)}
  paper_runs.check_selectors(sets, ('vgg11_bn', 'afew_va', 'semaine'))
  with pytest.raises(ConfigError, match="'semain' names no run"):
    paper_runs.check_selectors(['semain:total_steps=1'], ('afew_va', 'semaine'))


def test_a_report_set_may_miss_some_runs_but_not_all(tmp_path):
  from configs.transfer import cascade_001
  runs = {k: (cascade_001.get_config(f'{k},real'), ('alexnet', k))
          for k in cascade_001.METHODS}
  fer, sfew = tmp_path / 'fer', tmp_path / 'sfew'
  fer.mkdir(), sfew.mkdir()
  # 'direct' has no 'fer' stage: skipped there, reached in 'cascade'.
  sets = [f'stages.fer.data.source.manual_dir={fer}', 'cascade:total_steps=5']
  paper_runs.check_runs(runs, sets, validate=False)
  c = paper_runs.apply_overrides(cascade_001.get_config('direct,real'), sets,
                                 ('alexnet', 'direct'))
  assert c.stages[0]['data.source']['manual_dir'] == ''  # untouched
  assert 'total_steps' not in c.stages[0]
  with pytest.raises(ConfigError, match='stages.fir.*reaches no run'):
    paper_runs.check_runs(runs, ['stages.fir.num_epochs=1'], validate=False)
  # Validated: the stages' empty manual_dirs are named before anything trains.
  with pytest.raises(ConfigError,
                     match="alexnet_cascade stage 'sfew'.*manual_dir is empty"):
    paper_runs.check_runs({'alexnet_cascade': runs['cascade']}, sets[:1])
