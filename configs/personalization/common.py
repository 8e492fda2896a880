"""The personalization study of paper 000: fields shared by its configs.

`run_study` (fer_jax/protocols/personal/study.py) reads:
  targets, joint      twin single-output nets (the paper) or one 2-output net
  pretrain            a full training config (configs/common.py) for the
                      AffectNet-like data; its task.targets is set per net
  pretrain_dir        '' = <workdir>/pretrain; or nets to reuse
  pretrain_checkpoint 'best' (by validation RMSE) or 'latest'
  personal            the personal dataset (a `config.data`-like section) and
                      which subjects / every how many frames to keep
  folds, fold_by      k-fold CV per subject, grouped by 'clip' (or 'frames')
  conditions          which of no_transfer, transfer_0, transfer_100 to run
  samplers, fractions the training-size sweep (empty: no sweep)
  mcdue               T dropout passes at rate p
  finetune            dense part on cached features: batch, epochs, optimiser
                      and (optional) schedule: constant or exponential,
                      counted in each model's steps
  no_transfer         the whole net from scratch on the subject's frames
  runtime             knobs that do not change results (not part of the
                      workdir's config check): memory budget, chunking, ...
"""
import ml_collections

from configs import common

CONDITIONS = ('no_transfer', 'transfer_0', 'transfer_100')
SAMPLERS = ('random', 'gsx', 'gsy', 'igs', 'mcdue')
ALL_FRACTIONS = tuple(round(0.05 * i, 2) for i in range(1, 19))  # 5%..90%


def paper_sgd():
  """000: SGD, lr 1e-3, Nesterov momentum 0.9, batch 16."""
  return dict(name='sgd', learning_rate=1e-3, momentum=0.9, nesterov=True)


def pretrain_config(image_size: int, model: dict, records: int, epochs: int):
  """AffectNet-like VA regression with the paper's recipe; a 60/40 split of
  `records` records (train from the preset's train split, validation from its
  validation split: both are disjoint draws of the same distribution)."""
  c = common.base_config()
  c.data.source = dict(preset='affectnet_like', seed=0, image_size=image_size)
  # The study preprocesses the personal frames with it too (in eval mode).
  common.set_pp(c, f'rgb|resize({image_size})|unit')
  c.data.train_records = int(0.6 * records)
  c.data.eval_records = records - int(0.6 * records)
  c.model = model
  c.task.targets = ('valence',)  # set per net by the study
  c.batch_size = 16
  c.num_epochs = epochs
  c.total_steps = 0
  steps_per_epoch = max(c.data.train_records // c.batch_size, 1)
  c.eval_every_steps = steps_per_epoch
  c.checkpoint_every_steps = steps_per_epoch
  c.log_every_steps = max(steps_per_epoch // 4, 1)
  c.optim = paper_sgd()
  c.schedule = dict(name='constant')
  c.progress = False
  return c


def study_config(pretrain: ml_collections.ConfigDict, image_size: int
                 ) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.targets = ('valence', 'arousal')
  c.joint = False
  c.pretrain = pretrain
  c.pretrain_dir = ''
  c.pretrain_checkpoint = 'best'
  c.personal = dict(
      name='synthetic', split='train', subjects=(), frame_stride=1,
      source=dict(preset='amigos_like', seed=0, image_size=image_size))
  c.folds = 5
  c.fold_by = 'clip'
  c.conditions = CONDITIONS
  c.samplers = SAMPLERS
  c.fractions = ALL_FRACTIONS
  c.mcdue = dict(passes=50, rate=0.5)
  # The paper does not say how long it fine-tunes; epochs over each model's
  # own training set (an epoch = ceil(n / batch) steps).
  # dtype 'bfloat16': the dense parts train in bf16 (half the memory traffic).
  c.finetune = dict(batch_size=16, epochs=10, optim=paper_sgd(),
                    dtype='float32')
  c.no_transfer = dict(batch_size=16, epochs=10, optim=paper_sgd())
  # Per kind of model (head: dense parts; full: No Transfer's whole nets):
  # *_max_models_per_chunk caps a chunk (0: as many as the budget allows);
  # *_map_batch 0 vmaps a whole chunk, k > 0 maps over its models k at a time
  # inside the jitted call; *_unroll unrolls the scan over a segment's
  # *_segment_steps steps (XLA:CPU runs convs in loops slowly).
  # shard_models: with several devices (of one process, or of all processes of
  # a multi-host run, launch/personalize.py --coordinator_address / --distributed)
  # split every chunk's models over all of them; chunks are then sized by their
  # memory together and a multiple of their count. memory_budget_mb is per
  # device, used where a device reports no memory limit (CPU).
  c.runtime = dict(memory_budget_mb=1024, max_models_per_chunk=0,
                   head_max_models_per_chunk=0, full_max_models_per_chunk=0,
                   segment_steps=25, feature_batch=256, data_threads=2,
                   head_map_batch=0, full_map_batch=0, full_unroll=False,
                   full_segment_steps=25, shard_models=True, verbose=True)
  return c
