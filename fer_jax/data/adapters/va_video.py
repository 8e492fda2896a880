"""Shared by the video datasets annotated with valence/arousal tables
(AMIGOS, SEMAINE): rater columns averaged, videos found by a name pattern.
"""
import math
import os
import re
from typing import Dict, Optional, Sequence, Tuple

from fer_jax.data.adapters import base, shared, video


def number(text: str) -> Optional[float]:
  """A float cell, or None when empty / NaN / not a number."""
  try:
    v = float(text.strip().strip("'\""))
  except ValueError:
    return None
  return v if math.isfinite(v) else None


def mean_va(cells: Sequence[str], v_cols, a_cols, va_range: Tuple[float, float],
            clip: bool):
  """(valence, arousal) averaged over the raters that gave a value, or None.

  ValueError (reason) when a rating is outside va_range and clip is False.
  Empty/NaN ratings are left out of the mean; None if a dimension has none.
  """
  lo, hi = va_range
  out = []
  for name, cols in (('valence', v_cols), ('arousal', a_cols)):
    vals = [number(cells[i]) if i < len(cells) else None for i in cols]
    vals = [v for v in vals if v is not None]
    if not vals:
      return None
    bad = [v for v in vals if not lo <= v <= hi]
    if bad and not clip:
      raise ValueError(f'{name} rating(s) {bad} outside [{lo}, {hi}] (pass '
                       'clip_va=True to clip them, as some public loaders do)')
    out.append(sum(min(max(v, lo), hi) for v in vals) / len(vals))
  return tuple(out)


def row_va(cells: Sequence[str], cols, va_range: Tuple[float, float],
           clip: bool, col, where: str):
  """`mean_va` of one annotation row, or None with the row counted in `col`
  (a base.Collector): bad (out of range, named by `where`) or dropped (no
  rating: 'no_va')."""
  try:
    va = mean_va(cells, cols['v'], cols['a'], va_range, clip)
  except ValueError as e:
    col.bad(where, str(e))
    return None
  if va is None:
    col.drop('no_va')
  return va


def key(text: str) -> str:
  """A subject / video id as written in a table or a file name: '07', '7.0'
  and '7' are the same id; other text is kept (case-insensitive)."""
  t = text.strip().strip("'\"")
  v = number(t)
  if v is not None and v == int(v):
    return str(int(v))
  return t.lstrip('0').lower() or '0'


def find_videos(manual_dir: str, regex: str) -> Dict[Tuple[str, ...], str]:
  """{(group values of the regex, as keys): path} of the videos under manual_dir.

  The regex is matched (full, case-insensitive) against each video file name;
  its named groups, in sorted order of their names, make the dictionary key.
  """
  rx = re.compile(regex, re.IGNORECASE)
  names = sorted(rx.groupindex)
  out = {}
  for root, dirs, files in os.walk(manual_dir):
    dirs.sort()
    for fn in sorted(files):
      m = rx.fullmatch(fn)
      if m and fn.lower().endswith(video.VIDEO_EXT):
        out.setdefault(tuple(key(m.group(n)) for n in names), os.path.join(root, fn))
  return out


def some_names(manual_dir: str, n: int = 5):
  """A few video file names under manual_dir (for error messages)."""
  found = []
  for _, _, files in os.walk(manual_dir):
    found += [f for f in files if f.lower().endswith(video.VIDEO_EXT)]
    if len(found) >= n:
      break
  return sorted(found)[:n]


def probe_all(paths, col: base.Collector):
  """{path: (frame count, fps)} of the videos that open; the rest go to col."""
  out = {}
  for p in sorted(set(paths)):
    try:
      out[p] = video.probe(p)
    except shared.AdapterError as e:
      col.bad(p, str(e).split(': ', 1)[-1])
  return out
