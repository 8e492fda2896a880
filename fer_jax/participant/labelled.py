"""The participant's labelled frames: answers read from labels.csv (and a
Label Studio export), matched to the rows of the track's cached features,
and split into contiguous blocks of time for cross-validation."""
import dataclasses
import os
from typing import Dict, Optional

import numpy as np

from fer_jax import labeling
from fer_jax.labeling import label_studio
from fer_jax.participant import frames as frames_lib
from fer_jax.participant.frames import ProposeError


@dataclasses.dataclass(frozen=True)
class Labelled:
  """The labelled frames of the participant's track, in frame order."""
  frame: np.ndarray     # [n] video frame
  rows: np.ndarray      # [n] rows of the track's Features
  y: np.ndarray         # [n, 2] valence, arousal in [-1, 1]


def read_labels(subject_dir: str, export: Optional[str] = None
                ) -> Dict[int, labeling.Answer]:
  """{frame: answer} of every frame labelled (skips and "no face" dropped):
  labels.csv, then Label Studio's JSON export (its later answers win)."""
  answers = list(labeling.read_answers(subject_dir))
  if export:
    if not os.path.isfile(export):
      raise FileNotFoundError(f'Label Studio export {export} does not exist')
    answers += label_studio.read_export(export)
  latest = labeling.latest_answers(answers)
  return {f: a for f, a in sorted(latest.items()) if a.status == 'labelled'}


def match_labels(answers: Dict[int, labeling.Answer],
                 feats: frames_lib.Features, where: str) -> Labelled:
  """The answers as rows of the track's features; a labelled frame the track
  has no face in is an error naming it (the labels are of another track or
  video)."""
  row_of = {int(f): i for i, f in enumerate(feats.frame)}
  missing = [f for f in answers if f not in row_of]
  if missing:
    shown = ', '.join(str(f) for f in missing[:5])
    raise ProposeError(f'{where}: frame(s) {shown}'
                       f'{" ..." if len(missing) > 5 else ""} are labelled but '
                       'the track has no face there (labels of another video '
                       'or --track?)')
  frames = np.asarray(sorted(answers), np.int64)
  y = np.asarray([[answers[f].valence, answers[f].arousal] for f in frames],
                 np.float32).reshape(-1, 2)
  return Labelled(frames, np.asarray([row_of[int(f)] for f in frames], np.int64),
                  y)


def time_folds(frames: np.ndarray, k: int) -> np.ndarray:
  """Fold of each frame: k contiguous blocks of the frames in time order,
  their sizes differing by at most one (earlier blocks the larger)."""
  order = np.argsort(np.asarray(frames), kind='stable')
  fold = np.empty(len(order), np.int64)
  for f, block in enumerate(np.array_split(order, k)):
    fold[block] = f
  return fold
