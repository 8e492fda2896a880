"""CK+: image sequences, emotion files for 327 of 593, 68-point landmarks.

Layout (allowing one extra level, e.g. Emotion_labels/Emotion/):
cohn-kanade-images/S005/001/S005_001_00000011.png,
Emotion/S005/001/S005_001_00000011_emotion.txt (one float 0-7: neutral,
anger, contempt, disgust, fear, happy, sadness, surprise; `label_maps.CKPLUS`),
Landmarks/S005/001/S005_001_00000011_landmarks.txt (68 lines 'x y', optional).
A sequence without an emotion file has no label and is left out (counted in
dropped['unlabelled']). Records: the last `peak_frames` frames of a labelled
sequence with its emotion, plus its first `neutral_frames` frames as neutral.
Contempt sequences are dropped unless contempt=True (label 7). No official
split: subjects are split by fractions and seed (split='all' = all).
"""
import glob
import os
import re

import numpy as np

from fer_jax.data.adapters import base, label_maps

LAYOUT = ('  <manual_dir>/cohn-kanade-images/S005/001/S005_001_00000011.png\n'
          '  <manual_dir>/Emotion/S005/001/S005_001_00000011_emotion.txt\n'
          '  <manual_dir>/Landmarks/S005/001/S005_001_00000011_landmarks.txt '
          '(optional)')
_SEQ = re.compile(r'^S\d{3}$')


def _find(manual_dir, name):
  for cand in (os.path.join(manual_dir, name), *glob.glob(
      os.path.join(manual_dir, '*', name))):
    if os.path.isdir(cand):
      return cand
  return None


def ckplus(split: str, manual_dir: str, image_size=None, channels: int = 1,
           peak_frames: int = 1, neutral_frames: int = 0, contempt: bool = False,
           fractions=(0.8, 0.1, 0.1), seed: int = 0, skip_bad: bool = False):
  images = _find(manual_dir, 'cohn-kanade-images')
  emotion = _find(manual_dir, 'Emotion')
  if images is None or emotion is None:
    raise base.missing_layout('ckplus', manual_dir, 'cohn-kanade-images/' if images
                              is None else 'Emotion/', LAYOUT)
  lm_root = _find(manual_dir, 'Landmarks')
  seqs = sorted((s, q) for s in os.listdir(images) if _SEQ.match(s)
                for q in os.listdir(os.path.join(images, s))
                if q.isdigit() and os.path.isdir(os.path.join(images, s, q)))
  keep = base.subject_split([s for s, _ in seqs], split, fractions, seed)
  col = base.Collector(skip_bad)
  for s, q in seqs:
    if s not in keep:
      continue
    files = glob.glob(os.path.join(emotion, s, q, '*_emotion.txt'))
    if not files:
      col.drop('unlabelled')
      continue
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
    chosen = [(f, 0) for f in frames[:neutral_frames]]
    chosen += [(f, label) for f in frames[max(len(frames) - peak_frames,
                                              neutral_frames):]]
    for f, lab in chosen:
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
      col.add(where=image, image=image, expression=lab, landmarks=lm,
              subject=int(s[1:]), clip=int(s[1:]) * 1000 + int(q),
              frame=frames.index(f))
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource('ckplus', split, col, domain='lab',
                            image_size=image_size, channels=channels)
