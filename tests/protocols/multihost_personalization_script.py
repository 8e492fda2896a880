"""The tiny personalization study of test_personalization_multihost.py, as a
config file for launch/personalize.py (the settings of
sharded_personalization_script.py's study, with 2 folds):

  python launch/personalize.py \
      --config=tests/protocols/multihost_personalization_script.py \
      --workdir=W [--config.pretrain_dir=P] [--coordinator_address=... ...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def get_config():
  from tests.conftest import tiny_config  # pylint: disable=g-import-not-at-top
  from configs.personalization import common  # pylint: disable=g-import-not-at-top
  pre = tiny_config(**{'data.eval_records': 32, 'total_steps': 20})
  pre.data.image_size = 16
  # One evaluation and checkpoint, at the end.
  pre.eval_every_steps = pre.checkpoint_every_steps = pre.log_every_steps = 20
  pre.model = dict(name='small_cnn', widths=(4,), hidden=16, dropout=0.0)
  c = common.study_config(pre, 16)
  c.joint = True
  c.personal.subjects = (0, 1)
  c.personal.frame_stride = 10
  c.folds = 2  # not the sharded test's 5: 12 heads and 4 whole nets
  c.fractions = (0.5,)
  c.samplers = ('random', 'mcdue')
  c.mcdue.passes = 3
  c.finetune.epochs = c.no_transfer.epochs = 2
  c.runtime.full_unroll = True
  c.runtime.full_segment_steps = 4
  return c
