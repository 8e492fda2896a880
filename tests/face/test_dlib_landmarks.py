"""dlib's 68 landmarks (the 'landmarks' extra) on a real photograph, and the
002 landmark-box crop they feed in the data pipeline and the predictor."""
import cv2
import numpy as np
import pytest

pytest.importorskip('dlib')
skimage_data = pytest.importorskip('skimage.data')

from fer_jax.data import crops, pipeline  # noqa: E402
from fer_jax.face import detect_face, landmarks, points  # noqa: E402
from tests.face.test_detect import ASTRONAUT_EYES, ASTRONAUT_FACE  # noqa: E402

# The tip of the chin, read on a 4x zoom of astronaut(); it lies below the Haar
# box, whose bottom is the 165 of ASTRONAUT_FACE.
ASTRONAUT_CHIN_Y = 178

try:
  landmarks.shape_predictor()
except ImportError as err:  # dlib without face-recognition-models' model file
  pytest.skip(str(err), allow_module_level=True)


@pytest.fixture(scope='module')
def astronaut():
  img = skimage_data.astronaut()
  face = detect_face(img, eyes=False)
  return img, face.box, landmarks.dlib_landmarks(img, [face.box])


def test_68_points_on_the_astronaut(astronaut):
  img, box, pts = astronaut
  assert pts.shape == (1, 68, 2) and pts.dtype == np.float32
  pts = pts[0]
  x0, y0, x1, y1 = box
  w, h = x1 - x0, y1 - y0
  # Around the detected face (the chin leaves the Haar box: see below).
  assert np.all((pts[:, 0] > x0 - 0.15 * w) & (pts[:, 0] < x1 + 0.15 * w))
  assert np.all((pts[:, 1] > y0 - 0.15 * h) & (pts[:, 1] < y1 + 0.3 * h))
  # The landmark box spans the face's width measured by hand, from the brows
  # to the chin.
  lx0, ly0, lx1, ly1 = crops.landmark_box(pts)
  np.testing.assert_allclose((lx0, lx1), np.take(ASTRONAUT_FACE, [0, 2]), atol=10)
  assert abs(ly1 - 1 - ASTRONAUT_CHIN_Y) <= 5 and ly0 > ASTRONAUT_FACE[1]
  # Eye centres (iBUG 36-41 on the image's left, 42-47) within a few pixels of
  # those measured by hand.
  eyes = pts[36:48].reshape(2, 6, 2).mean(1)
  np.testing.assert_allclose(eyes, ASTRONAUT_EYES, atol=5)
  eye_y = eyes[:, 1].mean()
  jaw, brows, nose, mouth = pts[0:17], pts[17:27], pts[27:36], pts[48:68]
  assert np.all(jaw[3:14, 1] > eye_y)               # the jaw below the eyes
  assert jaw[8, 1] == jaw[:, 1].max()               # the chin its lowest point
  assert np.all(brows[:, 1] < eye_y)                # brows above
  tip = nose[3]                                     # point 30, the nose tip
  assert eyes[0, 0] < tip[0] < eyes[1, 0] and tip[1] > eye_y
  assert np.all(mouth[:, 1] > tip[1])               # the mouth below the nose
  assert mouth[:, 1].max() < jaw[8, 1]              # and above the chin
  assert jaw[0, 0] < eyes[0, 0] and jaw[16, 0] > eyes[1, 0]


def test_dlib_landmarks_of_gray_and_several_boxes(astronaut):
  img, box, pts = astronaut
  gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
  two = landmarks.dlib_landmarks(gray, [box, box])
  assert two.shape == (2, 68, 2)
  np.testing.assert_array_equal(two[0], two[1])
  np.testing.assert_allclose(two[0], pts[0], atol=2)  # dlib reads gray anyway
  assert landmarks.dlib_landmarks(img, np.zeros((0, 4))).shape == (0, 68, 2)


def test_pipeline_landmark_crop_of_a_photo_without_landmarks(astronaut):
  """002 on real photographs: the 'landmarks' crop of a record without them
  takes the detector's face and dlib's points, through the same crop."""
  img, _, pts = astronaut
  prep = pipeline.Preprocess('crop_landmarks(48)|rgb|float',
                             detector=points.find_points)
  record = {'image': img, 'landmarks': np.full((68, 2), np.nan, np.float32),
            'index': 3}
  out = prep(record)['image']
  want = crops.landmark_box_crop(img, pts[0], 48).astype(np.float32)
  np.testing.assert_array_equal(out, want)
  plain = dict(record, image=np.full((200, 200, 3), 128, np.uint8))
  with pytest.raises(pipeline.BadRecordError,
                     match='record 3: the landmark-box crop needs 68'):
    prep(plain)


def test_predictor_of_a_landmark_crop_run_uses_dlib(tmp_path):
  """A run trained on crop='landmarks' predicts on dlib's landmark boxes."""
  from configs import common, va_regression  # pylint: disable=g-import-not-at-top
  from fer_jax import predict  # pylint: disable=g-import-not-at-top
  from fer_jax.train.loop import train_and_evaluate  # pylint: disable=g-import-not-at-top
  c = va_regression.get_config()
  c.total_steps, c.batch_size = 1, 4
  # The synthetic records carry their 68 points.
  common.set_pp(c, 'crop_landmarks(24)|rgb|resize(24)|flip_lr|unit')
  c.data.eval_records, c.data.num_threads = 4, 1
  c.model = dict(name='small_cnn', widths=(4,), hidden=8)
  c.progress = False
  c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 1
  c.schedule = dict(name='constant')
  train_and_evaluate(c, str(tmp_path / 'run'))
  p = predict.load_workdir(str(tmp_path / 'run'), batch_size=2)
  assert p.crop == predict.CropSpec('landmarks', size=24)
  img = skimage_data.astronaut()
  faces = predict.faces_in_image(img, p.crop)
  assert faces.methods == ['landmarks'] and faces.crops[0].shape == (24, 24, 3)
  x, y, w, h = faces.boxes[0]
  pts = landmarks.dlib_landmarks(img, [(x, y, x + w, y + h)])[0]
  np.testing.assert_array_equal(faces.crops[0],
                                crops.landmark_box_crop(img, pts, 24))
  rows = predict.face_rows(p, p.predict(faces.crops), 'astro', 0, faces)
  assert rows[0]['crop'] == 'landmarks' and np.isfinite(rows[0]['valence'])
