"""Materialise any fer_jax source as a TFDS dataset in array_record format.

    builder = record_builder('synthetic', {'preset': 'sfew_like'}, data_dir=...)
    builder.download_and_prepare()
    source = builder.as_data_source('train')   # random access, no TensorFlow

Images are stored as PNG bytes (TFDS needs no TensorFlow to encode those), so a
preset rendered once is read back by GPU epochs without re-rendering; the records
read back equal the source's records field by field. `data.name='tfds'` reads
them back (`tfds_source`, registered here in the dataset registry).
"""
import hashlib
import json

import cv2
import numpy as np
import tensorflow_datasets as tfds

from fer_jax.data.sources import DATASETS

_SCALARS = {'valence': np.float32, 'arousal': np.float32, 'expression': np.int32,
            'compound': np.int32, 'subject': np.int32, 'domain': np.int32,
            'clip': np.int32, 'frame': np.int32, 'index': np.int32,
            'has_va': np.bool_, 'has_expression': np.bool_, 'has_aus': np.bool_,
            'has_compound': np.bool_}


def _features(example):
  """TFDS features shaped like one record of the source."""
  feats = {}
  for key, value in example.items():
    value = np.asarray(value)
    if key == 'image':
      feats[key] = tfds.features.Image(shape=value.shape, dtype=np.uint8,
                                       encoding_format='png')
    elif key in _SCALARS:
      feats[key] = tfds.features.Scalar(dtype=_SCALARS[key])
    else:
      feats[key] = tfds.features.Tensor(shape=value.shape, dtype=value.dtype)
  return tfds.features.FeaturesDict(feats)


class FerRecords(tfds.core.GeneratorBasedBuilder):
  """One fer_jax source (dataset name + kwargs) as a TFDS array_record dataset."""

  VERSION = tfds.core.Version('1.0.0')

  def __init__(self, *, dataset: str, source_kwargs: dict,
               splits=('train', 'validation', 'test'), on_record=None,
               **kwargs):
    self._dataset = dataset
    self._on_record = on_record  # called after each record (a progress bar)
    self._kwargs = dict(source_kwargs)
    self._splits = tuple(splits)
    key = json.dumps([dataset, self._kwargs], sort_keys=True, default=str)
    name = f'{dataset}_{hashlib.sha1(key.encode()).hexdigest()[:10]}'
    super().__init__(config=tfds.core.BuilderConfig(name=name, description=key),
                     file_format='array_record', **kwargs)

  def _source(self, split):
    return DATASETS.get(self._dataset)(split=split, **self._kwargs)

  def _info(self):
    first = self._source(self._splits[0])[0]
    # disable_shuffling keeps record i at position i, as in the source.
    return tfds.core.DatasetInfo(builder=self, features=_features(first),
                                 disable_shuffling=True,
                                 description=f'fer_jax {self._dataset} {self._kwargs}')

  def _split_generators(self, dl_manager):
    return {s: self._generate_examples(s) for s in self._splits
            if len(self._source(s))}

  def _generate_examples(self, split):
    source = self._source(split)
    for i in range(len(source)):
      record = {k: np.asarray(v) for k, v in source[i].items()}
      record['image'] = _png(record['image'])
      yield i, record
      if self._on_record:
        self._on_record(1)


def _png(image: np.ndarray) -> bytes:
  """Lossless PNG bytes: TFDS encodes those without TensorFlow (numpy it can't)."""
  bgr = image[..., ::-1] if image.shape[-1] == 3 else image
  ok, buf = cv2.imencode('.png', np.ascontiguousarray(bgr))
  if not ok:
    raise ValueError(f'could not PNG-encode an image of shape {image.shape}')
  return buf.tobytes()


def record_builder(dataset: str, source_kwargs: dict, data_dir: str, **kwargs):
  return FerRecords(dataset=dataset, source_kwargs=source_kwargs,
                    data_dir=data_dir, **kwargs)


@DATASETS.register('tfds')
def tfds_source(split: str, data_dir: str, dataset: str, source_kwargs: dict):
  """Reads a source materialised by `launch/materialize.py` (array_record)."""
  builder = record_builder(dataset, dict(source_kwargs), data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(
        f'No materialised {dataset} {dict(source_kwargs)} under {data_dir}; run '
        f'launch/materialize.py --dataset={dataset} first.')
  return builder.as_data_source(split)
