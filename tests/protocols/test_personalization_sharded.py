"""Personal models split over 8 (forced CPU) devices along the model axis: the
same parameters and study results as on one device, and no collective in the
compiled step (each device trains its own models)."""
import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, 'sharded_personalization_script.py')
COLLECTIVES = ('all-reduce', 'all-gather', 'reduce-scatter', 'all-to-all',
               'collective-permute')


def _run(devices, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  subprocess.run([sys.executable, SCRIPT, *args], env=env, check=True,
                 capture_output=True, timeout=900)


def test_sharded_heads_equal_one_device_with_no_collective(tmp_path):
  out = str(tmp_path / 'engine.npz')
  _run(8, 'engine', out)
  z = np.load(out)
  assert int(z['devices']) == 8
  names = [k[len('one/'):] for k in z.files if k.startswith('one/')]
  assert names
  for k in names:
    np.testing.assert_allclose(z[f'sharded/{k}'], z[f'one/{k}'], atol=1e-5,
                               rtol=0)
  hlo = str(z['hlo'])
  assert 'ENTRY' in hlo
  found = [c for c in COLLECTIVES if re.search(rf'\b{c}(-start)?\(', hlo)]
  assert not found, found


def _rmse(workdir):
  with open(os.path.join(workdir, 'models.csv')) as f:
    return {(r['target'], r['condition'], r['sampler'], r['subject'],
             r['fold']): float(r['rmse']) for r in csv.DictReader(f)}


@pytest.mark.slow
def test_study_on_eight_devices_equals_one_device(tmp_path):
  one, eight = str(tmp_path / 'one'), str(tmp_path / 'eight')
  _run(1, 'study', one)
  _run(8, 'study', eight, os.path.join(one, 'pretrain'))
  a, b = _rmse(one), _rmse(eight)
  assert a.keys() == b.keys() and len(a) > 20
  for k in a:
    assert abs(a[k] - b[k]) < 1e-5, (k, a[k], b[k])
