"""A real dataset's download, checked and written as TFDS array_record files.

    sources = open_splits('fer2013', {'manual_dir': '/data/fer2013'}, splits)
    print('\n'.join(summary(sources)))
    data_source, written = write('fer2013', kwargs, '/data/tfds', sources)

`open_splits` reads every split and decodes every image file once before
anything is written, so a corrupt file is refused with its path (or, with
`skip_bad`, skipped by the adapter and counted). `write` then builds the
array_record files (data/tfds_builder) with a progress bar and returns the
`data.source` that reads them back under `data.name='tfds'`.
"""
import collections
from typing import Dict, List, Sequence

from fer_jax.data import labels
from fer_jax.data.adapters.base import unreadable_images
from fer_jax.data.adapters.shared import AdapterError
from fer_jax.data.sources import DATASETS


class SourceArgumentError(ValueError):
  """An argument the dataset's adapter refuses (a usage mistake)."""


def open_splits(dataset: str, source_kwargs: dict, splits: Sequence[str]):
  """{split: source}; refuses (AdapterError, naming the file) any split with an
  image that does not decode, unless the adapter skips them (`skip_bad`)."""
  try:
    sources = {s: DATASETS.get(dataset)(split=s, **source_kwargs) for s in splits}
  except (ValueError, TypeError) as e:
    if isinstance(e, AdapterError):  # names the file and the record
      raise
    raise SourceArgumentError(f'{dataset} {source_kwargs}: {e}') from None
  if not source_kwargs.get('skip_bad'):  # with skip_bad the adapters check
    for split, src in sources.items():
      bad = unreadable_images(src)
      if bad:
        more = f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''
        raise AdapterError(f'{split}: {bad[0]}{more}; nothing written. Pass '
                           '--skip_bad to skip and count unreadable images.')
  return sources


def histogram(source) -> Dict[str, int]:
  """Records per expression name ('none' for records without one)."""
  names = labels.EXPRESSIONS + ('contempt',)
  counts = collections.Counter()
  for e in source.entries:
    k = e.get('expression', -1)
    counts[names[k] if k >= 0 else 'none'] += 1
  return dict(sorted(counts.items()))


def summary(sources) -> List[str]:
  """Each split's size, label histogram, dropped and skipped records."""
  lines = []
  for split, src in sources.items():
    lines.append(f'{split}: {len(src)} records, labels {histogram(src)}, '
                 f'dropped {src.dropped}, skipped {len(src.skipped)}')
    lines += [f'  skipped {line}' for line in src.skipped[:20]]
  return lines


def write(dataset: str, source_kwargs: dict, data_dir: str, sources,
          progress: bool = True):
  """Writes the non-empty splits. Returns the `data.source` of `tfds` that
  reads them back, and {split: records written} as TFDS counted them."""
  splits = [s for s, src in sources.items() if len(src)]
  if not splits:
    raise SourceArgumentError(f'every split of {dataset} {source_kwargs} is empty')
  from fer_jax.data.tfds_builder import record_builder  # imports TFDS: slow
  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=sum(len(sources[s]) for s in splits),
               desc=f'writing {dataset}', unit='img')
  builder = record_builder(dataset, source_kwargs, data_dir, splits=splits,
                           on_record=bar.update if bar else None)
  builder.download_and_prepare()
  if bar:
    bar.close()
  written = {s: info.num_examples for s, info in builder.info.splits.items()}
  return {'data_dir': data_dir, 'dataset': dataset,
          'source_kwargs': source_kwargs}, written
