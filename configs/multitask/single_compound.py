"""003 Table 4, single_compound (see configs/multitask/common.py; arg 'paper' etc.)."""
from configs.multitask import common


def get_config(arg=None):
  return common.get('single_compound', arg)
