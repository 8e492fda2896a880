"""The personal dataset of paper 000's study: every kept frame of the chosen
subjects, preprocessed as in pre-training, its label checks and its folds."""
import dataclasses

import numpy as np

from fer_jax.data import pipeline
from fer_jax.data.sources import get_source
from fer_jax.face import points
from fer_jax.protocols import kfold
from fer_jax.train import workdir as workdir_lib

TARGETS = ('valence', 'arousal')  # columns of PersonalData.labels


@dataclasses.dataclass
class PersonalData:
  """Every kept frame of the personal dataset, preprocessed as in pre-training."""
  images: np.ndarray    # [N, H, W, C] float32
  labels: np.ndarray    # [N, 2] valence, arousal
  subject: np.ndarray   # [N]
  clip: np.ndarray      # [N]
  frame: np.ndarray     # [N]


def load_personal_data(config) -> PersonalData:
  """Renders / reads the personal split, keeps annotated frames of the chosen
  subjects (every `frame_stride`-th frame), checks labels, preprocesses."""
  import grain  # pylint: disable=g-import-not-at-top
  pc = config.personal
  source = get_source(pc, pc.split)
  fields = ('image', 'valence', 'arousal', 'subject', 'clip', 'frame', 'has_va')

  def read(i):
    r = source[int(i)]
    return {k: np.asarray(r.get(k, -1 if k in ('clip', 'frame') else 0))
            for k in fields}

  stride, wanted = pc.get('frame_stride', 1), tuple(pc.get('subjects', ()))
  indices = np.arange(len(source))
  if hasattr(source, 'video_position') and source.video_position(0):
    # Known without rendering: skip the frames the study will not keep.
    pos = np.array([source.video_position(int(i)) for i in indices])
    keep_idx = np.ones(len(indices), bool)
    if wanted:
      keep_idx &= np.isin(pos[:, 0], wanted)
    if stride > 1:
      keep_idx &= pos[:, 2] % stride == 0
    indices = indices[keep_idx]
  ds = grain.MapDataset.source(indices).map(read).to_iter_dataset(
      grain.ReadOptions(num_threads=config.runtime.get('data_threads', 2),
                        prefetch_buffer_size=64))
  keep = []
  for r in ds:
    if not r['has_va'] or (wanted and int(r['subject']) not in wanted):
      continue
    if stride > 1 and int(r['frame']) % stride:
      continue
    keep.append(r)
  if not keep:
    raise workdir_lib.ConfigError(
        f'No annotated frames of subjects {wanted or "(all)"} in '
        f'{pc.name} {dict(pc.source)} split {pc.split!r}.')
  col = lambda k: np.stack([r[k] for r in keep])  # noqa: E731
  data = PersonalData(images=col('image'),
                      labels=np.stack([col('valence'), col('arousal')], -1)
                      .astype(np.float32),
                      subject=col('subject'), clip=col('clip'), frame=col('frame'))
  check_personal_data(data)
  # Frames carry no eyes or landmarks: a cropping pipeline asks the detector.
  pre = pipeline.preprocess_from_config(config.pretrain.data,
                                        name=f'{pc.name}/{pc.split}',
                                        detector=points.find_points)
  # Labels are checked above, by subject; Preprocess sees the image only.
  data.images = np.stack([pre({'image': im})['image'] for im in data.images])
  return data


def check_personal_data(data: PersonalData):
  """Raises naming the subject (and frames) whose labels are not finite."""
  bad = ~np.isfinite(data.labels)
  if bad.any():
    for s in np.unique(data.subject[bad.any(1)]):
      rows = np.flatnonzero((data.subject == s) & bad.any(1))
      names = [TARGETS[j] for j in range(bad.shape[1]) if bad[rows, j].any()]
      where = ', '.join(f'clip {data.clip[r]} frame {data.frame[r]}'
                        for r in rows[:3])
      raise pipeline.BadRecordError(
          f'Subject {s}: {"/".join(names)} label is NaN or inf in {len(rows)} '
          f'frame(s) ({where}{", ..." if len(rows) > 3 else ""}); fix or drop '
          'them before the study.')


def study_subjects(config, data: PersonalData) -> np.ndarray:
  wanted = tuple(config.personal.get('subjects', ()))
  have = np.unique(data.subject)
  missing = [s for s in wanted if s not in have]
  if missing:
    raise workdir_lib.ConfigError(
        f'personal.subjects: {missing} have no annotated frames.')
  return np.asarray(wanted) if wanted else have


def make_folds(config, data: PersonalData, subjects) -> np.ndarray:
  """Fold id of every frame (-1 for frames of subjects outside the study)."""
  fold = np.full(len(data.subject), -1, np.int32)
  for s in subjects:
    rows = np.flatnonzero(data.subject == s)
    fold[rows] = kfold.subject_folds(data.clip[rows], config.folds, int(s),
                                     config.seed, config.get('fold_by', 'clip'),
                                     data.frame[rows])
  return fold

