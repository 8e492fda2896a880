"""A config small enough for subprocess tests (a few seconds of training)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from tests.conftest import tiny_config  # noqa: E402


def get_config():
  c = tiny_config()
  c.data.eval_records = 64
  return c
