"""A two-stage cascade small enough for subprocess tests (seconds per stage)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from tests.conftest import tiny_config  # noqa: E402


def get_config():
  c = tiny_config(**{'data.eval_records': 32, 'task.targets': ('expression',),
                     'checkpoint_every_steps': 3})
  c.stages = (
      dict(name='large', **{'total_steps': 6}),
      dict(name='small', **{'data.source.preset': 'sfew_like',
                            'init.head': 'reinit', 'total_steps': 30,
                            'optim.learning_rate': 1e-3}))
  return c
