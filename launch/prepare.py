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
import collections
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


def histogram(source):
  from fer_jax.data import labels
  names = labels.EXPRESSIONS + ('contempt',)
  counts = collections.Counter()
  for e in source.entries:
    k = e.get('expression', -1)
    counts[names[k] if k >= 0 else 'none'] += 1
  return dict(sorted(counts.items()))


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
  from tqdm import tqdm
  from fer_jax.data.adapters.base import unreadable_images
  from fer_jax.data.adapters.shared import AdapterError
  from fer_jax.data.sources import DATASETS
  from fer_jax.train.workdir import check_source
  if FLAGS.skip_bad:
    kwargs['skip_bad'] = True
  check_source('--source', FLAGS.dataset, kwargs)  # unknown arguments
  # AdapterError / LayoutError: one line naming the file (fer_jax.cli).
  try:
    sources = {s: DATASETS.get(FLAGS.dataset)(split=s, **kwargs) for s in FLAGS.splits}
  except (ValueError, TypeError) as e:  # an argument the adapter refuses
    if isinstance(e, AdapterError):
      raise
    raise cli.UsageError(f'{FLAGS.dataset} --source={FLAGS.source}: {e}') from None
  if not FLAGS.skip_bad:  # with skip_bad the adapters decode-check (skipped)
    for split, src in sources.items():
      bad = unreadable_images(src)
      if bad:
        more = f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''
        raise AdapterError(f'{split}: {bad[0]}{more}; nothing written. Pass '
                           '--skip_bad to skip and count unreadable images.')
  for split, src in sources.items():
    print(f'{split}: {len(src)} records, labels {histogram(src)}, '
          f'dropped {src.dropped}, skipped {len(src.skipped)}')
    for line in src.skipped[:20]:
      print(f'  skipped {line}')
  splits = [s for s, src in sources.items() if len(src)]
  if not splits:
    raise cli.UsageError(f'every split of {FLAGS.dataset} in {FLAGS.manual_dir} '
                         'is empty')
  from fer_jax.data.tfds_builder import record_builder  # imports TFDS: slow
  builder = record_builder(FLAGS.dataset, kwargs, FLAGS.data_dir, splits=splits)
  total = sum(len(sources[s]) for s in splits)
  gen = builder._generate_examples  # noqa: SLF001: wrapped only to show progress
  bar = tqdm(total=total, desc=f'writing {FLAGS.dataset}', unit='img')

  def with_progress(split):
    for item in gen(split):
      bar.update(1)
      yield item
  builder._generate_examples = with_progress  # noqa: SLF001
  builder.download_and_prepare()
  bar.close()
  for split, info in builder.info.splits.items():
    print(f'{split}: {info.num_examples} records written')
  print('config for training: data.name=tfds, data.source=' + json.dumps(
      {'data_dir': FLAGS.data_dir, 'dataset': FLAGS.dataset, 'source_kwargs': kwargs}))


if __name__ == '__main__':
  cli.run(main)
