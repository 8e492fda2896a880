"""Starting weights from a fer_jax workdir (config.init) and chained stages:
each stage starts from the previous one's best checkpoint, a new head is fresh,
frozen parts do not move, and a run stopped in stage 2 resumes in stage 2."""
import os

import jax
import numpy as np
import pytest

from fer_jax.models import partition
from fer_jax.train import checkpoint as ckpt_lib
from fer_jax.train import loop
from fer_jax.train import stages as stages_lib


def _flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in partition.flatten(tree).items()}


def _equal(a, b):
  fa, fb = _flat(a), _flat(b)
  return fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)


@pytest.fixture(scope='module')
def source_run(tmp_path_factory):
  from tests.conftest import tiny_config
  wd = str(tmp_path_factory.mktemp('source'))
  c = tiny_config(**{'data.eval_records': 32, 'task.targets': ('expression',)})
  loop.train_and_evaluate(c, wd)
  return c, wd


def test_init_from_workdir_loads_the_best_checkpoint(source_run, tmp_path):
  c, wd = source_run
  _, best = ckpt_lib.load_numpy(wd, 'best')
  c2 = c.copy_and_resolve_references()
  c2.init.workdir = wd
  t = loop.Trainer(c2, str(tmp_path))
  assert _equal(jax.device_get(t.state.params), best['params'])
  assert _equal(jax.device_get(t.state.batch_stats), best['batch_stats'])
  # A new label space: features from the workdir, head as a fresh run has it.
  c3 = c.copy_and_resolve_references()
  c3.init.workdir, c3.init.head = wd, 'reinit'
  c3.task.targets = ('valence', 'arousal')
  fresh = jax.device_get(loop.Trainer(c, str(tmp_path)).state.params)
  t3 = loop.Trainer(c3, str(tmp_path))
  p3 = jax.device_get(t3.state.params)
  assert _equal(p3['features'], best['params']['features'])
  assert p3['head']['out']['kernel'].shape[-1] == 2
  assert not _equal(p3['features'], fresh['features'])


def test_a_resumed_run_does_not_read_its_init_weights_again(source_run,
                                                            tmp_path):
  import shutil
  c, wd = source_run
  src = str(tmp_path / 'pretrained')
  shutil.copytree(wd, src)
  c2 = c.copy_and_resolve_references()
  c2.init.workdir = src
  run = str(tmp_path / 'run')
  first = loop.train_and_evaluate(c2, run)
  shutil.rmtree(src)  # a resume restores the run's own checkpoint
  again = loop.train_and_evaluate(c2, run)
  assert again['val/expression/accuracy'] == first['val/expression/accuracy']
  with pytest.raises(FileNotFoundError, match='pretrained'):
    loop.Trainer(c2, str(tmp_path / 'fresh'))  # a fresh run still needs it


def test_init_from_a_workdir_of_another_model_names_it(source_run, tmp_path):
  c, wd = source_run
  c2 = c.copy_and_resolve_references()
  c2.init.workdir = wd
  c2.model.widths = (8, 24)
  with pytest.raises(partition.WeightMismatchError, match='wrongly shaped') as e:
    loop.Trainer(c2, str(tmp_path))
  assert wd in str(e.value) and 'conv1' in str(e.value)


def _two_stage_config():
  from tests.conftest import tiny_config
  c = tiny_config(**{'data.eval_records': 32, 'task.targets': ('expression',)})
  c.stages = (
      dict(name='wild', **{'data.source.preset': 'affectnet_like',
                           'total_steps': 6}),
      # freeze-then-unfreeze's first half: a new head on frozen features.
      dict(name='small', **{'data.source.preset': 'sfew_like',
                            'init.head': 'reinit', 'trainable': 'head',
                            'optim.learning_rate': 1e-3, 'total_steps': 6}),
  )
  return c


def test_stages_chain_best_checkpoints_and_freeze(tmp_path):
  c = _two_stage_config()
  wd = str(tmp_path / 'run')
  results = stages_lib.run_stages(c, wd)
  assert list(results) == ['wild', 'small']
  s0, s1 = os.path.join(wd, '0_wild'), os.path.join(wd, '1_small')
  _, best0 = ckpt_lib.load_numpy(s0, 'best')
  _, last1 = ckpt_lib.load_numpy(s1, 'latest')
  # Stage 1 trained only its head: its features are stage 0's best, unchanged.
  assert _equal(last1['params']['features'], best0['params']['features'])
  assert not _equal(last1['params']['head'], best0['params']['head'])
  names = stages_lib.stage_configs(c, wd)
  assert names[1][2].init.workdir == s0
  assert names[1][2].data.source.preset == 'sfew_like'
  assert names[0][2].init.workdir == ''


def test_a_run_stopped_in_stage_two_resumes_in_stage_two(tmp_path, monkeypatch):
  c = _two_stage_config()
  wd = str(tmp_path / 'run')
  real = loop.train_and_evaluate
  calls = []

  def stop_in_stage_two(config, workdir):
    calls.append(os.path.basename(workdir))
    if workdir.endswith('1_small'):
      raise KeyboardInterrupt  # killed before stage 2 finished
    return real(config, workdir)

  monkeypatch.setattr(loop, 'train_and_evaluate', stop_in_stage_two)
  with pytest.raises(KeyboardInterrupt):
    stages_lib.run_stages(c, wd)
  monkeypatch.setattr(loop, 'train_and_evaluate',
                      lambda cfg, w: calls.append(os.path.basename(w)) or
                      real(cfg, w))
  results = stages_lib.run_stages(c, wd)
  assert calls == ['0_wild', '1_small', '1_small']  # stage 1 not trained again
  assert set(results) == {'wild', 'small'}


def test_unknown_stage_override_names_the_stage(tmp_path):
  c = _two_stage_config()
  c.stages = (dict(name='oops', **{'optim.learnig_rate': 1.0}),)
  with pytest.raises(KeyError, match="Stage 'oops'.*learnig_rate"):
    stages_lib.stage_configs(c, str(tmp_path))


@pytest.mark.parametrize('arg', ['cascade', 'direct,vgg_cnn_m', 'cascade,real',
                                 'cascade,reduced'])
def test_001_configs_chain_the_papers_stages(arg, tmp_path):
  from configs.transfer import cascade_001
  c = cascade_001.get_config(arg)
  stages = stages_lib.stage_configs(c, str(tmp_path))
  want = ['fer', 'sfew'] if arg.startswith('cascade') else ['sfew']
  assert [s[0] for s in stages] == want
  last = stages[-1][2]
  assert last.data.crop == 'eyes' and last.data.channels == 1
  assert last.data.normalize == 'minmax'
  if len(stages) == 2:
    assert stages[0][2].data.crop == 'none'  # FER-2013 is not aligned
    # Same 7 classes: the SFEW stage keeps the FER-2013 classifier.
    assert last.init.head == 'keep' and last.init.workdir == stages[0][1]
    # The ImageNet file starts stage 1 only; stage 2 starts from stage 1.
    c.init.caffe = '/weights/bvlc_alexnet.caffemodel'
    first, second = [s[2] for s in stages_lib.stage_configs(c, str(tmp_path))]
    assert first.init.caffe == c.init.caffe and not first.init.workdir
    assert second.init.caffe == '' and second.init.workdir == stages[0][1]
  if 'reduced' not in arg:
    assert last.optim.to_dict() == dict(name='sgd', learning_rate=1e-3,
                                         momentum=0.9, weight_decay=5e-4)
    assert last.schedule.every_epochs == 10 and last.schedule.factor == 0.1
    assert last.data.image_size == (224 if 'vgg' in arg else 227)
  with pytest.raises(ValueError, match='Unknown arguments'):
    cascade_001.get_config('cascade,alexnett')


@pytest.mark.parametrize('arg', ['mobilenet_v2', 'inception_v3',
                                 'resnet50_v2'])
def test_004_configs_freeze_then_unfreeze(arg, tmp_path):
  from configs.transfer import zaitouny_004
  c = zaitouny_004.get_config(arg)
  (n0, _, frozen), (n1, d1, unfreeze) = stages_lib.stage_configs(
      c, str(tmp_path))
  assert (n0, n1) == ('frozen', 'unfreeze')
  assert frozen.trainable == 'head' and frozen.optim.learning_rate == 1e-4
  assert frozen.callbacks.early_stopping.patience > 0
  # MobileNetV2: Keras' last 56 layers; the other two fine-tune whole (6.2).
  assert unfreeze.trainable == ('keras_last:56' if arg == 'mobilenet_v2'
                                else 'all')
  assert unfreeze.optim.learning_rate == 1e-5 and unfreeze.num_epochs == 25
  assert not unfreeze.callbacks  # best checkpoint only
  assert frozen.model.head == 'zaitouny' and frozen.data.augment.rotation == 45


def test_004_reduced_runs_and_unfreezes_only_the_last_layers(tmp_path):
  from configs.transfer import zaitouny_004
  from fer_jax.models import get_model
  c = zaitouny_004.get_config('reduced')
  c.data.train_records, c.data.eval_records = 128, 64
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 4
  wd = str(tmp_path / 'run')
  results = stages_lib.run_stages(c, wd)
  assert list(results) == ['base', 'frozen', 'unfreeze']
  _, frozen = ckpt_lib.load_numpy(os.path.join(wd, '1_frozen'), 'best')
  _, last = ckpt_lib.load_numpy(os.path.join(wd, '2_unfreeze'), 'latest')
  model = get_model('small_cnn', num_outputs=7, widths=(16, 32, 64),
                    hidden=128)
  order = partition.layer_order(model, np.zeros((1, 48, 48, 1), np.float32))
  moved = [name for name in order
           if not _equal(partition.unflatten({tuple(k.split('/')): v for k, v in
                                              _flat(last['params']).items()
                                              if k.startswith(name + '/')}),
                         partition.unflatten({tuple(k.split('/')): v for k, v in
                                              _flat(frozen['params']).items()
                                              if k.startswith(name + '/')}))]
  # 'last:2': the head and the last 2 layers of the base, as Keras' unfreeze.
  base = [n for n in order if n.startswith('features/')]
  heads = [n for n in order if n.startswith('head/')]
  assert set(moved) == set(base[-2:]) | set(heads), (moved, order)
