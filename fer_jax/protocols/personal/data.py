"""The personal dataset of paper 000's study: every kept frame of the chosen
subjects, preprocessed as in pre-training, its label checks and its folds.

Frames are kept as uint8 pixels with a [256, C] float32 table of the value
op (`float_images`), so every device holds a quarter of float32's bytes; the
float32 a model sees is the table's entry, bitwise the value op's output.
"""
import dataclasses
from typing import Optional

import numpy as np

from fer_jax.data import pipeline
from fer_jax.data import pp_ops
from fer_jax.data.sources import get_source
from fer_jax.face import points
from fer_jax.protocols import kfold
from fer_jax.protocols.personal import files
from fer_jax.train import workdir as workdir_lib

TARGETS = ('valence', 'arousal')  # columns of PersonalData.labels


@dataclasses.dataclass
class PersonalData:
  """Every kept frame of the personal dataset, preprocessed as in pre-training:
  `float_images(images, lookup)` are the float32 images."""
  images: np.ndarray    # [N, H, W, C] uint8 pixels (float32 if lookup is None)
  labels: np.ndarray    # [N, 2] valence, arousal
  subject: np.ndarray   # [N]
  clip: np.ndarray      # [N]
  frame: np.ndarray     # [N]
  lookup: Optional[np.ndarray] = None  # [256, C] float32, `value_lookup`


def value_lookup(pre: pipeline.Preprocess, pixels: np.ndarray
                 ) -> Optional[np.ndarray]:
  """[256, C] float32: pre's value op of pixel value v in channel c, made by
  that very op on an image of the values 0..255, so bitwise its output. None
  where the op reads more than the pixel (minmax) or pixels are not uint8."""
  if pre.value_op not in pp_ops.PIXELWISE_VALUE_OPS or pixels.dtype != np.uint8:
    return None
  c = pixels.shape[-1]
  ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], c, axis=2)
  table = pre.values(ramp)
  if table.dtype != np.float32 or table.shape != (256, 1, c):
    return None
  return np.ascontiguousarray(table[:, 0])


def float_images(images, lookup):
  """The float32 images of uint8 `images` [..., C] and their `lookup` table
  (numpy; or jax, in a jitted function): a gather, no arithmetic. Images
  without a table are returned as they are."""
  if lookup is None:
    return images
  return lookup[images.astype(np.int32), np.arange(images.shape[-1])]


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
  pixels = np.stack([pre.pixels({'image': im})['image'] for im in data.images])
  data.lookup = value_lookup(pre, pixels)
  if data.lookup is not None:
    data.images = pixels
  else:
    data.images = np.stack([pre.values(im) for im in pixels])
    why = (f'the pixels are {pixels.dtype}, not uint8'
           if pre.value_op in pp_ops.PIXELWISE_VALUE_OPS else
           f'value op {pre.value_op} reads the whole image, not one pixel')
    files.log(config, 'Personal images kept as float32 '
              f'({data.images.nbytes / 2**20:.1f} MiB on every device): {why}.')
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

