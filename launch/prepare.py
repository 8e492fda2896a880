"""Builds a real dataset (read from its download) as TFDS array_record files.

  python launch/prepare.py --dataset=fer2013 --manual_dir=/data/fer2013 \
      --data_dir=/data/tfds [--source='{"image_size": 64}'] [--skip_bad]

Prints each split's size, label histogram, and skipped / dropped counts; a wrong
manual_dir says which expected file is missing and what the layout should be.
Every image file is decoded once before anything is written: a corrupt one is
refused with its path (or skipped and counted with --skip_bad). Mistakes are
one line `error: ...` and exit status 2. Then train with data.name=tfds and the
printed data.source.
"""
import json
import os

from absl import flags

from fer_jax import cli

flags.DEFINE_string('dataset', None, 'Registered dataset name (e.g. fer2013).')
flags.DEFINE_string('manual_dir', None, 'Folder of the dataset as downloaded.')
flags.DEFINE_string('data_dir', None, 'TFDS data_dir to write into.')
flags.DEFINE_string('source', '{}', 'Extra source kwargs (JSON).')
flags.DEFINE_bool('skip_bad', False, 'Skip (and count) bad rows/images.')
flags.DEFINE_list('splits', ['train', 'validation', 'test'], 'Splits to write.')
flags.mark_flags_as_required(['dataset', 'manual_dir', 'data_dir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from fer_jax.data.adapters import ADAPTERS  # light: names only
  if FLAGS.dataset not in ADAPTERS:
    raise cli.UsageError(f'--dataset={FLAGS.dataset!r} is not a real dataset; '
                         f'valid: {", ".join(sorted(ADAPTERS))}')
  if not os.path.isdir(FLAGS.manual_dir):
    raise cli.UsageError(f'--manual_dir={FLAGS.manual_dir!r} is not a folder')
  kwargs = dict(cli.json_flag('source', FLAGS.source),
                manual_dir=os.path.abspath(FLAGS.manual_dir))
  if FLAGS.skip_bad:
    kwargs['skip_bad'] = True
  from fer_jax.data import prepare
  from fer_jax.train.workdir import check_source
  check_source('--source', FLAGS.dataset, kwargs)  # unknown arguments
  sources = prepare.open_splits(FLAGS.dataset, kwargs, FLAGS.splits)
  print('\n'.join(prepare.summary(sources)))
  data_source, written = prepare.write(FLAGS.dataset, kwargs, FLAGS.data_dir,
                                       sources)
  for split, count in written.items():
    print(f'{split}: {count} records written')
  print('config for training: data.name=tfds, data.source='
        + json.dumps(data_source))


if __name__ == '__main__':
  cli.run(main)
