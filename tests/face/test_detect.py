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
  from fer_jax.face import points
  img = skimage_data.astronaut()
  prep = pipeline.Preprocess('crop_eyes(64)|gray|unit',
                             detector=points.find_points)
  record = {'image': img, 'eyes': np.full((2, 2), np.nan), 'expression': 3,
            'has_expression': True, 'index': 5}
  out = prep(record)['image']
  want = crops.align_by_eyes(img, detect_face(img).eyes, 64)
  want = cv2.cvtColor(want, cv2.COLOR_RGB2GRAY)[..., None] / 255.0
  np.testing.assert_allclose(out, want, atol=1 / 255 + 1e-6)
  plain = dict(record, image=np.full((200, 200, 3), 128, np.uint8))
  with pytest.raises(pipeline.BadRecordError, match='record 5: the eye-aligned crop'):
    prep(plain)


# The astronaut's head and shoulders; her face inside this patch, as the
# full-image box above (hairline to chin) shifted by the patch's corner.
HEAD = (slice(40, 260), slice(140, 320))
HEAD_FACE = (180 - 140, 65 - 40, 270 - 180, 165 - 65)  # x, y, w, h


def _on_plain_wall(level, x, y):
  frame = np.full((480, 640, 3), level, np.uint8)
  frame[y:y + 220, x:x + 180] = skimage_data.astronaut()[HEAD]
  return frame, (x + HEAD_FACE[0], y + HEAD_FACE[1], HEAD_FACE[2], HEAD_FACE[3])


@pytest.mark.parametrize('level', [40, 128, 215])
def test_face_on_a_plain_wall_is_found_in_every_frame(level):
  """A clear frontal face over a plain gray background (a webcam in front of
  a wall). A global histogram equalization before the cascade lost it in
  most frames (all of them on the dark wall)."""
  from fer_jax.face import detect
  hits = 0
  positions = [(x, y) for x in (0, 130, 260, 460) for y in (0, 90, 260)]
  for x, y in positions:
    frame, truth = _on_plain_wall(level, x, y)
    found = detect.detect_faces(detect.to_gray(frame))
    if len(found) == 1 and detect.box_iou(found, [truth])[0, 0] >= 0.5:
      hits += 1
  assert hits == len(positions)


def test_detect_width_maps_boxes_back_to_full_size():
  from fer_jax.face import detect
  frame, truth = _on_plain_wall(128, 300, 200)
  gray = detect.to_gray(frame)
  full = detect.detect_faces(gray)
  half = detect.detect_faces(gray, width=320)
  assert len(full) == len(half) == 1
  assert detect.box_iou(half, [truth])[0, 0] >= 0.5
  assert detect.box_iou(half, full)[0, 0] >= 0.7
  # A width at or above the image's is full resolution.
  assert detect.detect_faces(gray, width=640) == full


def test_box_iou_by_hand():
  from fer_jax.face import detect
  # 10x10 boxes overlapping in a 5x10 strip: 50 / (100 + 100 - 50).
  iou = detect.box_iou([(0, 0, 10, 10)], [(5, 0, 10, 10), (20, 20, 4, 4),
                                          (0, 0, 10, 10)])
  np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0]])
  assert detect.box_iou([], [(0, 0, 1, 1)]).shape == (0, 1)


def test_overlapping_boxes_keep_the_larger(monkeypatch):
  from fer_jax.face import detect
  boxes = [(10, 10, 50, 50), (12, 12, 46, 46), (200, 10, 40, 40)]
  monkeypatch.setattr(detect, 'detect_cascade', lambda g, name, m: list(boxes)
                      if name == 'frontal' else [])
  assert detect.detect_faces(np.zeros((300, 300), np.uint8)) == [
      (10, 10, 50, 50), (200, 10, 40, 40)]
