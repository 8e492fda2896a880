"""003 Table 4, sjmt_compound (see configs/multitask/common.py; arg 'paper' etc.)."""
from configs.multitask import common


def get_config(arg=None):
  return common.get('sjmt_compound', arg)
