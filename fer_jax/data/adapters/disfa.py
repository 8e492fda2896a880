"""DISFA: 27 subjects filmed in stereo, per-frame intensities (0-5) of 12 AUs.

Layout (as distributed):
  ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt: one file per
    subject and AU (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26); lines
    'frameIdx,intensity', ints, no header; frameIdx 1-based (~4,845 frames;
    SN010 has 4,844); intensity 0-5.
  Videos_LeftCamera/LeftVideoSN001_comp.avi (camera='right':
    Videos_RightCamera/RightVideoSN001_comp.avi), read with OpenCV
    (`adapters.video`): label frame f is video frame f - 1.
  Subjects SN001..SN032 with gaps (27 in all); whichever are present are used.
Pre-extracted frames (frames_dir='<folder under manual_dir>'): many DISFA
  pipelines extract the frames once, with no common naming, so this reads
  <frames_dir>/SN001/<anything ending in the frame number>.<png|jpg|bmp>; the
  number of the file holding the video's first frame is frames_start (1, as
  ffmpeg's %d numbering; 0 for loops that count from 0). The videos are the
  default because they are what DISFA ships.

Labels: aus[k] = intensity >= threshold (2, the common occurrence rule) and
au_intensity[k] = intensity / 5, in the project's AU order. Every DISFA AU is
in the project's space; the project's AU7 and AU23, which DISFA does not code,
are labels.AU_MISSING (masked, never negative), as is an AU whose file lacks
that frame. A malformed or out-of-range line is bad input (file:line); with
skip_bad it is counted and that AU is unknown for that frame. frame_step keeps
every n-th labelled frame. No official split: subjects are split by fractions
and seed (never one subject in two splits; split='all' = every subject).
"""
import os
import re

from fer_jax.data import labels
from fer_jax.data.adapters import base, shared, video

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
MAX_INTENSITY = 5
LABELS_DIR = 'ActionUnit_Labels'
VIDEOS = {'left': ('Videos_LeftCamera', 'LeftVideo{subject}_comp.avi'),
          'right': ('Videos_RightCamera', 'RightVideo{subject}_comp.avi')}
LAYOUT = ('  <manual_dir>/ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt '
          '("frameIdx,intensity" lines)\n'
          '  <manual_dir>/Videos_LeftCamera/LeftVideoSN001_comp.avi\n'
          '  (or frames_dir=<folder>: <folder>/SN001/<frame number>.png)')
_SUBJECT = re.compile(r'^SN\d{3}$')
_IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.bmp')
_NUMBER = re.compile(r'(\d+)$')


def read_au_file(path: str, col: base.Collector):
  """{frameIdx: intensity} of one SNxxx_auN.txt; bad lines go to `col`."""
  out = {}
  with open(path) as f:
    lines = f.read().splitlines()
  for n, text in enumerate(lines, 1):
    if not text.strip():
      continue
    where = f'{path}:{n}'
    parts = [p.strip() for p in text.split(',')]
    if len(parts) != 2 or not all(p.lstrip('-').isdigit() for p in parts):
      col.bad(where, f'expected "frameIdx,intensity" (two integers), got '
              f'{text.strip()!r}')
      continue
    frame, inten = int(parts[0]), int(parts[1])
    if frame < 1:
      col.bad(where, f'frame index {frame} < 1 (DISFA frames are 1-based)')
    elif not 0 <= inten <= MAX_INTENSITY:
      col.bad(where, f'intensity {inten} outside 0-{MAX_INTENSITY}')
    elif frame in out:
      col.bad(where, f'frame {frame} labelled twice')
    else:
      out[frame] = inten
  return out


def _frame_files(folder):
  files = {}
  for fn in os.listdir(folder):
    stem, ext = os.path.splitext(fn)
    m = _NUMBER.search(stem)
    if ext.lower() in _IMAGE_EXT and m:
      files[int(m.group(1))] = os.path.join(folder, fn)
  return files


def disfa(split: str, manual_dir: str, image_size=None, channels: int = 3,
          camera: str = 'left', frames_dir=None, frames_start: int = 1,
          threshold: int = 2, frame_step: int = 1, fractions=(0.8, 0.1, 0.1),
          seed: int = 0, skip_bad: bool = False):
  """DISFA frames with AU labels (see module doc)."""
  if camera not in VIDEOS:
    raise ValueError(f'camera must be one of {sorted(VIDEOS)}, got {camera!r}')
  if not 0 < threshold <= MAX_INTENSITY:
    raise ValueError(f'threshold must be in 1-{MAX_INTENSITY}, got {threshold}')
  root = base.require(os.path.join(manual_dir, LABELS_DIR), 'disfa', manual_dir,
                      LAYOUT)
  subjects = sorted(s for s in os.listdir(root) if _SUBJECT.match(s)
                    and os.path.isdir(os.path.join(root, s)))
  if not subjects:
    raise base.missing_layout('disfa', manual_dir, f'{LABELS_DIR}/SN001/', LAYOUT)
  if frames_dir is not None:
    frames_root = base.require(os.path.join(manual_dir, frames_dir), 'disfa',
                               manual_dir, LAYOUT)
  else:
    vdir, vname = VIDEOS[camera]
    base.require(os.path.join(manual_dir, vdir), 'disfa', manual_dir, LAYOUT)
  col = base.Collector(skip_bad)
  for text in base.au_note('DISFA', DISFA_AUS):
    col.note(text)
  keep = base.subject_split(subjects, split, fractions, seed)
  for s in subjects:
    if s not in keep:
      continue
    per_au = {}
    for au in DISFA_AUS:
      path = os.path.join(root, s, f'{s}_au{au}.txt')
      if not os.path.isfile(path):
        col.bad(path, f'AU file not found (each subject has one file per AU: '
                f'{", ".join(f"{s}_au{a}.txt" for a in DISFA_AUS)})')
        per_au = None
        break
      per_au[au] = read_au_file(path, col)
    if per_au is None:
      continue
    frames = sorted(set().union(*per_au.values()))[::max(1, int(frame_step))]
    if frames_dir is not None:
      folder = os.path.join(frames_root, s)
      if not os.path.isdir(folder):
        col.bad(folder, 'frames folder of this subject not found')
        continue
      files = _frame_files(folder)
      count = None
    else:
      vpath = os.path.join(manual_dir, vdir, vname.format(subject=s))
      try:
        count, _ = video.probe(vpath)
      except shared.AdapterError as e:
        col.bad(vpath, str(e).split(': ', 1)[-1])
        continue
    for f in frames:
      where = f'{os.path.join(root, s, s)}_au*.txt: frame {f}'
      if frames_dir is not None:
        image = files.get(f - 1 + frames_start)
        if image is None:
          col.bad(where, f'no image numbered {f - 1 + frames_start} in {folder} '
                  f'(frames_start={frames_start})')
          continue
      else:
        if count and f > count:
          col.bad(where, f'beyond the {count} frames of {vpath}')
          continue
        image = shared.VideoFrame(vpath, f - 1)
      inten = {au: per_au[au][f] for au in DISFA_AUS if f in per_au[au]}
      aus, au_intensity = base.au_vectors(
          {au: float(i >= threshold) for au, i in inten.items()},
          {au: i / MAX_INTENSITY for au, i in inten.items()})
      col.add(where=where, image=image, aus=aus, au_intensity=au_intensity,
              subject=int(s[2:]), clip=int(s[2:]), frame=f - 1)
  if skip_bad and frames_dir is not None:
    base.check_images(col, channels)
  return base.AdapterSource('disfa', split, col, domain='lab', image_size=image_size,
                            channels=channels, groups=('aus',))


# The project AUs a DISFA record can carry (the others are AU_MISSING).
CODED = tuple(a for a in labels.AUS if a in DISFA_AUS)
