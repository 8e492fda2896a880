"""Renders a dataset once into TFDS array_record files, so GPU epochs read PNGs
instead of re-rendering (or re-parsing) every record.

  python launch/materialize.py --dataset=synthetic \
      --source='{"preset": "affectnet_like", "image_size": 224}' --data_dir=/data/tfds

Then train with `--config.data.name=tfds --config.data.source=...` (see README).
A wrong dataset, preset or source argument is one line `error: ...` (status 2).
"""
import json

from absl import flags

from fer_jax import cli

flags.DEFINE_string('dataset', 'synthetic', 'Registered dataset name.')
flags.DEFINE_string('source', '{"preset": "affectnet_like"}', 'Source kwargs (JSON).')
flags.DEFINE_string('data_dir', None, 'TFDS data_dir to write into.')
flags.DEFINE_list('splits', ['train', 'validation', 'test'], 'Splits to write.')
flags.mark_flag_as_required('data_dir')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from fer_jax.data.sources import DATASETS
  from fer_jax.train.workdir import check_source
  kwargs = cli.json_flag('source', FLAGS.source)
  if FLAGS.dataset not in DATASETS:
    raise cli.UsageError(f'--dataset={FLAGS.dataset!r} is not a dataset; valid: '
                         f'{", ".join(DATASETS.names())}')
  check_source('--source', FLAGS.dataset, kwargs)  # arguments, preset, folders
  from fer_jax.data.tfds_builder import record_builder  # imports TFDS: slow
  builder = record_builder(FLAGS.dataset, kwargs, FLAGS.data_dir, splits=FLAGS.splits)
  builder.download_and_prepare()
  for split, info in builder.info.splits.items():
    print(f'{split}: {info.num_examples} records')
  print('config for training: data.name=tfds, data.source=' + json.dumps(
      {'data_dir': FLAGS.data_dir, 'dataset': FLAGS.dataset, 'source_kwargs': kwargs}))


if __name__ == '__main__':
  cli.run(main)
