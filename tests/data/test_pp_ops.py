"""Preprocessing ops composed from a pp string: the syntax, the ops' values,
and every pipeline the old config fields spell, bit for bit against a plain
reference (the crop / channels / resize / augment / normalize sequence the
fields mean, written out here)."""
import itertools
import json

import ml_collections
import numpy as np
import pytest

from configs import common
from fer_jax.data import crops, pipeline, pp, transforms
from fer_jax.data.synthetic import SyntheticSource


def _records():
  rgb = SyntheticSource('affectnet_like', 'train', image_size=40)
  gray = SyntheticSource('fer2013_like', 'train', image_size=36, channels=1)
  return [dict(rgb[0]), dict(rgb[1]), dict(gray[0])]


RECORDS = _records()


def _reference(record, d, rng=None):
  """What a config.data section of fields does to a record, step by step."""
  size, image = d['image_size'], np.asarray(record['image'])
  if d['crop'] == 'eyes':
    image = crops.align_by_eyes(image, record['eyes'], size)
  elif d['crop'] == 'landmarks':
    image = crops.landmark_box_crop(image, record['landmarks'], size)
  image = transforms.to_channels(image, d['channels'])
  if image.shape[:2] != (size, size):
    image = transforms.resize(image, size)
  aug = d['augment']
  if rng is not None:
    if aug['rotation']:
      image = transforms.random_rotation(image, rng, aug['rotation'])
    if aug['shift']:
      image = transforms.random_shift(image, rng, aug['shift'])
    if aug['hflip']:
      image = transforms.random_hflip(image, rng)
    if aug['pad_crop']:
      image = transforms.pad_random_crop(image, rng, aug['pad_crop'])
  x = image.astype(np.float32)
  if d['normalize'] == 'unit':
    return x / 255.0
  if d['normalize'] == 'minmax':
    return transforms.minmax_stretch(image) / 255.0
  if d['normalize'] == 'mean_std':
    return transforms.normalize(image, d['mean'], d['std'])
  if d['normalize'] == 'featurewise':
    s = d['featurewise_stats']
    return ((x - np.asarray(s['mean'], np.float32))
            / (np.asarray(s['std'], np.float32) + np.float32(1e-6)))
  return x


def _fields(crop='none', channels=3, normalize='unit', size=24, **aug):
  d = {'image_size': size, 'channels': channels, 'crop': crop,
       'normalize': normalize, 'mean': 0.5, 'std': 0.5,
       'augment': {'hflip': False, 'rotation': 0.0, 'shift': 0.0, 'pad_crop': 0,
                   **aug}}
  if normalize == 'mean_std':
    d['mean'], d['std'] = (0.45, 0.4, 0.35)[:channels], 0.25
  if normalize == 'featurewise':
    d['featurewise_stats'] = {'mean': (101.5, 99.0, 98.25)[:channels],
                              'std': (51.5, 49.0, 48.75)[:channels]}
  return ml_collections.ConfigDict(d)


def _same(pre, d):
  for i, rec in enumerate(RECORDS):
    np.testing.assert_array_equal(pre(dict(rec))['image'], _reference(rec, d))
    got = pre(dict(rec), np.random.default_rng(i))['image']
    want = _reference(rec, d, np.random.default_rng(i))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('crop,channels,normalize', list(itertools.product(
    ('none', 'eyes', 'landmarks'), (1, 3),
    ('unit', 'minmax', 'mean_std', 'featurewise', 'none'))))
def test_the_fields_of_a_run_before_pp_preprocess_as_they_spell(
    crop, channels, normalize):
  d = _fields(crop, channels, normalize, hflip=True,
              rotation=10.0 if channels == 1 else 0.0,
              shift=0.1 if normalize != 'unit' else 0.0,
              pad_crop=2 if crop == 'none' else 0)
  _same(pipeline.preprocess_from_config(d), d)


def test_a_papers_pp_line_is_its_fields_pipeline_and_old_runs_load_the_same():
  """001 / 002 / 004's one pp line and a config.json of fields (a run written
  before pp) build the same pipeline."""
  lines = {'crop_eyes(24)|gray|resize(24)|flip_lr|minmax':
           _fields('eyes', 1, 'minmax', hflip=True),
           'crop_landmarks(24)|rgb|resize(24)|mean_std(0.5, 0.5)':
           dict(_fields('landmarks', 3, 'mean_std'), mean=0.5, std=0.5),
           'gray|resize(24)|rotate(45.0)|shift(0.2)|flip_lr|featurewise':
           _fields('none', 1, 'featurewise', hflip=True, rotation=45.0,
                   shift=0.2)}
  for line, fields in lines.items():
    fields = ml_collections.ConfigDict(fields)
    old = json.loads(json.dumps(fields.to_dict()))  # as config.json holds it
    assert pp.fields_of(line) == {k: old[k] for k in pp.fields_of(line)}
    c = common.base_config()
    common.set_pp(c, line)
    with c.unlocked():
      c.data.featurewise_stats = fields.get('featurewise_stats')
    new = pipeline.preprocess_from_config(c.data)
    assert new == pipeline.preprocess_from_config(ml_collections.ConfigDict(old))
    _same(new, fields)


def test_value_ops_by_hand():
  img = np.array([[[10], [20], [30], [51]]], np.uint8)
  rec = {'image': img}
  run = lambda spec: pipeline.Preprocess(spec)(rec)['image'][0, :, 0]  # noqa: E731
  np.testing.assert_allclose(run('unit'), [10 / 255, 20 / 255, 30 / 255, 0.2],
                             rtol=1e-6)
  np.testing.assert_allclose(run('minmax'), [0, 10 / 41, 20 / 41, 1], rtol=1e-6)
  np.testing.assert_allclose(run('mean_std(0.2, 0.5)'),
                             [(10 / 255 - .2) / .5, (20 / 255 - .2) / .5,
                              (30 / 255 - .2) / .5, 0.0], atol=1e-6)
  np.testing.assert_allclose(run('featurewise((20.0,), (5.0,))'),
                             np.array([-10, 0, 10, 31]) / (5 + 1e-6), rtol=1e-6)
  np.testing.assert_array_equal(run('float'), [10, 20, 30, 51])
  # Augmentation only with an rng: evaluation sees the image as it is.
  flip = pipeline.Preprocess('flip_lr|float')
  assert np.array_equal(flip(rec)['image'], img)
  flips = {tuple(flip(rec, np.random.default_rng(s))['image'][0, :, 0])
           for s in range(20)}
  assert flips == {(10, 20, 30, 51), (51, 30, 20, 10)}


def test_parse_unparse_and_errors_that_name_the_op():
  spec = "crop_eyes(256)|gray|resize(size=48)|mean_std((0.1, 0.2, 0.3), 0.5)"
  ops = pp.parse(spec)
  assert ops == [('crop_eyes', (256,), {}), ('gray', (), {}),
                 ('resize', (), {'size': 48}),
                 ('mean_std', ((0.1, 0.2, 0.3), 0.5), {})]
  assert pp.unparse(ops) == spec and pp.parse(pp.unparse(ops)) == ops
  assert pp.output_size(spec) == 48 and pp.output_channels(spec) == 1
  assert pp.crop_of(spec) == ('eyes', 256)
  for bad, msg in (('resize(48', "op 'resize\\(48' is not name"),
                   ('resize(x)|unit', "op 'resize\\(x\\)' is not name"),
                   ('gray|blur(3)|unit', "Unknown pp op 'blur'; valid pp op "
                                         'names: crop_eyes'),
                   ('gray|resize(4)', 'must end with one value op'),
                   ('gray|unit|resize(4)|minmax', 'must end with one value op'),
                   ('resize|unit', 'resize: missing argument size'),
                   ('resize(4, 5)|unit', 'resize: takes 1 arguments, got 2'),
                   ('resize(4, size=5)|unit', "repeated argument 'size'")):
    with pytest.raises(ValueError, match=msg):
      pipeline.Preprocess(bad)


def test_with_crop_replaces_or_drops_the_crop_at_the_output_size():
  base = 'gray|resize(32)|flip_lr|minmax'
  assert pp.with_crop(base, 'eyes') == 'crop_eyes(32)|' + base
  assert pp.with_crop('crop_eyes(32)|' + base, 'landmarks') == (
      'crop_landmarks(32)|' + base)
  assert pp.with_crop('crop_eyes(32)|' + base, 'none') == base
  with pytest.raises(ValueError, match="Unknown crop 'eye'"):
    pp.with_crop(base, 'eye')
  # A mixture entry's or a test source's crop; the predictor crops itself.
  pre = pipeline.Preprocess('crop_eyes(32)|' + base)
  assert pipeline.Preprocess(pre.pp, crop='none').effective_pp == base


def test_fields_that_disagree_with_the_pp_line_are_refused():
  c = common.base_config()
  common.set_pp(c, 'crop_eyes(48)|gray|resize(48)|flip_lr|minmax')
  c.data.image_size = 64  # an override that the pp line does not follow
  with pytest.raises(ValueError, match="data.image_size is 64 but data.pp "
                     "'crop_eyes\\(48\\).*makes it 48"):
    pipeline.preprocess_from_config(c.data, name='run')
  c.data.image_size = 48
  c.data.augment.rotation = 10.0
  with pytest.raises(ValueError, match='data.augment is'):
    pipeline.preprocess_from_config(c.data)
  c.data.augment.rotation = 0.0
  c.data.crop = 'none'  # a test source's own crop replaces the line's
  assert pipeline.preprocess_from_config(c.data).pp == (
      'gray|resize(48)|flip_lr|minmax')


def test_a_pipeline_pickles_for_worker_processes():
  import pickle
  pre = pipeline.Preprocess('crop_eyes(24)|gray|resize(24)|rotate(10.0)|'
                            'flip_lr|pad_crop(2)|mean_std(0.5, 0.5)')
  again = pickle.loads(pickle.dumps(pre))
  assert again == pre
  rec = RECORDS[0]
  np.testing.assert_array_equal(again(dict(rec), np.random.default_rng(3))['image'],
                                pre(dict(rec), np.random.default_rng(3))['image'])
