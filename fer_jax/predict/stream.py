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
`predict_video` / `predict_images` return a pandas DataFrame; `run` writes
the same table to predictions.csv/.jsonl, plus tracks.csv, annotated copies
and per-track timeline plots.
"""
import collections
import concurrent.futures
import dataclasses
import math
import os
import queue
import sys
import threading
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_jax import atomic
from fer_jax.face import detect
from fer_jax.predict import draw
from fer_jax.predict import io as io_lib
from fer_jax.predict import predictor as predictor_lib

# Defaults that keep the accuracy guard (tests/predict/test_accuracy.py) and
# reach >= 30 frames/s for one face on a 2-core CPU (launch/bench_predict.py).
DETECT_EVERY = 5
DETECT_WIDTH = 320


# ------------------------------------------------------------------ tracking


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
        faces = predictor_lib.crop_faces(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
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


def _predict_named(predictor, crops, name):
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
    faces = predictor_lib.faces_in_image(img, predictor.crop, min_size)
    rows += io_lib.face_rows(predictor, _predict_named(predictor, faces.crops,
                                                       name), name, 0, faces)
  return io_lib.to_frame(rows, io_lib.columns(predictor))


# --------------------------------------------------------------------- runs


@dataclasses.dataclass
class Summary:
  """What a run did: counts, the files it could not read, the frame rate."""
  files: int = 0
  images: int = 0
  videos: int = 0
  frames: int = 0
  faces: int = 0
  tracks: int = 0
  frames_without_face: int = 0
  unreadable: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  ignored: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  @property
  def fps(self) -> float:
    return self.frames / self.seconds if self.seconds > 0 else 0.0

  @property
  def predicted(self) -> bool:
    """Whether any input could be read (an input without faces counts)."""
    return self.frames > 0

  def __str__(self):
    s = (f'{self.faces} faces in {self.frames} frames ({self.images} images, '
         f'{self.videos} videos'
         + (f', {self.tracks} tracks' if self.videos else '') +
         f'); {self.frames_without_face} frames without a '
         f'face; {self.frames} frames in {self.seconds:.1f} s = '
         f'{self.fps:.1f} frames/s')
    if self.unreadable:
      s += f'\n{len(self.unreadable)} unreadable file(s) skipped:' + ''.join(
          f'\n  {p}: {why}' for p, why in self.unreadable)
    if self.ignored:
      s += f'\n{len(self.ignored)} file(s) ignored (not an image or video ' \
           'extension)'
    return s


@dataclasses.dataclass
class Options:
  """How `run` treats videos (see `stream`) and what it writes besides rows."""
  detect_every: int = DETECT_EVERY
  detect_width: Optional[int] = DETECT_WIDTH
  smooth: Optional[float] = None
  plots: bool = True          # timeline_<track>.png per track of a video
  min_plot_frames: int = 3    # tracks shorter than this get no plot
  progress: bool = False


def _image(predictor, path, writer, summary, out_dir, min_size, opts, tables):
  del opts, tables
  image = io_lib.read_image(path)
  faces = predictor_lib.faces_in_image(image, predictor.crop, min_size)
  pred = _predict_named(predictor, faces.crops, path)
  rows = io_lib.face_rows(predictor, pred, path, 0, faces)
  writer.write(rows)
  summary.images += 1
  summary.frames += 1
  summary.faces += len(rows)
  summary.frames_without_face += not rows
  if not rows:
    print(f'{path}: no face found', flush=True)
  if out_dir:
    io_lib.write_image(io_lib.annotated_path(out_dir, path, False),
                       draw.annotate(image[..., ::-1], rows, predictor))


def _video(predictor, path, writer, summary, out_dir, min_size, opts, tables):
  """Streams a video into the writer; keeps its rows for tracks and plots."""
  fps = io_lib.VideoReader(path)  # opens it: a non-video raises here
  out = (io_lib.VideoWriter(io_lib.annotated_path(out_dir, path, True), fps.fps)
         if out_dir else None)
  fps.close()
  t0, frames, faces, empty, rows_all = time.perf_counter(), 0, 0, 0, []
  try:
    for res in video_rows(predictor, path, opts.detect_every, opts.detect_width,
                          min_size, opts.smooth, opts.progress,
                          keep_images=out is not None):
      writer.write(res.rows)
      rows_all += res.rows
      frames += 1
      faces += len(res.rows)
      empty += not res.rows
      if out is not None:
        out.write(draw.annotate(res.bgr, res.rows, predictor))
  finally:
    if out is not None:
      out.close()
  summary.videos += 1
  summary.frames += frames
  summary.faces += faces
  summary.frames_without_face += empty
  df = io_lib.to_frame(rows_all, writer.cols)
  tables.append(df)
  summary.tracks += df['track'].nunique()
  dt = time.perf_counter() - t0
  print(f'{path}: {frames} frames in {dt:.1f} s ({frames / max(dt, 1e-9):.1f} '
        f'frames/s), {df["track"].nunique()} tracks', flush=True)


def _plots(predictor, df, out_dir, opts, several):
  for (file, track), g in df.groupby(['file', 'track'], sort=True):
    if len(g) < opts.min_plot_frames:
      continue
    stem = os.path.basename(file)
    name = (f'timeline_{stem}_{track}.png' if several
            else f'timeline_{track}.png')
    draw.plot_timeline(g, predictor, os.path.join(out_dir, name),
                       f'{stem}: track {track} ({len(g)} frames, '
                       f'{g["time_s"].min():.1f}-{g["time_s"].max():.1f} s)')


def run(predictor, input_path: str, out_dir: str, annotate_outputs: bool = True,
        min_size: int = 20, options: Optional[Options] = None) -> Summary:
  """Predicts every face of an image, a folder or a video into `out_dir`.

  predictions.csv/.jsonl (one row per face), for videos tracks.csv and
  timeline_<track>.png, annotated copies. A file that cannot be decoded is
  printed, listed in the summary and skipped.
  """
  opts = options or Options()
  media, ignored = io_lib.list_inputs(input_path)
  summary = Summary(ignored=ignored)
  annotated = out_dir if annotate_outputs else None
  predictor.warmup()
  t0 = time.perf_counter()
  tables: List[Any] = []
  with io_lib.RowWriter(out_dir, io_lib.columns(predictor, bool(opts.smooth))
                        ) as writer:
    for path in media:
      summary.files += 1
      kind = io_lib.kind(path)
      # A lone file of unknown extension: an image, else perhaps a video.
      tries = ([_video] if kind == 'video' else [_image]
               if kind == 'image' else [_image, _video])
      for i, fn in enumerate(tries):
        try:
          fn(predictor, path, writer, summary, annotated, min_size, opts, tables)
          break
        except (io_lib.UnreadableError, cv2.error) as e:
          if i + 1 < len(tries):
            continue
          msg = str(e)
          msg = msg[len(path) + 2:] if msg.startswith(path + ': ') else msg
          print(f'SKIPPED {path}: {msg}', flush=True)
          summary.unreadable.append((path, msg))
  if tables:
    import pandas as pd  # pylint: disable=g-import-not-at-top
    df = pd.concat(tables, ignore_index=True)
    atomic.write_text(os.path.join(out_dir, 'tracks.csv'),
                      io_lib.track_summary(df, predictor).to_csv(
                          index=False, float_format='%.6g'))
    if opts.plots:
      _plots(predictor, df.dropna(subset=['track']), out_dir, opts,
             len(tables) > 1)
  summary.seconds = time.perf_counter() - t0
  return summary


# ------------------------------------------------------------------ camera


def gui_problem() -> Optional[str]:
  """Why cv2.imshow cannot open a window here, or None when it can."""
  info = cv2.getBuildInformation()
  gui = next((l.split(':', 1)[1].strip() for l in info.splitlines()
              if l.strip().startswith('GUI:')), '')
  if not gui or gui.upper() == 'NONE':
    return ('this OpenCV build has no GUI backend (GUI: NONE, e.g. '
            'opencv-python-headless); install opencv-python for --camera')
  if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY') or
                                               os.environ.get('WAYLAND_DISPLAY')):
    return 'no display (DISPLAY / WAYLAND_DISPLAY unset)'
  return None


def run_camera(predictor, index: int = 0, out_dir: Optional[str] = None,
               min_size: int = 40, detect_every: int = DETECT_EVERY,
               detect_width: Optional[int] = DETECT_WIDTH) -> Summary:
  """Live window with the predictions drawn; q or Esc quits.

  Frame by frame (no batching across frames: the window shows each frame as
  it comes), detecting every `detect_every` frames and tracking between.
  Raises RuntimeError when there is no GUI/display or the camera cannot open.
  With `out_dir`, the rows are written as for files (file 'camera:<index>').
  """
  problem = gui_problem()
  if problem:
    raise RuntimeError(f'--camera needs a window: {problem}')
  cap = cv2.VideoCapture(index)
  if not cap.isOpened():
    raise RuntimeError(f'cannot open camera {index}')
  predictor.warmup()
  summary, t0, frame = Summary(), time.perf_counter(), 0
  writer = io_lib.RowWriter(out_dir, io_lib.columns(predictor)) if out_dir else None
  title = f'fer_jax: {os.path.basename(predictor.name)} (q to quit)'
  tracker, prev = Tracker(coast=int(detect_every > 1)), None
  try:
    while True:
      ok, bgr = cap.read()
      if not ok:
        break
      gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
      if frame % detect_every == 0:
        ids, boxes = tracker.update(
            detect.detect_faces(gray, min_size, detect_width), prev, gray)
      else:
        ids, boxes = tracker.propagate(prev, gray)
      prev = gray
      faces = predictor_lib.crop_faces(bgr[..., ::-1], boxes, predictor.crop,
                                       gray)
      rows = io_lib.face_rows(predictor, predictor.predict(faces.crops),
                              f'camera:{index}', frame, faces, 0,
                              time.perf_counter() - t0, ids)
      if writer:
        writer.write(rows)
      summary.frames += 1
      summary.faces += len(rows)
      frame += 1
      cv2.imshow(title, draw.annotate(bgr, rows, predictor))
      if cv2.waitKey(1) & 0xFF in (ord('q'), 27):
        break
  finally:
    cap.release()
    cv2.destroyAllWindows()
    if writer:
      writer.close()
  summary.seconds = time.perf_counter() - t0
  return summary
