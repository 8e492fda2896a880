"""The training data of a config, one source or a mixture: one entry point.

    data = build_train(config.data, union_labels=task.union_labels,
                       targets=task.targets)
    steps_per_epoch = pipeline.steps_per_epoch(data.num_records, batch_size)
    ds = data.dataset(preprocess, batch_size, total_steps, seed, index, count)

The train loop needs no more than this: how many records an epoch holds and
the batched MapDataset of this process (`pipeline.train_dataset` of the one
train source, or `mixing.train_mixture` of `config.data.mixture`).
"""
import dataclasses
from typing import Any, Optional, Sequence

from fer_jax.data import mixing
from fer_jax.data import pipeline
from fer_jax.data import sources


@dataclasses.dataclass(frozen=True)
class TrainData:
  """num_records: the records of one epoch; source: the one train source
  (None for a mixture); union_labels: whether examples carry the union label
  space (`labels`, `label_mask`) as well as the canonical label fields."""
  data_config: Any
  num_records: int
  source: Optional[Any]
  union_labels: bool

  def dataset(self, preprocess, global_batch: int, num_steps: int, seed: int,
              process_index: int = 0, process_count: int = 1):
    if self.source is None:
      return mixing.train_mixture(self.data_config, preprocess, global_batch,
                                  num_steps, seed, process_index, process_count,
                                  union_labels=self.union_labels)
    return pipeline.train_dataset(self.source, preprocess, global_batch, num_steps,
                                  seed, process_index, process_count)


def build_train(data_config, union_labels: bool = True,
                targets: Sequence[str] = ()) -> TrainData:
  """The training data of a `config.data` section: `data.mixture` when set,
  else `data.train_split` of its source (capped by `data.train_records`).

  A task without union labels (the 'affect' task) reads the canonical label
  fields: every mixture entry must then annotate one of its `targets`.
  """
  if data_config.get('mixture'):
    if not union_labels:
      mixing.check_task_groups(data_config, targets)
    return TrainData(data_config, mixing.mixture_num_records(data_config), None,
                     union_labels)
  source = pipeline.limit(sources.get_source(data_config, data_config.train_split),
                          data_config.get('train_records', 0))
  return TrainData(data_config, len(source), source, union_labels)
