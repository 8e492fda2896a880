"""The dataset registry: `data.name` picks a factory of random-access sources.

A source implements grain's random-access protocol (`__len__`, `__getitem__`) and
yields records with the fields of `fer_jax.data.synthetic` (image, valence,
arousal, expression, aus, landmarks, eyes, subject, domain, clip, has_* flags).
Factories take the split name plus the keyword arguments in `config.data.source`.
"""
from fer_jax.registry import Registry

# 'tfds' (sources materialised as array_record files) registers itself in
# tfds_builder, which imports TFDS: only a config that names it pays for that.
DATASETS = Registry('dataset', lazy={'tfds': 'fer_jax.data.tfds_builder'})


@DATASETS.register('synthetic')
def _synthetic(split: str, preset: str, image_size=None, channels=None, seed=0):
  from fer_jax.data.synthetic import SyntheticSource
  return SyntheticSource(preset=preset, split=split, image_size=image_size,
                         channels=channels, seed=seed)


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
