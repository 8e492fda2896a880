"""Video at the speed of the device: a streaming, batched, tracking pipeline.

decode -> detect / track -> crop -> batched inference -> rows, with bounded
queues between the stages, so memory does not grow with the video:

  * a reader thread decodes frames and hands every `detect_every`-th one to a
    pool of detection workers (OpenCV releases the GIL), optionally on a copy
    downscaled to `detect_width`;
  * a tracker thread associates detections with tracks (IoU, Hungarian
    assignment), carries the boxes between detections with sparse optical
    flow, crops and preprocesses the faces;
  * the caller's thread gathers faces of many frames into device batches of a
    few fixed bucket sizes (`Predictor.buckets`: nothing compiles after
    warm-up) and turns predictions into rows, frame by frame, in order.

With detect_every=1 and full width the rows are those of detecting every
frame (`faces_in_image`), now with a `track` id and the frame's `time_s`.
`predict_video` / `predict_images` return a pandas DataFrame; `runs.run`
writes the same table to files. The tracker and its optical flow are in
`track`.
"""
import concurrent.futures
import dataclasses
import os
import queue
import threading
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from fer_jax.face import detect
from fer_jax.predict import crops as face_crops
from fer_jax.predict import io as io_lib
from fer_jax.predict import predictor as predictor_lib
from fer_jax.predict.track import Smoother, Tracker

# Defaults that keep the accuracy guard (tests/predict/test_accuracy.py) and
# reach >= 30 frames/s for one face on a 2-core CPU (launch/bench_predict.py).
DETECT_EVERY = 5
DETECT_WIDTH = 320


# ------------------------------------------------------------------ pipeline


@dataclasses.dataclass
class FrameResult:
  index: int
  time_s: float
  bgr: Optional[np.ndarray]       # only when the caller keeps the images
  rows: List[Dict[str, Any]]


class _Failed:
  def __init__(self, error: BaseException):
    self.error = error


_END = object()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
  while not stop.is_set():
    try:
      q.put(item, timeout=0.1)
      return True
    except queue.Full:
      pass
  return False


def _get(q: queue.Queue, stop: threading.Event):
  while not stop.is_set():
    try:
      return q.get(timeout=0.1)
    except queue.Empty:
      pass
  return _END


def stream_frames(predictor, frames: Iterable[Tuple[int, float, np.ndarray]],
           file: str, detect_every: int = DETECT_EVERY,
           detect_width: Optional[int] = DETECT_WIDTH, min_size: int = 20,
           profile: bool = True, workers: Optional[int] = None,
           keep_images: bool = False, queue_frames: int = 32,
           max_pending: int = 256) -> Iterator[FrameResult]:
  """Rows of every frame of `frames` ((index, time_s, BGR) tuples), in order.

  detect_every: K; frames 0, K, 2K... are detected, the others tracked.
  detect_width: detect on frames downscaled to this width (None: full size).
  queue_frames: frames decoded ahead (the bound on memory);
  max_pending: frames gathered at most before a device batch is sent.
  Raises NonFiniteError naming `file` and the frame when the model gives NaN.
  """
  if detect_every < 1:
    raise ValueError(f'detect_every must be >= 1, got {detect_every}')
  workers = workers or min(4, os.cpu_count() or 1)
  stop = threading.Event()
  q1: queue.Queue = queue.Queue(queue_frames)
  # Frames of crops wait here while the device runs a batch: room for one
  # batch of them (small arrays), unless they also hold the images.
  q2: queue.Queue = queue.Queue(queue_frames if keep_images
                                else max(queue_frames, max_pending))
  pool = concurrent.futures.ThreadPoolExecutor(workers, 'fer_detect')

  def read():
    try:
      for idx, t, bgr in frames:
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        fut = (pool.submit(detect.detect_faces, gray, min_size, detect_width,
                           profile) if idx % detect_every == 0 else None)
        if not _put(q1, (idx, t, bgr, gray, fut), stop):
          return
      _put(q1, _END, stop)
    except BaseException as e:  # pylint: disable=broad-except
      _put(q1, _Failed(e), stop)

  def track():
    try:
      tracker, prev = Tracker(coast=int(detect_every > 1)), None
      while True:
        item = _get(q1, stop)
        if item is _END or isinstance(item, _Failed):
          _put(q2, item, stop)
          return
        idx, t, bgr, gray, fut = item
        ids, boxes = (tracker.update(fut.result(), prev, gray)
                      if fut is not None else tracker.propagate(prev, gray))
        prev = gray
        faces = face_crops.crop_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                         boxes, predictor.crop, gray)
        x = predictor.preprocess(faces.crops)
        faces.crops = []
        if not _put(q2, (idx, t, bgr if keep_images else None, ids, faces, x),
                    stop):
          return
    except BaseException as e:  # pylint: disable=broad-except
      _put(q2, _Failed(e), stop)

  def flush(pending):
    x = np.concatenate([p[5] for p in pending])
    try:
      pred = predictor.predict_batch(x)
    except predictor_lib.NonFiniteError as e:
      starts = np.cumsum([0] + [len(p[5]) for p in pending])
      frame = pending[int(np.searchsorted(starts, e.rows[0], 'right')) - 1][0]
      raise predictor_lib.NonFiniteError(
          f'{file}: frame {frame}: {e}', e.rows) from None
    start = 0
    for idx, t, bgr, ids, faces, xs in pending:
      rows = io_lib.face_rows(predictor, pred, file, idx, faces, start, t, ids)
      start += len(xs)
      yield FrameResult(idx, t, bgr, rows)

  threads = [threading.Thread(target=read, daemon=True),
             threading.Thread(target=track, daemon=True)]
  for th in threads:
    th.start()
  try:
    pending, n = [], 0
    while True:
      item = _get(q2, stop)
      if isinstance(item, _Failed):
        raise item.error
      if item is _END:
        break
      pending.append(item)
      n += len(item[5])
      if n >= predictor.batch_size or len(pending) >= max_pending:
        yield from flush(pending)
        pending, n = [], 0
    if pending:
      yield from flush(pending)
  finally:
    stop.set()
    pool.shutdown(wait=True, cancel_futures=True)
    for th in threads:
      th.join()


# --------------------------------------------------------------------- API


def _progress(total, desc, enabled):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm(total=total, desc=desc, unit='frame', disable=not enabled,
              leave=False, dynamic_ncols=True)


def video_rows(predictor, path: str, detect_every: int = DETECT_EVERY,
               detect_width: Optional[int] = DETECT_WIDTH, min_size: int = 20,
               smooth: Optional[float] = None, progress: bool = False,
               keep_images: bool = False, **kw) -> Iterator[FrameResult]:
  """`stream_frames` over a video file, with smoothing and a progress bar."""
  reader = io_lib.VideoReader(path)
  smoother = (Smoother(smooth, io_lib.value_columns(predictor)) if smooth
              else None)
  bar = _progress(reader.frame_count, os.path.basename(path), progress)
  count = 0
  try:
    for res in stream_frames(predictor, reader, path, detect_every, detect_width,
                      min_size, keep_images=keep_images, **kw):
      if smoother:
        for r in res.rows:
          smoother(r)
      count += 1
      bar.update(1)
      yield res
  finally:
    bar.close()
    reader.close()
  if count == 0:
    raise io_lib.UnreadableError(f'{path}: no frame could be decoded')


def predict_video(path: str, predictor, detect_every: int = DETECT_EVERY,
                  detect_width: Optional[int] = DETECT_WIDTH, min_size: int = 20,
                  smooth: Optional[float] = None, progress: bool = False,
                  **kw):
  """One row per face and frame of a video, as a pandas DataFrame.

  Columns as predictions.csv (`io.columns`): file, frame, time_s (the
  container's timestamp), track, face, box, crop, the model's values, and
  with `smooth` (seconds) their per-track moving averages `<column>_smooth`.
  """
  predictor.warmup()
  rows = [r for res in video_rows(predictor, path, detect_every, detect_width,
                                  min_size, smooth, progress, **kw)
          for r in res.rows]
  return io_lib.to_frame(rows, io_lib.columns(predictor, bool(smooth)))


def predict_named(predictor, crops, name):
  try:
    return predictor.predict(crops)
  except predictor_lib.NonFiniteError as e:
    raise predictor_lib.NonFiniteError(f'{name}: {e}', e.rows) from None


def predict_images(images, predictor, min_size: int = 20):
  """One row per face of each image (file paths or RGB arrays), a DataFrame.

  `file` is the path, or the array's index in `images` as a string; frame 0,
  no time_s, no track. An unreadable file raises UnreadableError.
  """
  rows = []
  for i, im in enumerate(images):
    name = im if isinstance(im, str) else str(i)
    img = io_lib.read_image(im) if isinstance(im, str) else im
    faces = face_crops.faces_in_image(img, predictor.crop, min_size)
    rows += io_lib.face_rows(predictor, predict_named(predictor, faces.crops,
                                                       name), name, 0, faces)
  return io_lib.to_frame(rows, io_lib.columns(predictor))
