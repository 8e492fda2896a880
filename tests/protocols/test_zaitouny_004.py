"""004's config against the paper: what the fine-tuning stage unfreezes per
network (section 6.2) and the callbacks' values and units (section 6.1)."""
import os

import jax
import jax.numpy as jnp
import pytest

from configs.transfer import zaitouny_004
from fer_jax.models import partition
from fer_jax.tasks import get_task
from fer_jax.train import callbacks as callbacks_lib
from fer_jax.train import loop
from fer_jax.train import stages as stages_lib

RNGS = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


def _stages(arg):
  return {n: c for n, _, c in stages_lib.stage_configs(
      zaitouny_004.get_config(arg), '/w')}


def _unfrozen_layers(stage):
  """Weighted feature layers the stage trains, from the loop's own mask."""
  task = get_task(**stage.task)
  model = loop.build_model(stage, task)
  size = stage.data.image_size
  x = jnp.zeros((1, size, size, stage.data.channels))
  params = jax.eval_shape(lambda: model.init(RNGS, x))['params']
  mask = loop.trainable_mask(model, params, x, stage.trainable)
  if mask is None:
    mask = partition.trainable_mask(params, 'all')
  layers = {'/'.join(p[:-1]) for p in partition.flatten(params)
            if p[0] == 'features'}
  trained = {'/'.join(p[:-1]) for p, m in partition.flatten(mask).items()
             if m and p[0] == 'features'}
  return trained, layers


def test_mobilenet_v2_fine_tunes_the_last_56_keras_layers():
  unfreeze = _stages('mobilenet_v2')['unfreeze']
  assert unfreeze.trainable == 'keras_last:56'
  trained, layers = _unfrozen_layers(unfreeze)
  # Keras' block_11 .. block_16 (our block12 .. block17: 6 weighted layers
  # each) and Conv_1 + Conv_1_bn: 38 of the 104 weighted layers.
  assert len(layers) == 104 and len(trained) == 38
  assert trained == {l for l in layers if l.startswith('features/last_') or any(
      l.startswith(f'features/block{b}/') for b in range(12, 18))}


@pytest.mark.parametrize('arg', ['inception_v3', 'resnet50_v2'])
def test_inception_and_resnet_fine_tune_the_whole_model(arg):
  frozen, unfreeze = _stages(arg)['frozen'], _stages(arg)['unfreeze']
  assert frozen.trainable == 'head' and unfreeze.trainable == 'all'
  task = get_task(**unfreeze.task)
  model = loop.build_model(unfreeze, task)
  assert loop.trainable_mask(model, None, None, unfreeze.trainable) is None


@pytest.mark.parametrize('arg', ['mobilenet_v2', 'inception_v3', 'resnet50_v2'])
def test_callbacks_count_epochs_with_the_papers_values(arg):
  frozen, unfreeze = _stages(arg)['frozen'], _stages(arg)['unfreeze']
  cb = frozen.callbacks
  assert cb.unit == 'epoch'
  assert cb.reduce_on_plateau.factor == 0.1
  assert cb.reduce_on_plateau.min_lr == 1e-4  # "a minimum of 0.0001"
  assert frozen.optim.learning_rate == 1e-4
  assert unfreeze.optim.learning_rate == 1e-5 and unfreeze.num_epochs == 25
  assert not unfreeze.callbacks  # ModelCheckpoint only
  assert frozen.best_metric == 'val/loss' and frozen.best_mode == 'min'
  # The built callbacks: patience in steps of the run's epoch; a floor equal
  # to the lr, so, as in Keras, the lr never drops.
  cbs = callbacks_lib.from_config(frozen, None, 'val/loss', 'min',
                                  steps_per_epoch=721)
  assert cbs.early_stopping.clock.units(cbs.early_stopping.patience) == 5 * 721
  rop = cbs.reduce_on_plateau
  assert [rop.update(500 * (i + 1), {'val/loss': 1.0}) for i in range(12)] == [
      1.0] * 12


def test_reduced_base_is_a_plain_stand_in_and_the_papers_stages_follow():
  st = _stages('reduced')
  assert list(st) == ['base', 'frozen', 'unfreeze']
  base, frozen, unfreeze = st['base'], st['frozen'], st['unfreeze']
  # The stand-in for ImageNet pre-training: no dropout, flips only.
  assert base.trainable == 'all' and not base.callbacks
  assert base.model.dropout == 0.0
  assert (base.data.augment.rotation, base.data.augment.shift) == (0.0, 0.0)
  # Then the paper's head dropout and augmentation.
  for s in (frozen, unfreeze):
    assert s.model.dropout == 0.5
    assert (s.data.augment.rotation, s.data.augment.shift) == (45.0, 0.2)
  assert frozen.callbacks.unit == 'epoch'


@pytest.mark.expensive
@pytest.mark.skipif(not os.environ.get('FER_JAX_EXPENSIVE'),
                    reason='set FER_JAX_EXPENSIVE=1 (~6 min CPU)')
def test_reduced_member_learns_the_fer2013_like_expressions(tmp_path):
  """The reduced member (small_cnn at 48 px: a stand-in base, then the
  paper's frozen and unfreeze stages) on the FER-2013-like test split."""
  results = stages_lib.run_stages(zaitouny_004.get_config('mobilenet_v2,reduced'),
                                  str(tmp_path))
  assert list(results) == ['base', 'frozen', 'unfreeze']
  assert results['unfreeze']['test/expression/accuracy'] >= 0.45, results
