"""Shared checks: a source through TFDS and through the grain pipeline."""
import numpy as np

from fer_jax.data import labels
from fer_jax.data.pipeline import Preprocess, eval_dataset, train_dataset
from fer_jax.data.synthetic.source import RECORD_KEYS


def name_of(record):
  return labels.EXPRESSIONS[int(record['expression'])]


def check_record(r):
  assert tuple(r) == RECORD_KEYS
  assert r['image'].dtype == np.uint8 and r['image'].ndim == 3
  assert r['landmarks'].shape == (68, 2) and r['eyes'].shape == (2, 2)
  assert r['aus'].shape == r['au_intensity'].shape == (len(labels.AUS),)


def through_tfds(name, kwargs, tmp_path, splits):
  """Materialises the source and checks the stored records equal the source's."""
  from fer_jax.data.sources import DATASETS
  from fer_jax.data.tfds_builder import record_builder
  builder = record_builder(name, kwargs, str(tmp_path / 'tfds'), splits=splits)
  builder.download_and_prepare()
  for split in splits:
    src = DATASETS.get(name)(split=split, **kwargs)
    stored = builder.as_data_source(split)
    assert len(stored) == len(src)
    for i in range(len(src)):
      a, b = stored[i], src[i]
      for k in RECORD_KEYS:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
  return builder


def through_pipeline(source, channels=3, size=32):
  """Eval batches keep the labels in order; a train batch preprocesses."""
  pre = Preprocess(image_size=size, channels=channels, name=source.name)
  batch = eval_dataset(source, pre, global_batch=4)[0]
  n = min(4, len(source))
  np.testing.assert_array_equal(batch['expression'][:n],
                                [source[i]['expression'] for i in range(n)])
  assert batch['image'].shape == (4, size, size, channels)
  train = train_dataset(source, pre, global_batch=2, num_steps=1, seed=0)[0]
  assert train['image'].shape == (2, size, size, channels)
  return batch
