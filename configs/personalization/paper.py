"""Paper 000's personalization study at the paper's scale (for an accelerator).

  python launch/personalize.py --config=configs/personalization/paper.py \
      --workdir=/data/personal_paper

Twin Caffe AlexNets (alexnet_lrn, 227x227, one linear output unit, dropout 0.5
in the dense part) trained for 50 epochs with MSE, SGD lr 1e-3 Nesterov 0.9,
batch 16; their dense parts (fc6-fc7-out, 9216-4096-4096-1) fine-tuned per
subject of the 10 amigos_like subjects (all ~1000 frames each), 5-fold CV by
clip, all 18 fractions 5%..90%, samplers random, GSx, GSy, iGS and MCDUE (T=50,
p=0.5). Not stated by the paper, so our choices: fine-tuning and No Transfer
run 20 epochs over each model's training set with the pre-training recipe, and
the best pre-training checkpoint by validation RMSE is used.

The synthetic affectnet_like preset has 40000 train / 4000 validation records,
so "60/40" here is all of train against all of validation; a materialised real
AffectNet should be split 60/40 into those two splits.
"""
from configs.personalization import common

IMAGE_SIZE = 227


def get_config():
  model = dict(name='alexnet_lrn', dropout=0.5, head='regression')
  pre = common.pretrain_config(IMAGE_SIZE, model, records=44000, epochs=50)
  pre.data.train_records = 0   # all 40000
  pre.data.eval_records = 0    # all 4000
  pre.eval_every_steps = pre.checkpoint_every_steps = 40000 // pre.batch_size
  pre.log_every_steps = 100
  pre.data.num_threads = 16
  c = common.study_config(pre, IMAGE_SIZE)
  c.finetune.epochs = 20
  c.no_transfer.epochs = 20
  c.runtime.memory_budget_mb = 16384  # CPU only; accelerators use their memory
  c.runtime.feature_batch = 512
  c.runtime.data_threads = 16
  return c
