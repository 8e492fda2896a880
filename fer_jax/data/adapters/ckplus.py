"""CK+: image sequences, emotion files for 327 of 593, FACS AU codes, landmarks.

Layout (allowing one extra level, e.g. Emotion_labels/Emotion/, FACS_labels/FACS/):
cohn-kanade-images/S005/001/S005_001_00000011.png,
Emotion/S005/001/S005_001_00000011_emotion.txt (one float 0-7: neutral,
anger, contempt, disgust, fear, happy, sadness, surprise; `label_maps.CKPLUS`),
FACS/S005/001/S005_001_00000011_facs.txt (optional; one line per AU present,
'AU intensity' as whitespace-separated floats, e.g. '   1.2000000e+01
4.0000000e+00'; intensity 1-5 = A-E, 0 = present, intensity not coded),
Landmarks/S005/001/S005_001_00000011_landmarks.txt (68 lines 'x y', optional).

Expression: a sequence without an emotion file has no label and is left out
(counted in dropped['unlabelled']) unless facs_only=True and it has a FACS
file (then its peak frames are AU-only records). Records: the last
`peak_frames` frames of a labelled sequence with its emotion (and its AUs),
plus its first `neutral_frames` frames as neutral (no AU labels: CK+ codes
only the peak frame). Contempt sequences are dropped unless contempt=True
(label 7; the source then declares the 8 `labels.EXPRESSIONS_WITH_CONTEMPT`).

AUs (facs=True, or 'auto' = when a FACS folder exists): the FACS file codes
every AU present at the peak, so a project AU it does not list is absent (0);
a listed one is present (1) with intensity/5 in `au_intensity` (intensity 0:
AU_MISSING there). Listed AUs the project lacks (e.g. 10, 14, 24, 43) are
dropped and noted in `source.notes`. An AU number that is not a positive
integer, or an intensity outside 0-5, is bad input (file and line).
No official split: subjects are split by fractions and seed (split='all').
"""
import glob
import os
import re

import numpy as np

from fer_jax.data import labels
from fer_jax.data.adapters import base, label_maps

LAYOUT = ('  <manual_dir>/cohn-kanade-images/S005/001/S005_001_00000011.png\n'
          '  <manual_dir>/Emotion/S005/001/S005_001_00000011_emotion.txt\n'
          '  <manual_dir>/FACS/S005/001/S005_001_00000011_facs.txt (optional)\n'
          '  <manual_dir>/Landmarks/S005/001/S005_001_00000011_landmarks.txt '
          '(optional)')
_SEQ = re.compile(r'^S\d{3}$')


def _find(manual_dir, name):
  for cand in (os.path.join(manual_dir, name), *glob.glob(
      os.path.join(manual_dir, '*', name))):
    if os.path.isdir(cand):
      return cand
  return None


def read_facs(path: str):
  """{AU number: intensity} of a CK+ FACS file; ValueError naming file:line."""
  out = {}
  with open(path) as f:
    lines = f.read().splitlines()
  for n, text in enumerate(lines, 1):
    if not text.strip():
      continue
    parts = text.split()
    try:
      au, inten = (float(p) for p in parts)
    except ValueError:
      raise ValueError(f'{path}:{n}: expected "AU intensity" (two numbers), got '
                       f'{text.strip()!r}') from None
    if au != int(au) or au < 1:
      raise ValueError(f'{path}:{n}: AU number {au} is not a positive integer')
    if not 0 <= inten <= 5:
      raise ValueError(f'{path}:{n}: intensity {inten} of AU{int(au)} outside 0-5')
    out[int(au)] = inten
  return out


def facs_vectors(codes, col: base.Collector):
  """(aus, au_intensity) of one FACS file's {AU: intensity} (see module doc)."""
  lacking = sorted(a for a in codes if a not in labels.AUS)
  if lacking:
    col.note(f'CK+ FACS AUs {lacking} are not in the project AU space '
             '(labels.AUS); dropped')
  values = {a: float(a in codes) for a in labels.AUS}
  inten = {a: (codes[a] / 5 if codes.get(a, 0) > 0 else labels.AU_MISSING)
           if a in codes else 0.0 for a in labels.AUS}
  return base.au_vectors(values, inten)


def ckplus(split: str, manual_dir: str, image_size=None, channels: int = 1,
           peak_frames: int = 1, neutral_frames: int = 0, contempt: bool = False,
           facs='auto', facs_only: bool = False, fractions=(0.8, 0.1, 0.1),
           seed: int = 0, skip_bad: bool = False):
  images = _find(manual_dir, 'cohn-kanade-images')
  emotion = _find(manual_dir, 'Emotion')
  if images is None or emotion is None:
    raise base.missing_layout('ckplus', manual_dir, 'cohn-kanade-images/' if images
                              is None else 'Emotion/', LAYOUT)
  facs_root = _find(manual_dir, 'FACS')
  if facs not in (True, False, 'auto'):
    raise ValueError(f"facs must be True, False or 'auto', got {facs!r}")
  if facs == 'auto':
    facs = facs_root is not None
  elif facs and facs_root is None:
    raise base.missing_layout('ckplus', manual_dir, 'FACS/', LAYOUT)
  lm_root = _find(manual_dir, 'Landmarks')
  seqs = sorted((s, q) for s in os.listdir(images) if _SEQ.match(s)
                for q in os.listdir(os.path.join(images, s))
                if q.isdigit() and os.path.isdir(os.path.join(images, s, q)))
  keep = base.subject_split([s for s, _ in seqs], split, fractions, seed)
  col = base.Collector(skip_bad)
  for s, q in seqs:
    if s not in keep:
      continue
    aus = inten = None
    if facs:
      facs_files = glob.glob(os.path.join(facs_root, s, q, '*_facs.txt'))
      if facs_files:
        try:
          aus, inten = facs_vectors(read_facs(facs_files[0]), col)
        except ValueError as e:  # 'file:line: reason'
          col.bad(*str(e).split(': ', 1))
          continue
        except OSError as e:
          col.bad(facs_files[0], f'cannot read ({e})')
          continue
    files = glob.glob(os.path.join(emotion, s, q, '*_emotion.txt'))
    if not files and not (facs_only and aus is not None):
      col.drop('unlabelled')
      continue
    label = labels.MISSING
    if files:
      where = files[0]
      try:
        code = float(open(where).read().split()[0])
        if code != int(code) or not 0 <= code <= 7:
          raise ValueError(f'emotion {code} is not an integer 0-7')
      except (ValueError, IndexError) as e:
        col.bad(f'{where}:1', str(e) or 'empty emotion file')
        continue
      label = label_maps.CKPLUS[int(code)]
      if label == base.CONTEMPT and not contempt:
        col.drop('contempt')
        continue
    frames = sorted(f for f in os.listdir(os.path.join(images, s, q))
                    if f.lower().endswith('.png'))
    chosen = ([(f, 0, False) for f in frames[:neutral_frames]]
              if label != labels.MISSING else [])
    chosen += [(f, label, True) for f in frames[max(len(frames) - peak_frames,
                                                    neutral_frames):]]
    for f, lab, peak in chosen:
      image = os.path.join(images, s, q, f)
      lm = None
      if lm_root is not None:
        lp = os.path.join(lm_root, s, q, f[:-4] + '_landmarks.txt')
        if os.path.isfile(lp):
          try:
            lm = base.parse_landmarks(np.loadtxt(lp, ndmin=2), lp)
          except ValueError as e:
            col.bad(lp, str(e).split(': ', 1)[-1])
            continue
      extra = {'aus': aus, 'au_intensity': inten} if peak and aus is not None else {}
      col.add(where=image, image=image, expression=lab, landmarks=lm,
              subject=int(s[1:]), clip=int(s[1:]) * 1000 + int(q),
              frame=frames.index(f), **extra)
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource(
      'ckplus', split, col, domain='lab', image_size=image_size, channels=channels,
      groups=('expression', 'aus') if facs else ('expression',),
      expression_names=(labels.EXPRESSIONS_WITH_CONTEMPT if contempt
                        else labels.EXPRESSIONS))
