"""launch/prepare.py and launch/materialize.py as a user runs them: a small
dataset in, TFDS array_record files out, read back (through the `tfds`
source the launcher prints for training) equal to the source record by
record."""
import json
import os
import subprocess
import sys

import ml_collections
import numpy as np

from fer_jax.data import labels
from fer_jax.data.sources import DATASETS, get_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRINTED = 'config for training: data.name=tfds, data.source='

# fer2013.csv rows (../shared/DATASETS.md): emotion 0-6 = Angry, Disgust,
# Fear, Happy, Sad, Surprise, Neutral; Usage -> train / validation / test.
FER_ROWS = ((0, 'Training'), (1, 'Training'), (2, 'Training'), (3, 'PublicTest'),
            (4, 'Training'), (5, 'PrivateTest'), (6, 'PublicTest'))
# The same rows as each split should read back, in file order.
FER_SPLITS = {'train': ((0, 'anger'), (1, 'disgust'), (2, 'fear'), (4, 'sad')),
              'validation': ((3, 'happy'), (6, 'neutral')),
              'test': ((5, 'surprise'),)}


def _run(launcher, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, os.path.join(ROOT, 'launch', launcher),
                        *args], env=env, capture_output=True, text=True,
                       timeout=300, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def _printed_source(stdout):
  """The data.source the launcher prints for training with data.name=tfds."""
  line = next(l for l in stdout.splitlines() if l.startswith(PRINTED))
  return ml_collections.ConfigDict({'name': 'tfds',
                                    'source': json.loads(line[len(PRINTED):])})


def _assert_same_records(stored, source):
  assert len(stored) == len(source)
  for i in range(len(source)):
    a, b = stored[i], source[i]
    assert set(a) == set(b), i
    for k in b:
      np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]),
                                    err_msg=f'record {i}: {k}')


def test_prepare_fer2013_reads_back_the_csv(tmp_path):
  rng = np.random.default_rng(0)
  pixels = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in FER_ROWS]
  with open(tmp_path / 'fer2013.csv', 'w') as f:
    f.write('emotion,pixels,Usage\n')
    for (emotion, usage), px in zip(FER_ROWS, pixels):
      f.write(f'{emotion},{" ".join(str(v) for v in px.ravel())},{usage}\n')
  data_dir = tmp_path / 'tfds'
  stdout = _run('prepare.py', '--dataset=fer2013', f'--manual_dir={tmp_path}',
                f'--data_dir={data_dir}')
  for split, rows in FER_SPLITS.items():
    assert f'{split}: {len(rows)} records written' in stdout
  config = _printed_source(stdout)
  for split, rows in FER_SPLITS.items():
    stored = get_source(config, split)
    assert len(stored) == len(rows)
    for i, (row, name) in enumerate(rows):
      r = stored[i]
      np.testing.assert_array_equal(r['image'], pixels[row][..., None])
      assert labels.EXPRESSIONS[int(r['expression'])] == name
      assert bool(r['has_expression']) and not bool(r['has_va'])
    # Every other field as the adapter gives it.
    _assert_same_records(stored, DATASETS.get('fer2013')(
        split=split, manual_dir=str(tmp_path)))


def test_materialize_reads_back_the_synthetic_source(tmp_path):
  kwargs = {'preset': 'kdef_like', 'image_size': 24}
  stdout = _run('materialize.py', '--dataset=synthetic',
                f'--source={json.dumps(kwargs)}',
                f'--data_dir={tmp_path / "tfds"}', '--splits=test')
  assert 'test: 147 records' in stdout
  stored = get_source(_printed_source(stdout), 'test')
  _assert_same_records(stored, DATASETS.get('synthetic')(split='test', **kwargs))
