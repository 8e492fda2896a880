"""The study's images (paper 000): uint8 pixels on every device and a
[256, C] table of the value op, whose lookup is bitwise the preprocessed
float32 images, so No Transfer's nets train to the same bits on a quarter of
the bytes; a value op that reads the whole image (minmax) keeps float32."""
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import common as configs_common
from fer_jax.data import pipeline
from fer_jax.data import transforms
from fer_jax.models import get_model
from fer_jax.protocols.personal import data as personal_data
from fer_jax.protocols.personal import plan as plan_lib
from fer_jax.protocols.personal import runner as runner_lib
from fer_jax.train import memory

_VALUE_OPS = ['unit', 'float', 'mean_std',
              'mean_std((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))',
              'featurewise((121.5, 130.25, 99.0), (51.3, 60.7, 70.1))']


def _raw(n=6, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, 10, 13, 3), dtype=np.uint8)


def _old_and_new(spec, raw):
  """The float32 images as Preprocess makes them, and (pixels, lookup)."""
  pre = pipeline.Preprocess(spec)
  old = np.stack([pre({'image': im})['image'] for im in raw])
  pixels = np.stack([pre.pixels({'image': im})['image'] for im in raw])
  return old, pixels, personal_data.value_lookup(pre, pixels)


@pytest.mark.parametrize('spec', [f'rgb|resize(12)|{v}' for v in _VALUE_OPS]
                         + ['gray|resize(12)|mean_std(0.3, 0.7)'])
def test_lookup_of_uint8_pixels_is_bitwise_the_preprocessed_image(spec):
  old, pixels, lookup = _old_and_new(spec, _raw())
  assert old.dtype == np.float32 and pixels.dtype == np.uint8
  assert lookup.shape == (256, old.shape[-1]) and lookup.dtype == np.float32
  assert pixels.nbytes * 4 == old.nbytes
  np.testing.assert_array_equal(
      personal_data.float_images(pixels, lookup).view(np.uint32),
      old.view(np.uint32))
  on_device = jax.jit(lambda x: personal_data.float_images(
      x, jnp.asarray(lookup)))(pixels)
  np.testing.assert_array_equal(np.asarray(on_device).view(np.uint32),
                                old.view(np.uint32))


def test_minmax_has_no_lookup_and_keeps_float32():
  _, _, lookup = _old_and_new('rgb|resize(12)|minmax', _raw())
  assert lookup is None
  x = np.zeros((2, 4, 4, 3), np.float32)
  assert personal_data.float_images(x, None) is x


def _study_config(value_op):
  pre = configs_common.base_config()
  configs_common.set_pp(pre, f'rgb|resize(16)|{value_op}')
  return ml_collections.ConfigDict(dict(
      pretrain=pre, runtime=dict(data_threads=1, verbose=True),
      personal=dict(name='synthetic', split='train', subjects=(1,),
                    frame_stride=25, source=dict(preset='amigos_like', seed=0,
                                                 image_size=16))))


def test_the_study_keeps_uint8_pixels_and_minmax_float32(capsys):
  unit = personal_data.load_personal_data(_study_config('unit'))
  n = len(unit.subject)
  assert unit.images.dtype == np.uint8 and unit.images.nbytes == n * 16 * 16 * 3
  assert unit.lookup.shape == (256, 3)
  np.testing.assert_array_equal(
      personal_data.float_images(unit.images, unit.lookup).view(np.uint32),
      (unit.images.astype(np.float32) / 255.0).view(np.uint32))
  assert 'float32' not in capsys.readouterr().out
  minmax = personal_data.load_personal_data(_study_config('minmax'))
  assert minmax.lookup is None and minmax.images.dtype == np.float32
  np.testing.assert_array_equal(minmax.images, np.stack(
      [transforms.minmax_stretch(p) / 255.0 for p in unit.images]))
  out = capsys.readouterr().out
  assert 'Personal images kept as float32' in out and 'minmax' in out


def _config():
  return ml_collections.ConfigDict(dict(
      seed=0,
      no_transfer=dict(batch_size=4, epochs=2,
                       optim=dict(name='sgd', learning_rate=0.05,
                                  momentum=0.9, nesterov=True)),
      runtime=dict(memory_budget_mb=256, max_models_per_chunk=0,
                   full_max_models_per_chunk=0, segment_steps=4,
                   full_unroll=False, shard_models=True, verbose=False)))


def _plan(n):
  plan = plan_lib.Plan()
  rows = np.arange(n)
  for i, (tr, te) in enumerate([(rows[:9], rows[9:13]), (rows[4:15], rows[:4]),
                                (rows[13:], rows[1:7])]):
    plan.add(kind='full', net=0, subject=0, fold=i, condition='no_transfer',
             sampler='', fraction=1.0, train=tr, test=te)
  return plan


@pytest.mark.slow  # ~30 s of CPU: two compiles of a whole net's training
def test_no_transfer_trains_on_uint8_images_to_the_same_bits(tmp_path):
  raw = _raw(n=20, seed=1)
  old, pixels, lookup = _old_and_new('gray|resize(12)|mean_std(0.3, 0.7)', raw)
  n = len(raw)
  y = np.random.default_rng(2).normal(size=(n, 2)).astype(np.float32)
  model = get_model('small_cnn', num_outputs=2, widths=(3, 5), hidden=8)
  nets = [types.SimpleNamespace(model=model)]
  config, plan = _config(), _plan(n)
  done = {}
  for name, x, table in (('u8', pixels, lookup), ('f32', old, None)):
    r = runner_lib.Runner(config, str(tmp_path / name), 'full', plan, nets, x,
                          y, x_block=0, y_block=0, lookup=table)
    if name == 'u8':  # the device copy: one byte a pixel
      assert r.x.dtype == jnp.uint8
      assert memory.tree_bytes(r.x) == n * 12 * 12 * 1 == old.nbytes // 4
      assert r.sample_shape == old.shape[1:]
    done[name] = {}
    r.run(list(range(len(plan))), done[name], {'chunks': 0}, None, None)
  assert sorted(done['u8']) == list(range(len(plan)))
  for i in done['f32']:
    a, b = done['u8'][i], done['f32'][i]
    np.testing.assert_array_equal(np.asarray(a['sse']).view(np.uint32),
                                  np.asarray(b['sse']).view(np.uint32))
    assert a['count'] == b['count'] and np.float32(a['loss']).tobytes() == \
        np.float32(b['loss']).tobytes()
