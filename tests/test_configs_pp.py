"""Every shipped config states its preprocessing as one `data.pp` line, and
the fields that code reads besides the pipeline (image_size, channels, crop,
augment, normalize, mean, std: the model's input, the predictor's crop, the
featurewise statistics) say what the line implies."""
import importlib
import itertools
import pkgutil

import pytest

import configs
from configs.transfer import cascade_001, ulloa_002, zaitouny_004
from fer_jax.data import pipeline, pp


def _args(*choices):
  """Every combination of one token of each choice list ('' = none)."""
  return [','.join(t for t in combo if t) for combo in itertools.product(*choices)]


# Each config module -> the arguments to build it with (all of its variants).
VARIANTS = {
    'configs.va_regression': [None],
    'configs.personalization.paper': [None],
    'configs.personalization.synthetic': ['', 'reduced'],
    'configs.transfer.cascade_001': _args(
        cascade_001.METHODS, cascade_001.MODELS, ('', 'real'), ('', 'reduced'),
        ('', 'caffe')),
    'configs.transfer.ulloa_002': _args(
        ulloa_002.MODELS, ulloa_002.DATASETS, ('', 'real'), ('', 'reduced')),
    'configs.transfer.zaitouny_004': _args(
        zaitouny_004.MODELS, ('', 'data=real'), ('', 'reduced')),
}
for _kind in ('classical', 'single_compound', 'single_expression', 'sjmt',
              'sjmt_compound'):
  VARIANTS[f'configs.multitask.{_kind}'] = [
      '', 'paper', 'paper,resnet110', 'paper,vgg16']


def _config_modules():
  """Every module under configs/ with a get_config."""
  out = []
  for info in pkgutil.walk_packages(configs.__path__, 'configs.'):
    if hasattr(importlib.import_module(info.name), 'get_config'):
      out.append(info.name)
  return sorted(out)


def _data_sections(c):
  """(where, config.data) of each run a config trains: the config or each of
  its stages, and a pre-training run (003's, 000's study)."""
  from fer_jax.train.stages import stage_configs  # pylint: disable=g-import-not-at-top
  out = []
  if 'data' in c:
    runs = stage_configs(c, '/w') if c.get('stages') else [('', '', c)]
    out += [(f'stage {name}' if name else 'data', s.data) for name, _, s in runs]
  pre = c.get('pretrain')
  if pre is not None and 'data' in pre:
    out.append(('pretrain', pre.data))
  return out


def _plain(value):
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  return value


def test_every_config_module_is_listed():
  assert _config_modules() == sorted(VARIANTS)


@pytest.mark.parametrize('module', sorted(VARIANTS))
def test_every_config_states_its_pipeline_as_one_pp_line(module):
  get_config = importlib.import_module(module).get_config
  for arg in VARIANTS[module]:
    c = get_config() if arg is None else get_config(arg)
    sections = _data_sections(c)
    assert sections, f'{module}:{arg} builds no data pipeline'
    for where, data in sections:
      name = f'{module}:{arg} {where}'
      spec = data.get('pp', '')
      assert spec, f'{name}: no data.pp (set it with configs.common.set_pp)'
      want = pp.fields_of(spec)
      have = {k: _plain(data.get(k)) for k in want}
      assert have == want, f'{name}: fields disagree with data.pp {spec!r}'
      # The pipeline builds (featurewise statistics come at training time).
      pipeline.Preprocess(pipeline.pp_of_config(data, values='float'))
