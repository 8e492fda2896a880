"""Reading inputs and writing rows: images, videos, CSV/JSONL, DataFrames.

Rows are flat dicts, one per face (`columns` names them): the face (`file`,
`frame`, `time_s` the container's timestamp, `track`, `face`, box, `crop`),
then the model's values. `RowWriter` streams them to predictions.jsonl and
.csv; `to_frame` makes the same table a pandas DataFrame; `track_summary`
reduces it to one row per track (tracks.csv).
"""
import contextlib
import csv
import json
import os
import tempfile
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.pgm',
              '.ppm', '.pbm', '.pnm', '.jp2', '.exr', '.hdr')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg',
              '.wmv', '.flv', '.gif', '.3gp', '.ts')
BOX_COLUMNS = ('file', 'frame', 'time_s', 'track', 'face', 'x', 'y', 'w', 'h',
               'crop')
SMOOTH_SUFFIX = '_smooth'
# What libjpeg / libpng print on stderr when they decode damaged data anyway.
_DECODER_WARNINGS = ('Corrupt JPEG data', 'Premature end of JPEG',
                     'JPEG datastream', 'libpng error', 'libpng warning')
_STDERR_LOCK = threading.Lock()


class UnreadableError(ValueError):
  """An input file that cannot be decoded; the message names the file."""


# ------------------------------------------------------------------- inputs


@contextlib.contextmanager
def _decoder_messages(out: List[str]):
  """Collects what C decoders print on file descriptor 2 inside the block.

  cv2.imdecode returns a (partly gray) image for a JPEG with a garbled or
  truncated body and only libjpeg's warning on stderr says so. Other text
  caught in the window (another thread's) is passed on to stderr.
  """
  with _STDERR_LOCK, tempfile.TemporaryFile() as tmp:
    saved = os.dup(2)
    os.dup2(tmp.fileno(), 2)
    try:
      yield
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      tmp.seek(0)
      text = tmp.read().decode('utf-8', 'replace')
    ours = [l for l in text.splitlines() if any(w in l for w in _DECODER_WARNINGS)]
    rest = [l for l in text.splitlines() if l not in ours]
    out.extend(ours)
    if rest:
      os.write(2, ('\n'.join(rest) + '\n').encode())


def read_image(path: str) -> np.ndarray:
  """HxWx3 uint8 RGB of an image file; UnreadableError naming it otherwise.

  A decoder warning (damaged JPEG body, short read) makes it unreadable too:
  its pixels are partly invented.
  """
  try:
    buf = np.fromfile(path, np.uint8)
  except OSError as e:
    raise UnreadableError(f'{path}: cannot read ({e})') from None
  warnings: List[str] = []
  img = None
  if buf.size:
    with _decoder_messages(warnings):
      img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
  if img is None:
    raise UnreadableError(f'{path}: not a decodable image (empty, corrupt or an '
                          'unsupported format)')
  if warnings:
    raise UnreadableError(f'{path}: damaged image data ({warnings[0].strip()})')
  return img[..., ::-1].copy()


def list_inputs(path: str) -> Tuple[List[str], List[str]]:
  """(media files, ignored files) of a file or a folder (not recursive)."""
  if os.path.isdir(path):
    names = sorted(os.listdir(path))
    files = [os.path.join(path, n) for n in names
             if os.path.isfile(os.path.join(path, n)) and not n.startswith('.')]
    media = [f for f in files if f.lower().endswith(IMAGE_EXTS + VIDEO_EXTS)]
    return media, [f for f in files if f not in media]
  if not os.path.exists(path):
    raise FileNotFoundError(f'--input {path} does not exist')
  return [path], []


def kind(path: str) -> str:
  low = path.lower()
  return ('video' if low.endswith(VIDEO_EXTS) else
          'image' if low.endswith(IMAGE_EXTS) else 'unknown')


class VideoReader:
  """Frames of a video file: (index, time_s, BGR uint8), time from the container.

  time_s is CAP_PROP_POS_MSEC after each read (the decoded frame's
  presentation time), not index / fps: variable frame rates and dropped frames
  keep their real times.
  """

  def __init__(self, path: str):
    self.path = path
    self._cap = cv2.VideoCapture(path)
    if not self._cap.isOpened():
      raise UnreadableError(f'{path}: OpenCV cannot open it as a video')
    self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 25.0
    n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
    self.frame_count = n if n > 0 else None

  def __iter__(self) -> Iterator[Tuple[int, float, np.ndarray]]:
    i = 0
    while True:
      ok, bgr = self._cap.read()
      if not ok:
        return
      t = round(self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, 6)
      yield i, t, bgr
      i += 1

  def close(self):
    self._cap.release()


def annotated_path(out_dir: str, path: str, video: bool) -> str:
  base = os.path.basename(path)
  if video:
    return os.path.join(out_dir, 'annotated',
                        base if base.lower().endswith('.mp4') else base + '.mp4')
  return os.path.join(out_dir, 'annotated', base)


def write_image(path: str, img: np.ndarray) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ext = os.path.splitext(path)[1].lower()
  if ext not in ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'):
    path += '.png'
  if not cv2.imwrite(path, img):
    raise OSError(f'could not write {path}')
  return path


class VideoWriter:
  """An .mp4 (mp4v) opened at the first frame, with that frame's size."""

  def __init__(self, path: str, fps: float):
    self.path, self.fps, self._out = path, fps, None

  def write(self, bgr: np.ndarray):
    if self._out is None:
      os.makedirs(os.path.dirname(self.path), exist_ok=True)
      h, w = bgr.shape[:2]
      self._out = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*'mp4v'),
                                  self.fps, (w, h))
      if not self._out.isOpened():
        raise OSError(f'cv2.VideoWriter cannot write {self.path}')
    self._out.write(bgr)

  def close(self):
    if self._out is not None:
      self._out.release()


# --------------------------------------------------------------------- rows


def value_columns(predictor) -> List[str]:
  """The numeric columns of a predictor's outputs (values, probabilities)."""
  cols = []
  for o in predictor.outputs:
    cols += [o.name] if o.kind == 'value' else [f'{o.name}/{l}' for l in o.labels]
  return cols


def columns(predictor, smooth: bool = False) -> List[str]:
  """CSV header: the face, then per output its values (and MC spread), then
  with `smooth` the smoothed copies of the values (`<column>_smooth`)."""
  cols = list(BOX_COLUMNS)
  mc = predictor.mc_passes > 0
  for o in predictor.outputs:
    if o.kind == 'value':
      cols += [o.name] + ([f'{o.name}_std'] if mc else [])
      continue
    if o.name != 'aus':
      cols.append(o.name)  # the top class
    cols += [f'{o.name}/{label}' for label in o.labels]
    if mc:
      cols += ([f'{o.name}_entropy', f'{o.name}_mutual_info']
               if o.kind == 'softmax' else [f'{o.name}_std'])
  if smooth:
    cols += [c + SMOOTH_SUFFIX for c in value_columns(predictor)]
  return cols


def face_rows(predictor, pred: Dict[str, np.ndarray], file: str, frame: int,
              faces, start: int = 0, time_s: Optional[float] = None,
              tracks: Optional[Sequence[int]] = None) -> List[Dict[str, Any]]:
  """One flat row per face (keys = `columns`); pred rows start at `start`.

  Images have no time and no track (None).
  """
  rows = []
  for i in range(len(faces)):
    j = start + i
    x, y, w, h = (int(v) for v in faces.boxes[i])
    row = {'file': file, 'frame': int(frame),
           'time_s': None if time_s is None else float(time_s),
           'track': None if tracks is None else int(tracks[i]), 'face': i,
           'x': x, 'y': y, 'w': w, 'h': h, 'crop': faces.methods[i]}
    for o in predictor.outputs:
      v = pred[o.name][j]
      if o.kind == 'value':
        row[o.name] = float(v)
      else:
        if o.name != 'aus':
          row[o.name] = o.labels[int(np.argmax(v))]
        row.update({f'{o.name}/{l}': float(p) for l, p in zip(o.labels, v)})
      for suffix in ('_std', '_entropy', '_mutual_info'):
        if o.name + suffix in pred:
          row[o.name + suffix] = float(pred[o.name + suffix][j])
    rows.append(row)
  return rows


class RowWriter:
  """predictions.jsonl and predictions.csv in `out_dir`, one row per face."""

  def __init__(self, out_dir: str, cols: Sequence[str]):
    os.makedirs(out_dir, exist_ok=True)
    self.cols = list(cols)
    self.jsonl_path = os.path.join(out_dir, 'predictions.jsonl')
    self.csv_path = os.path.join(out_dir, 'predictions.csv')
    self._jsonl = open(self.jsonl_path, 'w')
    self._csv_file = open(self.csv_path, 'w', newline='')
    self._csv = csv.DictWriter(self._csv_file, self.cols)
    self._csv.writeheader()
    self.count = 0

  def write(self, rows: Sequence[Dict[str, Any]]):
    for r in rows:
      self._jsonl.write(json.dumps({c: r.get(c) for c in self.cols}) + '\n')
      self._csv.writerow({c: (f'{v:.6g}' if isinstance(v, float) else v)
                          for c, v in r.items()})
      self.count += 1

  def close(self):
    self._jsonl.close()
    self._csv_file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def to_frame(rows: Sequence[Dict[str, Any]], cols: Sequence[str]):
  """The rows as a pandas DataFrame with the columns in `cols` order.

  `track` is a nullable integer (images have none), `time_s` a float (NaN for
  images).
  """
  import pandas as pd  # pylint: disable=g-import-not-at-top
  df = pd.DataFrame.from_records(list(rows), columns=list(cols))
  df['track'] = df['track'].astype('Int64')
  df['time_s'] = df['time_s'].astype(float)
  return df


def track_summary(df, predictor):
  """One row per (file, track): first/last time, frames, mean and std of each
  value and class probability, and the dominant class (highest mean
  probability) of each softmax output. The tracks.csv table."""
  import pandas as pd  # pylint: disable=g-import-not-at-top
  values = value_columns(predictor)
  out = []
  for (file, track), g in df.dropna(subset=['track']).groupby(
      ['file', 'track'], sort=True):
    row = {'file': file, 'track': int(track), 'first_s': g['time_s'].min(),
           'last_s': g['time_s'].max(), 'frames': len(g)}
    for c in values:
      row[f'{c}_mean'] = float(g[c].mean())
      row[f'{c}_std'] = float(g[c].std(ddof=0))
    for o in predictor.outputs:
      if o.kind == 'softmax':
        means = [g[f'{o.name}/{l}'].mean() for l in o.labels]
        row[f'{o.name}_dominant'] = o.labels[int(np.argmax(means))]
    out.append(row)
  cols = ['file', 'track', 'first_s', 'last_s', 'frames']
  cols += [f'{c}_{s}' for c in values for s in ('mean', 'std')]
  cols += [f'{o.name}_dominant' for o in predictor.outputs if o.kind == 'softmax']
  return pd.DataFrame(out, columns=cols)
