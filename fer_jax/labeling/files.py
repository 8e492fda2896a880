"""The subject folder: what `propose` writes, `label` appends to, `fit` reads.

    SUBJECT_DIR/
      round_1/
        to_label.csv    the frames to label, in the order the page shows them
        round.json      optional: {"expressions": [names], "clip_fps": 8.0}
        frames/<frame>.jpg  crops/<frame>.jpg  clips/<frame>/000.jpg ...
      round_2/ ...
      labels.csv        every answer of every round, appended; the last row
                        of a frame is its answer
      trace.csv         continuous mode: the pad sampled while a clip plays
      .label_token      the labelling page's token (mode 0600), kept so a
                        restarted server accepts the open page

to_label.csv (one row per frame; `write_round` writes it, a person may too):
  frame      int, required: the frame's index in the subject's video (or in
             the sorted frame folder); the key of every file, unique across
             rounds (a labelled frame is never proposed again)
  time_s     float or blank: the frame's time in the video
  image      required: the full frame, a path relative to the round folder
  crop       the face crop, or blank
  clip       a folder (relative) of the clip around the frame: its images in
             name order, played at clip_fps and looped; or blank
  clip_fps   float or blank (round.json's clip_fps, else CLIP_FPS)
  clip_index int or blank: which clip image is the frame itself
  Other columns (sampler, score, track, box...) are kept for their writer and
  ignored here. Paths may not leave the round folder.

labels.csv (LABEL_COLUMNS):
  frame, round   the frame and the round that proposed it
  status         'labelled' | 'skipped' | 'no_face' (not this person / no face)
  valence, arousal  in [-1, 1] when labelled, else blank
  expression     a name from round.json's expressions, or blank
  saved_at       UTC time, ISO 8601

trace.csv (TRACE_COLUMNS): frame, round, pass (an id per playback), t_s
  (seconds since the pass began: sample k at k / hz), clip_index (the clip
  image shown), valence, arousal.

Both CSVs are appended durably: one write of whole lines with O_APPEND, then
fsync; the file and its header are created by write-and-rename. A line cut
short by a crash (no newline) was never acknowledged: readers ignore it and
the next append removes it.
"""
import csv
import dataclasses
import datetime
import io
import json
import math
import os
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_jax import atomic

STATUSES = ('labelled', 'skipped', 'no_face')
LABEL_COLUMNS = ('frame', 'round', 'status', 'valence', 'arousal', 'expression',
                 'saved_at')
TRACE_COLUMNS = ('frame', 'round', 'pass', 't_s', 'clip_index', 'valence',
                 'arousal')
TO_LABEL_COLUMNS = ('frame', 'time_s', 'image', 'crop', 'clip', 'clip_fps',
                    'clip_index')
CLIP_FPS = 8.0
IMAGE_EXTS = ('.jpg', '.jpeg', '.png')


class ContractError(ValueError):
  """A file or a request that breaks the subject-folder contract."""


@dataclasses.dataclass(frozen=True)
class Frame:
  """One row of to_label.csv, with paths made absolute."""
  frame: int
  time_s: Optional[float]
  image: str
  crop: Optional[str]
  clip: Tuple[str, ...]  # the clip's image files, in order
  clip_fps: float
  clip_index: Optional[int]
  extra: Dict[str, str]


@dataclasses.dataclass(frozen=True)
class Round:
  number: int
  dir: str
  frames: Tuple[Frame, ...]
  expressions: Tuple[str, ...]  # empty: the base model has no expression head

  def index(self) -> Dict[int, Frame]:
    return {f.frame: f for f in self.frames}


@dataclasses.dataclass(frozen=True)
class Answer:
  """One row of labels.csv."""
  frame: int
  round: int
  status: str
  valence: Optional[float] = None
  arousal: Optional[float] = None
  expression: str = ''
  saved_at: str = ''


def round_dir(subject_dir: str, number: int) -> str:
  return os.path.join(subject_dir, f'round_{number}')


def labels_path(subject_dir: str) -> str:
  return os.path.join(subject_dir, 'labels.csv')


def trace_path(subject_dir: str) -> str:
  return os.path.join(subject_dir, 'trace.csv')


def rounds(subject_dir: str) -> List[int]:
  """The round numbers with a to_label.csv, ascending."""
  if not os.path.isdir(subject_dir):
    raise NotADirectoryError(f'{subject_dir} is not a folder')
  out = []
  for name in os.listdir(subject_dir):
    head, _, n = name.partition('_')
    if head == 'round' and n.isdigit() and os.path.isfile(
        os.path.join(subject_dir, name, 'to_label.csv')):
      out.append(int(n))
  return sorted(out)


def now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='milliseconds').replace('+00:00', 'Z')


def _complete_lines(path: str) -> str:
  """The file's text up to its last newline (a torn last line is dropped)."""
  with open(path, 'rb') as f:
    data = f.read()
  return data[:data.rfind(b'\n') + 1].decode('utf-8')


def _rows(path: str, required: Sequence[str]) -> List[Dict[str, str]]:
  reader = csv.DictReader(io.StringIO(_complete_lines(path)))
  missing = [c for c in required if c not in (reader.fieldnames or ())]
  if missing:
    raise ContractError(f'{path}: no column(s) {", ".join(missing)} '
                        f'(has {", ".join(reader.fieldnames or ()) or "nothing"})')
  return list(reader)


def _number(text: str, kind, what: str):
  text = (text or '').strip()
  if not text:
    return None
  try:
    value = kind(text)
  except ValueError:
    raise ContractError(f'{what}: {text!r} is not a{"n int" if kind is int else " number"}'
                        ) from None
  if kind is float and not math.isfinite(value):
    raise ContractError(f'{what}: {text!r} is not finite')
  return value


def _inside(base: str, rel: str, what: str) -> str:
  path = os.path.realpath(os.path.join(base, rel))
  if os.path.commonpath([path, os.path.realpath(base)]) != os.path.realpath(base):
    raise ContractError(f'{what}: {rel!r} leaves the round folder')
  return path


def read_round(subject_dir: str, number: int) -> Round:
  """Round `number` of the subject: its to_label.csv and round.json checked."""
  rdir = round_dir(subject_dir, number)
  path = os.path.join(rdir, 'to_label.csv')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} does not exist')
  meta = {}
  if os.path.isfile(os.path.join(rdir, 'round.json')):
    with open(os.path.join(rdir, 'round.json')) as f:
      try:
        meta = json.load(f)
      except json.JSONDecodeError as e:
        raise ContractError(f'{rdir}/round.json is not JSON ({e})') from None
  expressions = tuple(meta.get('expressions') or ())
  default_fps = float(meta.get('clip_fps') or CLIP_FPS)
  frames, seen = [], set()
  for i, row in enumerate(_rows(path, ('frame', 'image')), start=2):
    where = f'{path} line {i}'
    frame = _number(row['frame'], int, f'{where} frame')
    if frame is None or frame < 0:
      raise ContractError(f'{where}: frame must be an int >= 0, got {row["frame"]!r}')
    if frame in seen:
      raise ContractError(f'{where}: frame {frame} is listed twice')
    seen.add(frame)
    image = _inside(rdir, row['image'], f'{where} image')
    if not os.path.isfile(image):
      raise FileNotFoundError(f'{where}: image {row["image"]} does not exist')
    crop = None
    if (row.get('crop') or '').strip():
      crop = _inside(rdir, row['crop'], f'{where} crop')
      if not os.path.isfile(crop):
        raise FileNotFoundError(f'{where}: crop {row["crop"]} does not exist')
    clip = ()
    if (row.get('clip') or '').strip():
      cdir = _inside(rdir, row['clip'], f'{where} clip')
      if not os.path.isdir(cdir):
        raise FileNotFoundError(f'{where}: clip folder {row["clip"]} does not exist')
      clip = tuple(os.path.join(cdir, n) for n in sorted(os.listdir(cdir))
                   if n.lower().endswith(IMAGE_EXTS))
    fps = _number(row.get('clip_fps'), float, f'{where} clip_fps') or default_fps
    if fps <= 0:
      raise ContractError(f'{where}: clip_fps must be > 0')
    clip_index = _number(row.get('clip_index'), int, f'{where} clip_index')
    frames.append(Frame(
        frame=frame, time_s=_number(row.get('time_s'), float, f'{where} time_s'),
        image=image, crop=crop, clip=clip, clip_fps=fps, clip_index=clip_index,
        extra={k: v for k, v in row.items()
               if k not in TO_LABEL_COLUMNS and k is not None}))
  return Round(number, rdir, tuple(frames), expressions)


def _answer(row: Dict[str, str], where: str) -> Answer:
  status = row['status']
  if status not in STATUSES:
    raise ContractError(f'{where}: status {status!r} is not one of {STATUSES}')
  return Answer(frame=_number(row['frame'], int, f'{where} frame'),
                round=_number(row['round'], int, f'{where} round'),
                status=status,
                valence=_number(row['valence'], float, f'{where} valence'),
                arousal=_number(row['arousal'], float, f'{where} arousal'),
                expression=row.get('expression') or '',
                saved_at=row.get('saved_at') or '')


def read_answers(subject_dir: str) -> List[Answer]:
  """Every row of labels.csv in the order written ([] when there is none)."""
  path = labels_path(subject_dir)
  if not os.path.exists(path):
    return []
  return [_answer(r, f'{path} line {i}')
          for i, r in enumerate(_rows(path, LABEL_COLUMNS), start=2)]


def latest_answers(answers: Sequence[Answer]) -> Dict[int, Answer]:
  """{frame: its last answer}: a later row (going back, answering again)
  replaces an earlier one."""
  out = {}
  for a in answers:
    out[a.frame] = a
  return out


def first_unlabelled(round_: Round, answered) -> int:
  """Index in the round of the first frame with no answer (len when all are)."""
  for i, f in enumerate(round_.frames):
    if f.frame not in answered:
      return i
  return len(round_.frames)


def read_trace(subject_dir: str) -> List[Dict]:
  """trace.csv's samples as dicts of typed values, in the order written."""
  path = trace_path(subject_dir)
  if not os.path.exists(path):
    return []
  kinds = dict(frame=int, round=int, t_s=float, clip_index=int, valence=float,
               arousal=float)
  return [{k: (_number(v, kinds[k], f'{path} line {i} {k}') if k in kinds else v)
           for k, v in row.items()}
          for i, row in enumerate(_rows(path, TRACE_COLUMNS), start=2)]


def _csv_bytes(rows: Sequence[Sequence], header: Optional[Sequence[str]] = None
               ) -> bytes:
  buf = io.StringIO()
  w = csv.writer(buf, lineterminator='\n')
  if header:
    w.writerow(header)
  w.writerows(rows)
  return buf.getvalue().encode('utf-8')


class AppendOnlyCsv:
  """A CSV that only grows, durably: `append` returns once the rows are on
  disk (fsync), so an answer acknowledged after it survives a kill -9."""

  def __init__(self, path: str, columns: Sequence[str]):
    self.path, self.columns = path, tuple(columns)
    self._lock = threading.Lock()

  def append(self, rows: Sequence[Sequence]):
    if not rows:
      return
    with self._lock:
      if not os.path.exists(self.path):
        atomic.write_bytes(self.path, _csv_bytes(rows, self.columns))
        return
      fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
      try:
        self._check_and_repair(fd)
        data = _csv_bytes(rows)
        while data:
          data = data[os.write(fd, data):]
        os.fsync(fd)
      finally:
        os.close(fd)

  def _check_and_repair(self, fd: int):
    size = os.fstat(fd).st_size
    head = os.pread(fd, min(size, 4096), 0)
    first = head.split(b'\n', 1)[0].decode('utf-8', 'replace').strip()
    if first != ','.join(self.columns):
      raise ContractError(f'{self.path} starts with {first!r}, not the header '
                          f'{",".join(self.columns)!r}')
    tail = os.pread(fd, 1, size - 1)
    if tail != b'\n':  # a line torn by a crash: never acknowledged, drop it
      pos = size
      while pos > 0:
        chunk_start = max(0, pos - 4096)
        chunk = os.pread(fd, pos - chunk_start, chunk_start)
        nl = chunk.rfind(b'\n')
        if nl >= 0:
          os.ftruncate(fd, chunk_start + nl + 1)
          break
        pos = chunk_start


def _value(v: Optional[float]) -> str:
  return '' if v is None else repr(round(float(v), 6) + 0.0)  # no '-0.0'


def answer_row(a: Answer) -> List:
  return [a.frame, a.round, a.status, _value(a.valence), _value(a.arousal),
          a.expression, a.saved_at]


def append_answers(subject_dir: str, answers: Sequence[Answer],
                   writer: Optional[AppendOnlyCsv] = None):
  """Appends answers to labels.csv (durably) as they are."""
  writer = writer or AppendOnlyCsv(labels_path(subject_dir), LABEL_COLUMNS)
  writer.append([answer_row(a) for a in answers])


def trace_row(frame: int, round_: int, pass_id: str, t_s: float,
              clip_index: int, valence: float, arousal: float) -> List:
  return [frame, round_, pass_id, _value(t_s), clip_index, _value(valence),
          _value(arousal)]


def _write_image(path: str, img: np.ndarray):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ok, buf = cv2.imencode(os.path.splitext(path)[1], img,
                         [cv2.IMWRITE_JPEG_QUALITY, 90])
  if not ok:
    raise ValueError(f'could not encode {path}')
  with open(path, 'wb') as f:
    f.write(buf.tobytes())


def write_round(subject_dir: str, number: int, items: Sequence[Dict],
                expressions: Sequence[str] = (), clip_fps: float = CLIP_FPS
                ) -> str:
  """Writes round `number`: each item's images and to_label.csv (last, by
  rename, so a round folder with a to_label.csv is complete).

  An item: frame (int), image (BGR uint8 array), and optionally time_s, crop
  (array), clip (list of arrays), clip_index, and extra columns (str values).
  Images go to frames/<frame>.jpg, crops/<frame>.jpg, clips/<frame>/NNN.jpg.
  Returns the round folder.
  """
  rdir = round_dir(subject_dir, number)
  os.makedirs(rdir, exist_ok=True)
  extra_cols = sorted({k for it in items for k in it
                       if k not in TO_LABEL_COLUMNS})
  rows = []
  for it in items:
    f = int(it['frame'])
    image = f'frames/{f:06d}.jpg'
    _write_image(os.path.join(rdir, image), it['image'])
    crop = ''
    if it.get('crop') is not None:
      crop = f'crops/{f:06d}.jpg'
      _write_image(os.path.join(rdir, crop), it['crop'])
    clip = ''
    if it.get('clip') is not None and len(it['clip']):
      clip = f'clips/{f:06d}'
      for i, img in enumerate(it['clip']):
        _write_image(os.path.join(rdir, clip, f'{i:03d}.jpg'), img)
    t = it.get('time_s')
    ci = it.get('clip_index')
    rows.append([f, '' if t is None else _value(t), image, crop, clip,
                 _value(clip_fps) if clip else '', '' if ci is None else int(ci)]
                + [it.get(k, '') for k in extra_cols])
  meta = {'clip_fps': float(clip_fps)}
  if expressions:
    meta['expressions'] = list(expressions)
  atomic.write_bytes(os.path.join(rdir, 'round.json'),
                     json.dumps(meta, indent=2).encode())
  atomic.write_bytes(os.path.join(rdir, 'to_label.csv'),
                     _csv_bytes(rows, TO_LABEL_COLUMNS + tuple(extra_cols)))
  return rdir
