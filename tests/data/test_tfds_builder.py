"""A materialised TFDS array_record dataset gives back the source's records."""
import numpy as np

from fer_jax.data.sources import get_source
from fer_jax.data.synthetic import SyntheticSource
import ml_collections


def test_tfds_array_record_equals_the_synthetic_source(tmp_path):
  from fer_jax.data.tfds_builder import record_builder
  kwargs = {'preset': 'sfew_like', 'image_size': 32}
  builder = record_builder('synthetic', kwargs, str(tmp_path), splits=('test',))
  builder.download_and_prepare()
  assert list(builder.info.splits) == ['test']
  files = list(tmp_path.rglob('*array_record*'))
  assert files, 'no array_record files written'

  cfg = ml_collections.ConfigDict({'name': 'tfds', 'source': {
      'data_dir': str(tmp_path), 'dataset': 'synthetic', 'source_kwargs': kwargs}})
  stored = get_source(cfg, 'test')
  src = SyntheticSource('sfew_like', 'test', image_size=32)
  assert len(stored) == len(src) == 372
  for i in (0, 5, 371):
    a, b = stored[i], src[i]
    assert set(a) == set(b)
    for k in b:
      np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_reading_an_unmaterialised_dataset_says_what_to_run(tmp_path):
  import pytest
  cfg = ml_collections.ConfigDict({'name': 'tfds', 'source': {
      'data_dir': str(tmp_path), 'dataset': 'synthetic',
      'source_kwargs': {'preset': 'sfew_like'}}})
  with pytest.raises(FileNotFoundError, match='launch/materialize.py'):
    get_source(cfg, 'train')
