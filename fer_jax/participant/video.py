"""One embedded `amigos_like` subject as a video file, with its ground truth.

The personalization workflow runs on a video of one person. To check it on
data with known answers, `render_subject` writes a subject's clips, in order,
as one video (each rendered face on a canvas a little larger than the face,
its border colour replicated, so the face detector sees a face with margin),
and truth.csv: one row per video frame (frame, time_s, valence, arousal,
clip). The oracle labeller and the learning curve read it (`read_truth`).

Times: frame i is at i / fps. MJPG in .avi (every frame a keyframe: exact
frame count and times) or mp4v in .mp4.
"""
import csv
import dataclasses
import os
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from fer_jax import atomic
from fer_jax.data.synthetic import SyntheticSource

TRUTH_COLUMNS = ('frame', 'time_s', 'valence', 'arousal', 'clip')
FOURCC = {'.avi': 'MJPG', '.mp4': 'mp4v'}
FPS = 10.0


@dataclasses.dataclass(frozen=True)
class RenderedSubject:
  video: str
  truth: str          # the CSV of TRUTH_COLUMNS
  frames: int
  fps: float
  subject: int
  clips: tuple        # the dataset's clip ids, in video order


def subject_clips(source: SyntheticSource, subject: int) -> Dict[int, list]:
  """{clip id: record indices in frame order} of one subject of a video source."""
  spec = source.spec
  if spec.kind != 'video':
    raise ValueError(f'{spec.name} is not a video preset')
  if not 0 <= subject < spec.num_subjects:
    raise ValueError(f'subject {subject} is not in [0, {spec.num_subjects})')
  out: Dict[int, list] = {}
  for start in range(0, len(source), spec.frames_per_clip):
    s, clip, _ = source.video_position(start)
    if s == subject:
      out[clip] = list(range(start, start + spec.frames_per_clip))
  return out


def _canvas(face_rgb: np.ndarray, margin: int) -> np.ndarray:
  bgr = np.ascontiguousarray(face_rgb[..., ::-1])
  return cv2.copyMakeBorder(bgr, margin, margin, margin, margin,
                            cv2.BORDER_REPLICATE)


def render_subject(out_dir: str, subject: int = 0, preset: str = 'amigos_like',
                   split: str = 'train', clips: Optional[Sequence[int]] = None,
                   frames_per_clip: Optional[int] = None, image_size: int = 96,
                   margin: Optional[int] = None, fps: float = FPS,
                   name: str = 'subject.avi', seed: int = 0) -> RenderedSubject:
  """Writes out_dir/<name> and out_dir/truth.csv for one subject.

  clips: which of the subject's clips (0-based positions in its clip order;
  default all), each cut to its first `frames_per_clip` frames (default all).
  The face is image_size pixels, on a canvas `margin` pixels wider on every
  side (default image_size // 4).
  """
  ext = os.path.splitext(name)[1].lower()
  if ext not in FOURCC:
    raise ValueError(f'{name}: the video must end in {" or ".join(FOURCC)}')
  source = SyntheticSource(preset, split, image_size=image_size, channels=3,
                           seed=seed)
  by_clip = subject_clips(source, subject)
  ids = sorted(by_clip)
  if clips is not None:
    bad = [c for c in clips if not 0 <= c < len(ids)]
    if bad:
      raise ValueError(f'clips {bad} not in [0, {len(ids)}): subject {subject} '
                       f'has {len(ids)} clips')
    ids = [ids[c] for c in clips]
  margin = image_size // 4 if margin is None else int(margin)
  side = image_size + 2 * margin
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, name)
  tmp = os.path.join(out_dir, f'.{os.getpid()}.{name}')
  writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC[ext]), fps,
                           (side, side))
  if not writer.isOpened():
    raise OSError(f'cv2.VideoWriter cannot write {tmp}')
  rows = []
  try:
    for clip in ids:
      for i in by_clip[clip][:frames_per_clip]:
        r = source[i]
        writer.write(_canvas(r['image'], margin))
        n = len(rows)
        rows.append({'frame': n, 'time_s': round(n / fps, 6),
                     'valence': float(r['valence']),
                     'arousal': float(r['arousal']), 'clip': int(r['clip'])})
  finally:
    writer.release()
  os.replace(tmp, path)
  truth = os.path.join(out_dir, 'truth.csv')
  atomic.write_csv(truth, rows, TRUTH_COLUMNS)
  return RenderedSubject(path, truth, len(rows), float(fps), int(subject),
                         tuple(ids))


def read_truth(path: str) -> Dict[str, np.ndarray]:
  """truth.csv as {column: array}, rows in frame order."""
  with open(path, newline='') as f:
    rows = list(csv.DictReader(f))
  kinds = {'frame': int, 'clip': int}
  return {c: np.array([kinds.get(c, float)(r[c]) for r in rows])
          for c in TRUTH_COLUMNS}
