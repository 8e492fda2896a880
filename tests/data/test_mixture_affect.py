"""A mixture of datasets that all carry the affect task's labels trains the
ordinary 'affect' task through grain's mixing (001's FER32+EmotiW, 004's
KDEF + AffectNet), evaluated on sources other than the training ones."""
import collections

import ml_collections
import numpy as np
import pytest

from fer_jax.data import mixing, pipeline


class _Fake:
  def __init__(self, n, value, groups=('expression',)):
    self.n, self.value, self.labels = n, value, tuple(groups)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {'image': np.full((8, 8, 1), self.value, np.uint8),
            'expression': np.int32(i % 7), 'has_expression': np.bool_(True),
            'eyes': np.asarray([[2.5, 3.0], [5.5, 3.0]], np.float32)}


def test_affect_mixture_samples_like_the_concatenation(monkeypatch):
  from fer_jax.data import sources
  fakes = {'small': _Fake(30, 10), 'large': _Fake(270, 200)}
  monkeypatch.setattr(sources, 'get_source',
                      lambda d, split: fakes[d.source.which])
  d = ml_collections.ConfigDict({'train_split': 'train', 'mixture': [
      dict(name='x', source=dict(which='small'), weight='size', crop='eyes'),
      dict(name='x', source=dict(which='large'), weight='size')]})
  mixing.check_task_groups(d, ('expression',))
  assert mixing.mixture_num_records(d) == 300
  pre = pipeline.Preprocess('gray|resize(8)|unit')
  ds = mixing.train_mixture(d, pre, 20, 50, seed=0, union_labels=False)
  b = ds[0]
  assert 'labels' not in b and 'label_mask' not in b  # the affect task's fields
  assert b['expression'].shape == (20,) and b['has_expression'].all()
  ids = np.concatenate([ds[k]['dataset_id'] for k in range(50)])
  assert np.mean(ids == 0) == pytest.approx(0.1, abs=0.03)  # 30 / 300
  # Each entry keeps its own crop; the rest of preprocessing is shared.
  pres = [mixing.entry_preprocess(pre, e) for e in d.mixture]
  assert [p.effective_pp for p in pres] == [
      'crop_eyes(8)|gray|resize(8)|unit', 'gray|resize(8)|unit']
  # data.train_records caps every entry (quick runs).
  d.train_records = 20
  assert mixing.mixture_num_records(d) == 40


def test_an_entry_without_the_task_labels_is_refused(tmp_path):
  d = ml_collections.ConfigDict({'train_split': 'train', 'mixture': [
      dict(name='synthetic', source=dict(preset='sfew_like')),
      dict(name='synthetic', source=dict(preset='emotionet_like'))]})
  with pytest.raises(ValueError, match="entry 1 .*annotates \\['aus'\\]"):
    mixing.check_task_groups(d, ('expression',))
  mixing.check_task_groups(d, ('expression', 'aus'))  # masked multi-target
  from fer_jax.train import loop
  from tests.conftest import tiny_config
  c = tiny_config(**{'task.targets': ('expression',)})
  c.data.mixture = list(d.mixture)
  with pytest.raises(ValueError, match='none of the task targets'):
    loop.Trainer(c, str(tmp_path))


@pytest.mark.parametrize('arg', ['mobilenet_v2', 'inception_v3,reduced',
                                 'resnet50_v2,real'])
def test_004_trains_on_kdef_and_affectnet_and_tests_on_fer2013(arg, tmp_path):
  from configs.transfer import zaitouny_004
  from fer_jax.train import stages
  for name, _, c in stages.stage_configs(zaitouny_004.get_config(arg),
                                         str(tmp_path)):
    train = [(e['name'], dict(e['source'])) for e in c.data.mixture]
    test = c.data.test_sources.test
    if 'real' in arg:
      assert [n for n, _ in train] == ['kdef', 'affectnet']
      assert (c.data.name, test.name) == ('kdef', 'fer2013')
    else:
      assert [s['preset'] for _, s in train] == ['kdef_like', 'affectnet_like']
      assert c.data.source.preset == 'kdef_like'   # validation: KDEF
      assert test.source.preset == 'fer2013_like'  # test: FER-2013
    assert (c.data.name, c.data.source.to_dict()) != train[1]
    assert test.split == 'test' and c.data.eval_split == 'validation'
    assert all(e['weight'] == 'size' for e in c.data.mixture)
    assert c.data.normalize == 'featurewise'
    assert c.task.class_weights == 'balanced' and c.frozen_bn == 'inference'


def test_001_combined_mixes_fer32_and_sfew_in_one_stage(tmp_path, monkeypatch):
  from configs.transfer import cascade_001
  from fer_jax.train import loop, stages
  real = stages.stage_configs(cascade_001.get_config('combined,real'),
                              str(tmp_path))
  assert [e['labels'] for e in real[0][2].data.mixture] == [('expression',)] * 3
  (name, _, c), = stages.stage_configs(
      cascade_001.get_config('combined,reduced'), str(tmp_path))
  assert name == 'combined'
  assert [(e['source']['preset'], e['split'], e['crop']) for e in c.data.mixture] == [
      ('fer2013_like', 'train', 'none'), ('fer2013_like', 'validation', 'none'),
      ('sfew_like', 'train', 'eyes')]
  assert (c.data.source.preset, c.data.crop) == ('sfew_like', 'eyes')
  # A few steps of it, counting which data each part of the run reads.
  c.total_steps, c.eval_every_steps, c.checkpoint_every_steps = 3, 3, 3
  c.data.eval_records = 32
  c.data.test_sources = {'fer_test': dict(
      name='synthetic', source=dict(preset='fer2013_like'), crop='none',
      eval_records=16)}
  read = collections.Counter()
  real_get = loop.get_source
  monkeypatch.setattr(loop, 'get_source', lambda d, split: read.update(
      [(d.source.preset, split, d.crop)]) or real_get(d, split))
  res = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert res['step'] == 3 and 0 <= res['val/expression/accuracy'] <= 1
  assert 0 <= res['fer_test/expression/accuracy'] <= 1
  assert set(read) == {('sfew_like', 'validation', 'eyes'),
                       ('fer2013_like', 'test', 'none')}
