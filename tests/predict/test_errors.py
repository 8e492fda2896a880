"""The predictor fails when it should: damaged images, non-finite outputs,
nothing to predict. Each is one clear line naming the input."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_jax import predict
from tests.predict.conftest import PREDICT_SCRIPT, astronaut, needs_fer


def _astronaut_jpeg():
  ok, buf = cv2.imencode('.jpg', astronaut()[..., ::-1])
  assert ok
  return bytearray(buf.tobytes())


def _garbled(jpeg: bytearray) -> bytes:
  """64 bytes of the entropy-coded body overwritten: libjpeg decodes it with a
  warning on stderr and returns an image."""
  g = bytearray(jpeg)
  rng = np.random.default_rng(0)
  for i in rng.integers(len(g) // 3, len(g) - 10, 64):
    g[i] = rng.integers(0, 256)
  return bytes(g)


def test_damaged_jpeg_is_unreadable(tmp_path):
  jpeg = _astronaut_jpeg()
  good, garbled, short = (tmp_path / n for n in ('good.jpg', 'garbled.jpg',
                                                  'short.jpg'))
  good.write_bytes(bytes(jpeg))
  garbled.write_bytes(_garbled(jpeg))
  short.write_bytes(bytes(jpeg[:len(jpeg) * 3 // 4]))
  assert predict.read_image(str(good)).shape == (512, 512, 3)
  # cv2 alone returns an image for the garbled one: only libjpeg's warning says.
  assert cv2.imdecode(np.frombuffer(garbled.read_bytes(), np.uint8),
                      cv2.IMREAD_COLOR) is not None
  for path in (garbled, short):
    with pytest.raises(predict.UnreadableError, match=str(path)):
      predict.read_image(str(path))


@pytest.fixture(scope='module')
def fer_model():
  return predict.load_published('fer2013_mini_xception', batch_size=8)


@needs_fer
def test_folder_skips_a_garbled_jpeg(fer_model, tmp_path):
  src = tmp_path / 'in'
  src.mkdir()
  jpeg = _astronaut_jpeg()
  (src / 'a.jpg').write_bytes(bytes(jpeg))
  (src / 'b.jpg').write_bytes(_garbled(jpeg))
  summary = predict.run(fer_model, str(src), str(tmp_path / 'out'))
  assert [p for p, _ in summary.unreadable] == [str(src / 'b.jpg')]
  assert 'damaged image data' in summary.unreadable[0][1]
  assert summary.images == 1 and summary.faces == 1


@needs_fer
def test_non_finite_outputs_are_refused(fer_model, tmp_path):
  import jax  # pylint: disable=g-import-not-at-top
  from tests.predict import synthetic_video as sv  # pylint: disable=g-import-not-at-top
  bad = predict.load_published('fer2013_mini_xception', batch_size=8)
  bad._variables = jax.tree.map(lambda v: v * np.nan, bad._variables)  # pylint: disable=protected-access
  img = str(tmp_path / 'a.jpg')
  (tmp_path / 'a.jpg').write_bytes(bytes(_astronaut_jpeg()))
  with pytest.raises(predict.NonFiniteError, match=f'{img}:.*non-finite expression'):
    predict.run(bad, img, str(tmp_path / 'out'))
  frames, _ = sv.render(sv.one_face(12, gap=(6, 8)), 12, 320, 240)
  video = sv.write(str(tmp_path / 'v.avi'), frames)
  with pytest.raises(predict.NonFiniteError, match=f'{video}: frame 0: '):
    predict.predict_video(video, bad)
  # Nothing NaN was written for the image.
  with open(tmp_path / 'out' / 'predictions.csv') as f:
    assert len(f.read().splitlines()) == 1  # the header
  # The intact model on the same image is fine.
  assert len(predict.predict_images([img], fer_model)) == 1


def _cli(*args, timeout=180):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run(
      [sys.executable, PREDICT_SCRIPT, '--model=fer2013_mini_xception',
       '--noprogress', *args], env=env, capture_output=True, text=True,
      timeout=timeout, check=False)


def _one_line(stderr: str, prefix: str) -> str:
  assert 'Traceback' not in stderr, stderr
  lines = [l for l in stderr.splitlines() if l.startswith(prefix)]
  assert len(lines) == 1, stderr
  return lines[0]


def test_cli_empty_folder_warns_and_fails(tmp_path):
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'notes.txt').write_text('not an image')
  res = _cli(f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}')
  assert res.returncode == 2
  assert str(tmp_path / 'in') in _one_line(res.stderr, 'warning:')
  res = _cli(f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}',
             '--detect_every=0')
  assert res.returncode == 2 and '--detect_every' in _one_line(res.stderr, 'error:')


@needs_fer
def test_cli_fails_when_every_input_is_unreadable(tmp_path):
  src = tmp_path / 'in'
  src.mkdir()
  (src / 'a.jpg').write_bytes(b'not a jpeg')
  (src / 'b.jpg').write_bytes(_garbled(_astronaut_jpeg()))
  res = _cli(f'--input={src}', f'--output={tmp_path / "out"}')
  assert res.returncode == 2, res.stderr
  line = _one_line(res.stderr, 'error:')
  assert 'nothing could be predicted' in line and str(src) in line
  assert f'SKIPPED {src / "a.jpg"}' in res.stdout
  assert f'SKIPPED {src / "b.jpg"}' in res.stdout


def test_cli_usage_mistakes_are_one_line(tmp_path):
  """Flags that contradict each other, a missing input: `error:` and exit 2."""
  res = _cli(f'--workdir={tmp_path}', f'--input={tmp_path}',
             f'--output={tmp_path / "out"}')  # _cli gives --model too
  assert res.returncode == 2
  assert '--workdir and --model' in _one_line(res.stderr, 'error:')
  missing = tmp_path / 'no_such.mp4'
  res = _cli(f'--input={missing}', f'--output={tmp_path / "out"}')
  assert res.returncode == 2 and str(missing) in _one_line(res.stderr, 'error:')
