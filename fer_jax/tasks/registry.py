"""The task registry: `task.name` picks the loss + metrics."""
from fer_jax.registry import Registry

TASKS = Registry('task')


def get_task(name: str, **kwargs):
  return TASKS.get(name)(**kwargs)
