"""Faces followed across video frames: IoU tracks with the Hungarian
assignment, boxes carried between detections by sparse optical flow, and
exponential smoothing of each track's values."""
import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_jax.face import detect
from fer_jax.predict import io as io_lib


def flow_box(prev: np.ndarray, cur: np.ndarray, box) -> Optional[np.ndarray]:
  """The box (x, y, w, h) moved from gray `prev` to gray `cur`, or None.

  Corners inside the box's central part are followed with pyramidal
  Lucas-Kanade, kept when the backward flow returns them within a pixel; the
  box moves by their median shift and scales by the median ratio of their
  pairwise distances.
  """
  x, y, w, h = (float(v) for v in box)
  ih, iw = prev.shape[:2]
  x0, y0 = int(max(0, x + 0.15 * w)), int(max(0, y + 0.15 * h))
  x1, y1 = int(min(iw, x + 0.85 * w)), int(min(ih, y + 0.85 * h))
  if x1 - x0 < 8 or y1 - y0 < 8:
    return None
  pts = cv2.goodFeaturesToTrack(prev[y0:y1, x0:x1], maxCorners=40,
                                qualityLevel=0.01,
                                minDistance=max(2.0, (x1 - x0) / 12))
  if pts is None or len(pts) < 4:
    return None
  # LK on a window about the box, not the whole frames: OpenCV builds the
  # pyramids and derivatives of all of its inputs (on 640x480 frames each LK
  # call took twice as long). The margin (half the box + 32 px) exceeds what
  # LK can follow (15 px window, 2 pyramid levels: ~60 px).
  m = int(0.5 * max(w, h)) + 32
  wx0, wy0 = int(max(0, x - m)), int(max(0, y - m))
  wx1, wy1 = int(min(iw, x + w + m)), int(min(ih, y + h + m))
  prev, cur = prev[wy0:wy1, wx0:wx1], cur[wy0:wy1, wx0:wx1]
  pts = (pts.reshape(-1, 2) + (x0 - wx0, y0 - wy0)).astype(np.float32)
  lk = dict(winSize=(15, 15), maxLevel=2,
            criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
  nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev, cur, pts, None, **lk)
  back, st2, _ = cv2.calcOpticalFlowPyrLK(cur, prev, nxt, None, **lk)
  good = (st.ravel() == 1) & (st2.ravel() == 1) & (
      np.linalg.norm(back - pts, axis=1) < 1.0)
  if good.sum() < 4:
    return None
  p, q = pts[good], nxt[good]
  shift = np.median(q - p, axis=0)
  i, j = np.triu_indices(len(p), 1)
  dp = np.linalg.norm(p[i] - p[j], axis=1)
  dq = np.linalg.norm(q[i] - q[j], axis=1)
  ok = dp > 1e-3
  scale = float(np.median(dq[ok] / dp[ok])) if ok.any() else 1.0
  scale = float(np.clip(scale, 0.8, 1.25))
  cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
  return np.array([cx - w * scale / 2, cy - h * scale / 2, w * scale, h * scale])


@dataclasses.dataclass
class Track:
  id: int
  box: np.ndarray        # float x, y, w, h
  misses: int = 0        # detections missed in a row
  flow_ok: bool = False  # the last optical-flow step found the face's corners


class Tracker:
  """Face tracks with stable ids.

  `update(boxes, prev, cur)` at a detection: the tracks are first carried to
  this frame by optical flow (when the previous gray frame is given), then
  matched to the boxes by IoU with the Hungarian assignment (pairs under
  `iou_min` stay unmatched). A matched track takes the detected box, an
  unmatched box starts a new track, an unmatched track survives `max_missed`
  detections in a row and keeps its id if found again. `propagate(prev, cur)`
  between detections carries the boxes by flow.

  Both return the reported (ids, boxes), left to right: the tracks matched at
  the last detection, and those that missed up to `coast` detections in a row
  while the flow still follows them (a detector's miss then costs no frames;
  with coast=0 the report is exactly the detections).
  """

  def __init__(self, iou_min: float = 0.3, max_missed: int = 3, coast: int = 0):
    self.iou_min, self.max_missed, self.coast = iou_min, max_missed, coast
    self.tracks: List[Track] = []
    self._next = 0

  def _report(self) -> Tuple[List[int], np.ndarray]:
    live = sorted((t for t in self.tracks if t.misses == 0 or
                   (t.misses <= self.coast and t.flow_ok)),
                  key=lambda t: (t.box[0], t.box[1]))
    boxes = np.array([np.round(t.box) for t in live], np.int64).reshape(-1, 4)
    return [t.id for t in live], boxes

  def _flow(self, prev, cur):
    for t in self.tracks:
      moved = None if prev is None else flow_box(prev, cur, t.box)
      t.flow_ok = moved is not None
      if moved is not None:
        t.box = moved

  def update(self, boxes, prev: Optional[np.ndarray] = None,
             cur: Optional[np.ndarray] = None) -> Tuple[List[int], np.ndarray]:
    from scipy.optimize import linear_sum_assignment  # pylint: disable=g-import-not-at-top
    if cur is not None:
      self._flow(prev, cur)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    matched_t, matched_b = set(), set()
    if self.tracks and len(boxes):
      iou = detect.box_iou([t.box for t in self.tracks], boxes)
      for r, c in zip(*linear_sum_assignment(-iou)):
        if iou[r, c] >= self.iou_min:
          self.tracks[r].box, self.tracks[r].misses = boxes[c].copy(), 0
          matched_t.add(r)
          matched_b.add(c)
    kept = []
    for r, t in enumerate(self.tracks):
      if r not in matched_t:
        t.misses += 1
      if t.misses <= self.max_missed:
        kept.append(t)
    for c in range(len(boxes)):
      if c not in matched_b:
        kept.append(Track(self._next, boxes[c].copy()))
        self._next += 1
    self.tracks = kept
    return self._report()

  def propagate(self, prev: Optional[np.ndarray], cur: np.ndarray
                ) -> Tuple[List[int], np.ndarray]:
    self._flow(prev, cur)
    return self._report()


class Smoother:
  """Exponential moving average per (file, track) with time constant `seconds`.

  A row's weight is 1 - exp(-dt / seconds), dt the time since the track's
  previous row, so gaps and frame rates are respected.
  """

  def __init__(self, seconds: float, cols: Sequence[str]):
    if seconds <= 0:
      raise ValueError(f'smooth must be > 0 seconds, got {seconds}')
    self.seconds, self.cols = float(seconds), list(cols)
    self._state: Dict[Tuple[str, int], Tuple[float, np.ndarray]] = {}

  def __call__(self, row: Dict[str, Any]):
    x = np.array([row[c] for c in self.cols], np.float64)
    key = (row['file'], row['track'])
    if row['track'] is None or key not in self._state:
      ema = x
    else:
      t0, prev = self._state[key]
      alpha = 1.0 - math.exp(-max(row['time_s'] - t0, 0.0) / self.seconds)
      ema = prev + alpha * (x - prev)
    if row['track'] is not None:
      self._state[key] = (row['time_s'], ema)
    for c, v in zip(self.cols, ema):
      row[c + io_lib.SMOOTH_SUFFIX] = float(v)
