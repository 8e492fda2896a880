"""Haar-cascade detection and crops on real photographs from scikit-image."""
import cv2
import numpy as np
import pytest

skimage_data = pytest.importorskip('skimage.data')

from fer_jax.face import NoEyesError, NoFaceError, crop_face, detect_face  # noqa: E402

# Measured by hand on astronaut() (512x512): the face spans about x 180-270,
# y 65-165 (hairline to chin); eye centres near (203, 100) and (245, 100).
ASTRONAUT_FACE = (180, 65, 270, 165)
ASTRONAUT_EYES = ((203, 100), (245, 100))


def test_astronaut_face_and_eyes():
  face = detect_face(skimage_data.astronaut())
  assert face.kind == 'frontal'
  np.testing.assert_allclose(face.box, ASTRONAUT_FACE, atol=15)
  np.testing.assert_allclose(face.eyes, ASTRONAUT_EYES, atol=8)


def test_astronaut_crops():
  img = skimage_data.astronaut()
  box = crop_face(img, 'cascade', 64)
  eyes = crop_face(img, 'eyes', 64)
  assert box.shape == eyes.shape == (64, 64, 3) and box.dtype == np.uint8
  # The eye-aligned crop puts the eyes on a level line in its upper half.
  face = detect_face(img)
  from fer_jax.data import crops
  m = crops.eye_alignment_matrix(face.eyes, 64)
  out = crops.transform_points(face.eyes, m)
  assert abs(out[0, 1] - out[1, 1]) < 0.5 and out[0, 1] < 32
  lm = np.array([[180, 65], [270, 165]], np.float32)
  assert crop_face(img, 'landmarks', 32, landmarks=lm).shape == (32, 32, 3)
  with pytest.raises(ValueError, match='needs the 68 landmarks'):
    crop_face(img, 'landmarks', 32)


def _lfw(im):
  # lfw_subset crops are 25x25 and tight: upscale and pad so the 24x24 cascade
  # window sees a face with some context.
  u = cv2.resize((im * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
  return cv2.copyMakeBorder(u, 20, 20, 20, 20, cv2.BORDER_REPLICATE)


def test_lfw_faces_found_and_non_faces_rejected():
  lfw = skimage_data.lfw_subset()  # 100 faces, then 100 non-faces
  found = lambda ims: sum(_try(_lfw(im)) for im in ims)  # noqa: E731
  assert found(lfw[:100:4]) >= 22  # of 25
  assert found(lfw[100::4]) <= 2


def _try(img):
  try:
    detect_face(img, eyes=False)
    return True
  except NoFaceError:
    return False


def test_no_face_is_a_clear_error():
  with pytest.raises(NoFaceError, match='no face found'):
    detect_face(skimage_data.coffee())
  with pytest.raises(NoFaceError):
    crop_face(np.full((64, 64, 3), 128, np.uint8), 'cascade', 32)
  assert issubclass(NoEyesError, NoFaceError)


def test_pipeline_eye_crop_of_a_photo_without_eyes_uses_the_detector():
  """001 on real photographs (SFEW has no landmarks): the pipeline's 'eyes'
  crop takes the detector's eyes and goes through the same crop function."""
  from fer_jax.data import crops, pipeline
  img = skimage_data.astronaut()
  prep = pipeline.Preprocess(image_size=64, channels=1, crop='eyes', normalize='unit')
  record = {'image': img, 'eyes': np.full((2, 2), np.nan), 'expression': 3,
            'has_expression': True, 'index': 5}
  out = prep(record)['image']
  want = crops.align_by_eyes(img, detect_face(img).eyes, 64)
  want = cv2.cvtColor(want, cv2.COLOR_RGB2GRAY)[..., None] / 255.0
  np.testing.assert_allclose(out, want, atol=1 / 255 + 1e-6)
  plain = dict(record, image=np.full((200, 200, 3), 128, np.uint8))
  with pytest.raises(pipeline.BadRecordError, match='record 5: the eye-aligned crop'):
    prep(plain)
