"""Test videos with known faces: real face photographs on known trajectories.

The face is the astronaut's head and shoulders (`skimage.data.astronaut()`, a
real photograph), scaled and optionally mirrored, pasted on a background
(plain gray with a soft gradient, as a wall behind a webcam) and moved along a
straight line. The true face box (hairline to chin, measured by hand on the
photograph, tests/face/test_detect.py) moves with it. Each face is visible in
a frame range, so videos have faces entering, leaving, and frames with none.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

HEAD = (slice(40, 260), slice(140, 320))           # the patch in astronaut()
HEAD_FACE = (40, 25, 90, 100)                     # x, y, w, h inside the patch


@dataclasses.dataclass(frozen=True)
class Face:
  """One face: patch scale, mirrored or not, top-left corner at the first and
  last frame it is visible in (linear in between), visible frames [start, stop)."""
  scale: float
  start_xy: Tuple[float, float]
  stop_xy: Tuple[float, float]
  start: int
  stop: int
  mirror: bool = False


def _patch(scale: float, mirror: bool):
  from skimage import data  # pylint: disable=g-import-not-at-top
  head = data.astronaut()[HEAD][..., ::-1]  # BGR
  if mirror:
    head = head[:, ::-1]
  h, w = head.shape[:2]
  size = (int(round(w * scale)), int(round(h * scale)))
  head = cv2.resize(np.ascontiguousarray(head), size, interpolation=cv2.INTER_AREA)
  fx, fy, fw, fh = HEAD_FACE
  if mirror:
    fx = w - fx - fw
  return head, (fx * scale, fy * scale, fw * scale, fh * scale)


def background(width: int, height: int, level: int = 128) -> np.ndarray:
  """A plain wall: one gray level with a soft left-to-right gradient."""
  ramp = np.linspace(-12, 12, width)[None, :, None]
  return np.clip(level + ramp + np.zeros((height, 1, 3)), 0, 255).astype(np.uint8)


def render(faces: Sequence[Face], frames: int, width: int = 640,
           height: int = 480, level: int = 128
           ) -> Tuple[List[np.ndarray], List[Dict[int, Tuple[float, ...]]]]:
  """(BGR frames, per frame {face index: true box (x, y, w, h)})."""
  patches = [_patch(f.scale, f.mirror) for f in faces]
  bg = background(width, height, level)
  out, truth = [], []
  for t in range(frames):
    img, boxes = bg.copy(), {}
    for i, (f, (patch, fbox)) in enumerate(zip(faces, patches)):
      if not f.start <= t < f.stop:
        continue
      u = 0.0 if f.stop - 1 == f.start else (t - f.start) / (f.stop - 1 - f.start)
      x = int(round(f.start_xy[0] + u * (f.stop_xy[0] - f.start_xy[0])))
      y = int(round(f.start_xy[1] + u * (f.stop_xy[1] - f.start_xy[1])))
      ph, pw = patch.shape[:2]
      # Clip to the frame (a face may enter from a border).
      x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, width), min(y + ph, height)
      if x1 <= x0 or y1 <= y0:
        continue
      img[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]
      boxes[i] = (x + fbox[0], y + fbox[1], fbox[2], fbox[3])
    out.append(img)
    truth.append(boxes)
  return out, truth


def write(path: str, frames: Sequence[np.ndarray], fps: float = 30.0) -> str:
  """An MJPG .avi (every frame a keyframe: exact frame count and times)."""
  h, w = frames[0].shape[:2]
  out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (w, h))
  if not out.isOpened():
    raise OSError(f'cannot write {path}')
  for f in frames:
    out.write(f)
  out.release()
  return path


def one_face(frames: int = 90, gap: Tuple[int, int] = (40, 50)) -> List[Face]:
  """A face moving diagonally, gone for the frames in `gap`."""
  a = Face(1.0, (40, 30), (420, 230), 0, gap[0])
  u = gap[1] / (frames - 1)
  mid = (40 + u * 380, 30 + u * 200)
  b = Face(1.0, mid, (420, 230), gap[1], frames)
  return [a, b]


def three_faces(frames: int = 90, enter: int = 37) -> List[Face]:
  """Three faces in lanes that never cross, one mirrored and one smaller; the
  third enters at frame `enter`."""
  return [Face(0.8, (10, 40), (60, 260), 0, frames),
          Face(0.9, (250, 250), (230, 30), 0, frames, mirror=True),
          Face(0.7, (470, 60), (500, 300), enter, frames)]


def match(rows_of_frame: Sequence[dict], box) -> Tuple[float, Optional[int]]:
  """(best IoU, its track) of a true box among a frame's rows."""
  from fer_jax.face import detect  # pylint: disable=g-import-not-at-top
  if not rows_of_frame:
    return 0.0, None
  iou = detect.box_iou([(r['x'], r['y'], r['w'], r['h']) for r in rows_of_frame],
                       [box])[:, 0]
  k = int(np.argmax(iou))
  return float(iou[k]), rows_of_frame[k]['track']
