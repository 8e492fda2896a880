"""What launch/predict.py runs: every input of a path through the predictor,
the rows to predictions.csv/.jsonl, tracks.csv, annotated copies, timeline
plots and a summary; and the live camera window."""
import dataclasses
import os
import sys
import time
from typing import Any, List, Optional, Tuple

import cv2

from fer_jax import atomic
from fer_jax.face import detect
from fer_jax.predict import draw
from fer_jax.predict import crops as face_crops
from fer_jax.predict import io as io_lib
from fer_jax.predict.stream import (DETECT_EVERY, DETECT_WIDTH, predict_named,
                                    video_rows)
from fer_jax.predict.track import Tracker


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
  faces = face_crops.faces_in_image(image, predictor.crop, min_size)
  pred = predict_named(predictor, faces.crops, path)
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
      faces = face_crops.crop_faces(bgr[..., ::-1], boxes, predictor.crop,
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
