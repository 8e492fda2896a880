"""Per-subject k-fold cross-validation, grouped by clip (paper 000, section 4).

Frames of one video clip are near-duplicates (AMIGOS: one frame every 4 s of a
continuous recording), so a random frame-level split would put neighbours of
every test frame in the training set. We assign whole clips to folds instead:
clips are shuffled with a seed per subject, then placed largest first into the
fold that holds the fewest frames so far (ties: lowest fold), which balances
fold sizes when clips differ in length (`kfold_cv.assign_folds`). A subject
with fewer clips than folds cannot be split this way and raises; `by='frames'`
is the explicit fallback: contiguous blocks of the subject's frames in (clip,
frame) order.
"""
from typing import Optional

import numpy as np

from fer_jax.protocols import kfold_cv

FOLD_BY = ('clip', 'frames')


def subject_folds(clips: np.ndarray, num_folds: int, subject, seed: int = 0,
                  by: str = 'clip', frames: Optional[np.ndarray] = None
                  ) -> np.ndarray:
  """Fold id in [0, num_folds) of each frame of one subject.

  Args:
    clips: [n] clip id of each of the subject's frames.
    num_folds: k.
    subject: the subject's id (error messages and the shuffle seed).
    seed: study seed.
    by: 'clip' (whole clips per fold) or 'frames' (contiguous blocks).
    frames: [n] frame index inside its clip (orders the blocks of 'frames').

  Returns:
    int32 [n]; every fold non-empty, folds disjoint and covering the subject.
  """
  clips = np.asarray(clips)
  n = len(clips)
  if num_folds < 2:
    raise ValueError(f'num_folds must be >= 2, got {num_folds}.')
  if n < num_folds:
    raise ValueError(f'Subject {subject} has {n} frame(s), fewer than the '
                     f'{num_folds} folds.')
  if by == 'frames':
    within = np.zeros(n) if frames is None else np.asarray(frames)
    order = np.lexsort((np.arange(n), within, clips))
    fold = np.empty(n, np.int32)
    fold[order] = np.arange(n) * num_folds // n
    return fold
  if by != 'clip':
    raise ValueError(f'Unknown fold_by {by!r}; valid: {", ".join(FOLD_BY)}')
  ids = np.unique(clips)
  if len(ids) < num_folds:
    raise ValueError(
        f'Subject {subject} has {len(ids)} clip(s), fewer than the {num_folds} '
        'folds; folds are split by clip so that no clip sits on both sides. '
        "Use fewer folds or fold_by='frames'.")
  # Each subject shuffles its clips with its own seed.
  return kfold_cv.assign_folds(clips, num_folds,
                               seed=seed * 1_000_003 + _stable_int(subject))


def _stable_int(x) -> int:
  try:
    return int(x)
  except (TypeError, ValueError):
    import zlib
    return zlib.crc32(str(x).encode())
