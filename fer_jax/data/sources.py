"""The dataset registry: `data.name` picks a factory of random-access sources.

A source implements grain's random-access protocol (`__len__`, `__getitem__`) and
yields records with the fields of `fer_jax.data.synthetic` (image, valence,
arousal, expression, aus, landmarks, eyes, subject, domain, clip, has_* flags).
Factories take the split name plus the keyword arguments in `config.data.source`.
"""
from fer_jax.registry import Registry

DATASETS = Registry('dataset')


@DATASETS.register('synthetic')
def _synthetic(split: str, preset: str, image_size=None, channels=None, seed=0):
  from fer_jax.data.synthetic import SyntheticSource
  return SyntheticSource(preset=preset, split=split, image_size=image_size,
                         channels=channels, seed=seed)


@DATASETS.register('tfds')
def _tfds(split: str, data_dir: str, dataset: str, source_kwargs: dict):
  """Reads a source materialised by `launch/materialize.py` (array_record)."""
  from fer_jax.data.tfds_builder import record_builder
  builder = record_builder(dataset, dict(source_kwargs), data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(
        f'No materialised {dataset} {dict(source_kwargs)} under {data_dir}; run '
        f'launch/materialize.py --dataset={dataset} first.')
  return builder.as_data_source(split)


def get_source(data_config, split: str):
  """Builds the source of one split from a `config.data` section."""
  return DATASETS.get(data_config.name)(split=split, **data_config.get('source', {}))


def _adapter(name: str):
  def make(split: str, **kwargs):  # imported on use: sources stays light
    from fer_jax.data.adapters import get_adapter
    return get_adapter(name)(split=split, **kwargs)
  return make


def _register_adapters():
  from fer_jax.data.adapters import ADAPTERS  # real datasets (adapters/*.py)
  for name in ADAPTERS:
    DATASETS.register(name)(_adapter(name))


_register_adapters()
