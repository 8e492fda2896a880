"""grain input pipelines: record -> preprocessed example -> sharded batches.

Every pipeline is a `grain.MapDataset`, so batch k of a run is a pure function of
(source, seed, k): a resumed run asks for batches from its restored step on and
sees exactly the data an uninterrupted run would have seen.
"""
import dataclasses
import math
from typing import Any, Callable, Dict, Optional

import grain
import numpy as np

from fer_jax.data import crops, transforms

# Fields a model or task may need; the rest (landmarks, eyes...) stay in the source.
LABEL_FIELDS = ('valence', 'arousal', 'expression', 'compound', 'aus', 'has_va',
                'has_expression', 'has_aus', 'has_compound', 'subject', 'domain',
                'clip', 'dataset_id')
# Class counts of the label checks. Expression: the 8-class space (the
# canonical 7, then contempt = 7, `labels.EXPRESSIONS_WITH_CONTEMPT`): only
# a source declaring those `expression_names` yields 7 (AffectNet basic8,
# FER+ / CK+ with contempt=True); a 7-output task must not be trained on it.
_NUM_EXPRESSIONS = {'expression': 8, 'compound': 15}


class BadRecordError(ValueError):
  """A record whose image or labels cannot be used; names the record."""


def _has_points(points) -> bool:
  """Whether a record's points (landmarks, eyes) are given: some, all finite."""
  if points is None:
    return False
  points = np.asarray(points, np.float64)
  return points.size > 0 and bool(np.all(np.isfinite(points)))


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """Turns a record into a float32 example; the papers' steps as options.

  crop: 'none', 'eyes' (001: eye-aligned box) or 'landmarks' (002: landmark box);
    a record without them takes them from `detector`.
  detector: (image, 'eyes' | 'landmarks', where) -> the (2, 2) eye centres or
    (68, 2) landmarks of the image's face (`fer_jax.face.points.find_points`:
    the face detector, and dlib), raising BadRecordError where it finds none;
    None: a cropped record must carry its points.
  normalize: 'unit' (x/255), 'minmax' (001: per-image stretch, then /255),
    'mean_std' ((x/255 - mean) / std; 002 uses 0.5/0.5), 'featurewise'
    (004: Keras' featurewise_center + featurewise_std_normalization,
    (x - featurewise_mean) / (featurewise_std + 1e-6) per channel, the
    statistics of the training images in pixel units [0, 255], see
    `statistics.featurewise_stats`), 'none' (float32 pixels, 0..255).
  Augmentations apply only when `train` and a rng is given.
  """
  image_size: int
  channels: int = 3
  crop: str = 'none'
  normalize: str = 'unit'
  mean: Any = 0.5
  std: Any = 0.5
  hflip: bool = False
  rotation: float = 0.0   # max degrees (004: 45)
  shift: float = 0.0      # max fraction of the side (004: 0.2)
  pad_crop: int = 0       # pad then random crop back (003: 4)
  name: str = 'dataset'
  featurewise_mean: Any = None  # per-channel, pixel units ('featurewise')
  featurewise_std: Any = None
  detector: Optional[Callable[[np.ndarray, str, str], np.ndarray]] = None

  def __call__(self, record: Dict[str, Any], rng: Optional[np.random.Generator] = None):
    where = f'{self.name} record {record.get("index", "?")}'
    image = np.asarray(record.get('image'))
    if image.dtype != np.uint8 or image.ndim != 3 or 0 in image.shape:
      raise BadRecordError(f'{where}: image must be a non-empty uint8 HxWxC array, '
                           f'got dtype {image.dtype} shape {image.shape}')
    _check_labels(record, where)
    if self.crop == 'eyes':
      eyes = np.asarray(record.get('eyes', np.full((2, 2), np.nan)), np.float64)
      if not np.all(np.isfinite(eyes)):  # photographs without landmarks (SFEW)
        eyes = self._detect(image, 'eyes', where)
      image = crops.align_by_eyes(image, eyes, self.image_size)
    elif self.crop == 'landmarks':
      points = record.get('landmarks')
      if not _has_points(points):  # photographs without landmarks (SFEW)
        points = self._detect(image, 'landmarks', where)
      image = crops.landmark_box_crop(image, points, self.image_size)
    elif self.crop != 'none':
      raise ValueError(f'Unknown crop {self.crop!r}; valid: none, eyes, landmarks')
    image = transforms.to_channels(image, self.channels)
    if image.shape[:2] != (self.image_size, self.image_size):
      image = transforms.resize(image, self.image_size)
    if rng is not None:
      image = self._augment(image, rng)
    example = {k: np.asarray(record[k]) for k in LABEL_FIELDS if k in record}
    example['image'] = self._normalize(image)
    return example

  def _detect(self, image, what, where):
    if self.detector is None:
      raise ValueError(f'{where}: the {what} crop needs {what}; the record has '
                       'none and no face detector was given (Preprocess.detector)')
    return self.detector(image, what, where)

  def _augment(self, image, rng):
    if self.rotation:
      image = transforms.random_rotation(image, rng, self.rotation)
    if self.shift:
      image = transforms.random_shift(image, rng, self.shift)
    if self.hflip:
      image = transforms.random_hflip(image, rng)
    if self.pad_crop:
      image = transforms.pad_random_crop(image, rng, self.pad_crop)
    return image

  def _normalize(self, image):
    if self.normalize == 'unit':
      return image.astype(np.float32) / 255.0
    if self.normalize == 'minmax':
      return transforms.minmax_stretch(image) / 255.0
    if self.normalize == 'mean_std':
      return transforms.normalize(image, self.mean, self.std)
    if self.normalize == 'featurewise':
      if self.featurewise_mean is None or self.featurewise_std is None:
        raise ValueError("normalize='featurewise' needs featurewise_mean / _std "
                         "(the training images' statistics, "
                         'statistics.featurewise_stats)')
      # Keras ImageDataGenerator.standardize: x -= mean; x /= (std + 1e-6).
      x = image.astype(np.float32) - np.asarray(self.featurewise_mean, np.float32)
      return x / (np.asarray(self.featurewise_std, np.float32) + np.float32(1e-6))
    if self.normalize == 'none':
      return image.astype(np.float32)
    raise ValueError(f'Unknown normalize {self.normalize!r}; valid: unit, minmax, '
                     'mean_std, featurewise, none')


def _check_labels(record, where):
  if record.get('has_va', False):
    for k in ('valence', 'arousal'):
      if not np.isfinite(record[k]):
        raise BadRecordError(f'{where}: {k} is {record[k]} (not a finite number)')
  for k, n in _NUM_EXPRESSIONS.items():
    if record.get(f'has_{k}', False) and not 0 <= int(record[k]) < n:
      raise BadRecordError(f'{where}: {k} label {record[k]} is outside [0, {n})')
  if record.get('has_aus', False) and not np.all(np.isfinite(record['aus'])):
    raise BadRecordError(f'{where}: AU labels hold NaN/inf')


def preprocess_from_config(data_config, name='dataset',
                           detector=None) -> Preprocess:
  """The Preprocess of a `config.data` section (`detector`: see Preprocess).

  normalize='featurewise' takes its statistics from
  `data.featurewise_stats` ({'mean': [C], 'std': [C]}, pixel units): the train
  loop computes them from the training data
  (`statistics.featurewise_stats_of_config`) and writes them into the run's
  config.json.
  """
  aug = data_config.get('augment', {})
  pre = Preprocess(
      image_size=data_config.image_size, channels=data_config.channels,
      crop=data_config.get('crop', 'none'),
      normalize=data_config.get('normalize', 'unit'),
      mean=data_config.get('mean', 0.5), std=data_config.get('std', 0.5),
      hflip=aug.get('hflip', False), rotation=aug.get('rotation', 0.0),
      shift=aug.get('shift', 0.0), pad_crop=aug.get('pad_crop', 0), name=name,
      detector=detector)
  if pre.normalize == 'featurewise':
    stats = data_config.get('featurewise_stats')
    if not stats:
      raise ValueError(f"{name}: normalize='featurewise' needs "
                       "data.featurewise_stats (the training images' statistics: "
                       'statistics.featurewise_stats_of_config)')
    pre = dataclasses.replace(pre, featurewise_mean=tuple(stats['mean']),
                              featurewise_std=tuple(stats['std']))
  return pre


def limit(source, n: int):
  """The first `n` records of a source (all of them when n <= 0)."""
  return source if n <= 0 or n >= len(source) else grain.MapDataset.source(source)[:n]


def steps_per_epoch(num_records: int, global_batch: int) -> int:
  return max(num_records // global_batch, 1)


def train_dataset(source, preprocess: Preprocess, global_batch: int, num_steps: int,
                  seed: int, process_index: int = 0, process_count: int = 1):
  """Infinite-looking shuffled, augmented, batched MapDataset of this process.

  Batch k holds this process's share (global_batch / process_count) of global
  batch k; each epoch is reshuffled from the seed.
  """
  if global_batch % process_count:
    raise ValueError(f'batch size {global_batch} is not divisible by the '
                     f'{process_count} processes')
  local_batch = global_batch // process_count
  epochs = math.ceil(num_steps * global_batch / len(source)) + 1
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(epochs)
  ds = ds[process_index::process_count]
  ds = ds.random_map(preprocess, seed=seed)
  return ds.batch(local_batch, drop_remainder=True)


def eval_dataset(source, preprocess: Preprocess, global_batch: int,
                 process_index: int = 0, process_count: int = 1):
  """Whole split in order, padded to full batches; `mask` marks real examples."""
  local_batch = global_batch // process_count
  n = len(source)
  per_proc = math.ceil(n / process_count)
  padded = math.ceil(per_proc / local_batch) * local_batch
  ds = grain.MapDataset.source(source)[process_index::process_count]
  ds = ds.map(preprocess)
  ds = _pad(ds, padded)
  return ds.batch(local_batch, drop_remainder=False)


def _pad(ds, length):
  n = len(ds)

  def get(i):
    ex = dict(ds[min(i, n - 1)])
    ex['mask'] = np.asarray(i < n)
    return ex
  return grain.MapDataset.range(length).map(get)


def to_iterator(ds, start: int = 0, num_threads: int = 4, prefetch: int = 8):
  """Iterates batches from `start`, preparing them on background threads."""
  ds = ds[start:]
  opts = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
  return iter(ds.to_iter_dataset(opts))
