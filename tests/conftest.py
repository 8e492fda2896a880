"""Shared test fixtures: a tiny fast config every train test starts from."""
import os
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def tiny_config(**overrides):
  from configs import common
  c = common.base_config()
  c.data.source.preset = 'affectnet_like'
  c.data.image_size = 32
  c.data.num_threads = 2
  c.model = dict(name='small_cnn', widths=(8, 16), hidden=16)
  c.batch_size = 16
  c.total_steps = 12
  c.log_every_steps = 2
  c.eval_every_steps = 6
  c.checkpoint_every_steps = 3
  c.progress = False
  c.optim = dict(name='sgd', learning_rate=1e-2, momentum=0.9, nesterov=True)
  for k, v in overrides.items():
    node = c
    *path, last = k.split('.')
    for p in path:
      node = node[p]
    node[last] = v
  return c


@pytest.fixture
def tiny():
  return tiny_config


# The longest files, longest first. With `-n 2 --dist loadfile` each file runs on
# one worker; started last, the study alone kept one worker busy for ~10 minutes
# while the other sat idle. Started first, the short files fill the other worker.
_LONGEST_FIRST = ('test_personalization_study.py', 'test_fit.py',
                  'test_multiprocess.py',
                  'test_cascade_001.py', 'test_learnability.py',
                  'test_ensemble.py', 'test_personalization_sharded.py',
                  'test_cross_dataset.py', 'test_personalization_multihost.py',
                  'test_personalization_damage.py', 'test_importer_references.py',
                  'test_damaged_checkpoints.py', 'test_bad_inputs.py',
                  'test_predict.py', 'test_stream.py')


def pytest_collection_modifyitems(session, config, items):
  def rank(item):
    name = os.path.basename(str(item.fspath))
    return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)
  items.sort(key=rank)  # stable: tests keep their order within a file
  # The long checks run in .ci/run's second stage (FER_JAX_EXPENSIVE=1 ... -m
  # expensive), so the default suite stays short.
  if not os.environ.get('FER_JAX_EXPENSIVE'):
    skip = pytest.mark.skip(reason='a long check: set FER_JAX_EXPENSIVE=1')
    for item in items:
      if 'expensive' in item.keywords:
        item.add_marker(skip)


# CI's expensive stage has a wall-clock budget (.ci/run sets it, so that the
# whole CI stays well inside its limit): an expensive test that would start
# after it is skipped, with its reason in the `-rs` summary. Each xdist
# worker counts from its own start. Unset or 0: no budget.
_BUDGET_S = float(os.environ.get('FER_JAX_EXPENSIVE_BUDGET_S') or 0)
_STARTED = time.monotonic()


def pytest_runtest_setup(item):
  if (_BUDGET_S and 'expensive' in item.keywords
      and time.monotonic() - _STARTED > _BUDGET_S):
    pytest.skip(f'past the expensive stage\'s budget of {_BUDGET_S:.0f} s '
                '(FER_JAX_EXPENSIVE_BUDGET_S); run it without the budget')
