"""003 comparison, single_expression (see configs/multitask/common.py; arg 'paper' etc.)."""
from configs.multitask import common


def get_config(arg=None):
  return common.get('single_expression', arg)
