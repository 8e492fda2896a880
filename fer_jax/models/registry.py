"""The model registry: `model.name` in a config picks a family, the rest are kwargs."""
from fer_jax.registry import Registry

MODELS = Registry('model')


def get_model(name: str, **kwargs):
  """Builds the flax module registered as `name` with its config kwargs."""
  return MODELS.get(name)(**kwargs)
