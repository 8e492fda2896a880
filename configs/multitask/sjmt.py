"""003 comparison, sjmt (see configs/multitask/common.py; arg 'paper' etc.)."""
from configs.multitask import common


def get_config(arg=None):
  return common.get('sjmt', arg)
