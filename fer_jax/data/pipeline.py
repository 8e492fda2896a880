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

from fer_jax.data import pp as pp_lib
from fer_jax.data import pp_ops

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


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """Turns a record into a float32 example: the ops of a pp string
  (`fer_jax.data.pp`, e.g. 'crop_eyes(48)|gray|resize(48)|flip_lr|minmax').

  detector: (image, 'eyes' | 'landmarks', where) -> the (2, 2) eye centres or
    (68, 2) landmarks of the image's face (`fer_jax.face.points.find_points`:
    the face detector, and dlib), raising BadRecordError where it finds none;
    None: a cropped record must carry its points.
  crop: '' keeps the pp's crop; 'none', 'eyes' or 'landmarks' replaces it (a
    mixture entry's own crop; the predictor, which crops the face itself).
  Augmentation ops apply only when a rng is given (training).
  """
  pp: str
  name: str = 'dataset'
  detector: Optional[Callable[[np.ndarray, str, str], np.ndarray]] = None
  crop: str = ''

  def __post_init__(self):
    object.__setattr__(self, '_ops', pp_lib.build(self.effective_pp))

  @property
  def effective_pp(self) -> str:
    return pp_lib.with_crop(self.pp, self.crop) if self.crop else self.pp

  def __call__(self, record: Dict[str, Any], rng: Optional[np.random.Generator] = None):
    example = self.pixels(record, rng)
    example['image'] = self.values(example['image'])
    return example

  def pixels(self, record: Dict[str, Any],
             rng: Optional[np.random.Generator] = None):
    """The example before the value op: every op but the last (its image is
    uint8 for the built-in ops); `values` then gives the float32 image."""
    where = f'{self.name} record {record.get("index", "?")}'
    image = np.asarray(record.get('image'))
    if image.dtype != np.uint8 or image.ndim != 3 or 0 in image.shape:
      raise BadRecordError(f'{where}: image must be a non-empty uint8 HxWxC array, '
                           f'got dtype {image.dtype} shape {image.shape}')
    _check_labels(record, where)
    ctx = pp_ops.Context(rng=rng, detector=self.detector, where=where)
    for op in self._ops[:-1]:
      image = op(image, record, ctx)
    example = {k: np.asarray(record[k]) for k in LABEL_FIELDS if k in record}
    example['image'] = image
    return example

  def values(self, image: np.ndarray) -> np.ndarray:
    """The pp's value op (its last; a function of the image alone)."""
    return self._ops[-1](image, {}, pp_ops.Context())

  @property
  def value_op(self) -> str:
    """The name of the value op (unit, minmax, ...)."""
    return pp_lib.parse(self.effective_pp)[-1][0]


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


def pp_of_config(data_config, values: str = '') -> str:
  """The pp string of a `config.data` section: `data.pp` where set, else the
  one its fields (crop, channels, image_size, augment, normalize, mean, std)
  spell (runs written before pp). With data.pp, a `data.crop` other than
  its crop replaces it (a `data.test_sources` section's own crop); the other
  fields must agree with it. `values`: another value op in place of
  the section's (e.g. 'float': pixel units, as featurewise statistics are
  computed).

  A 'featurewise' op without arguments takes its statistics from
  `data.featurewise_stats` ({'mean': [C], 'std': [C]}, pixel units): the
  train loop computes them from the training data
  (`statistics.featurewise_stats_of_config`) and writes them into the run's
  config.json.
  """
  spec = data_config.get('pp', '')
  if spec:
    crop = data_config.get('crop')
    if crop and crop != pp_lib.crop_of(spec)[0]:
      spec = pp_lib.with_crop(spec, crop)  # a test source's own, an override
    _check_fields(data_config, spec)
  else:
    spec = pp_lib.from_fields(data_config)
  if values:
    return pp_lib.with_value(spec, values)
  ops = pp_lib.parse(spec)
  name, args, kwargs = ops[-1]
  if name == 'featurewise' and not args and not kwargs:
    stats = data_config.get('featurewise_stats')
    if not stats:
      raise ValueError('the featurewise op needs data.featurewise_stats '
                       "(the training images' statistics: "
                       'statistics.featurewise_stats_of_config)')
    ops[-1] = (name, (tuple(stats['mean']), tuple(stats['std'])), {})
  return pp_lib.unparse(ops)


def _check_fields(data_config, spec):
  """Raises where a field that code reads besides the pipeline (crop,
  image_size, channels, normalize, augment...) says other than `data.pp`."""
  for key, want in pp_lib.fields_of(spec).items():
    have = data_config.get(key)
    if key == 'augment' and have is not None:
      have = {k: have[k] for k in want if k in have}
      want = {k: want[k] for k in have}
    if have is not None and _plain(have) != _plain(want):
      raise ValueError(f'data.{key} is {_plain(have)!r} but data.pp {spec!r} '
                       f'makes it {_plain(want)!r}: change data.pp and the '
                       'fields together (configs.common.set_pp sets both)')


def _plain(value):
  """A config value comparable with a pp literal (lists as tuples)."""
  if hasattr(value, 'to_dict'):
    value = value.to_dict()
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return tuple(_plain(v) for v in value)
  return value


def preprocess_from_config(data_config, name='dataset', detector=None,
                           values: str = '') -> Preprocess:
  """The Preprocess of a `config.data` section (`pp_of_config`; `detector`:
  see Preprocess)."""
  try:
    spec = pp_of_config(data_config, values)
  except ValueError as e:
    raise ValueError(f'{name}: {e}') from None
  return Preprocess(spec, name=name, detector=detector)


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
