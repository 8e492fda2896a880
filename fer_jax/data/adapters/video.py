"""Frames of video files (OpenCV), for the datasets shipped as videos.

An entry's image may be a `VideoFrame(path, index)` (index 0-based) instead of
an image path: `AdapterSource` then reads that frame with `cv2.VideoCapture`.
Open captures are cached per process (a few at a time) and read forward, so
reading a video's frames in order (what `tfds_builder` and `launch/prepare.py`
do: entries are sorted by video and frame) decodes each frame once; a jump
backwards or far ahead seeks (`CAP_PROP_POS_FRAMES`), checked, and falls back
to reopening and decoding from the start if the container cannot seek exactly.
Random access during training is therefore slow: materialise video datasets
with `launch/prepare.py` first.
"""
import collections
import os
import threading

import cv2
import numpy as np

from fer_jax.data.adapters.shared import AdapterError, VideoFrame

VIDEO_EXT = ('.avi', '.mov', '.mp4', '.mkv', '.m4v', '.wmv', '.mpg', '.mpeg')
# Forward gaps up to this many frames are decoded (grab) rather than seeked.
_MAX_GRAB = 64
_MAX_OPEN = 4


def probe(path: str):
  """(frame count, fps) of a video; AdapterError if it cannot be opened.

  The count is the container's (0 if it does not say); fps 0 if unknown.
  """
  if not os.path.isfile(path):
    raise AdapterError(f'{path}: video file not found')
  cap = cv2.VideoCapture(path)
  try:
    if not cap.isOpened():
      raise AdapterError(f'{path}: cannot open video (corrupt, or a codec this '
                         'OpenCV build lacks)')
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
  finally:
    cap.release()
  return max(count, 0), fps if np.isfinite(fps) else 0.0


class _Reader:
  """A few open captures, each with its next frame position (thread-safe)."""

  def __init__(self):
    self._lock = threading.Lock()
    self._open = collections.OrderedDict()  # path -> [capture, next position]

  def _capture(self, path):
    item = self._open.pop(path, None)
    if item is None:
      cap = cv2.VideoCapture(path)
      if not cap.isOpened():
        raise AdapterError(f'{path}: cannot open video (corrupt, missing, or a '
                           'codec this OpenCV build lacks)')
      item = [cap, 0]
    self._open[path] = item
    while len(self._open) > _MAX_OPEN:
      self._open.popitem(last=False)[1][0].release()
    return item

  def _reopen(self, path):
    old = self._open.pop(path, None)
    if old is not None:
      old[0].release()
    return self._capture(path)

  def read(self, frame: VideoFrame) -> np.ndarray:
    path, index = frame
    with self._lock:
      item = self._capture(path)
      cap, pos = item
      if index < pos or index - pos > _MAX_GRAB:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == index:
          pos = index
        else:  # inexact seek: decode from the start
          item = self._reopen(path)
          cap, pos = item
      while pos < index:
        if not cap.grab():
          break
        pos += 1
      ok, img = cap.read() if pos == index else (False, None)
      item[1] = pos + 1 if ok else pos
    if not ok or img is None:
      raise AdapterError(f'{path}: cannot read frame {index} (0-based; the video '
                         'ends earlier or is corrupt)')
    return img


_READER = _Reader()


def read_frame(frame: VideoFrame, channels: int) -> np.ndarray:
  """HxWxC uint8 (RGB or gray) of one video frame; AdapterError if unreadable."""
  bgr = _READER.read(frame)
  if bgr.ndim == 2:
    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
  if channels == 1:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[..., None]
  return np.ascontiguousarray(bgr[..., ::-1])
