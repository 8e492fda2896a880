"""The types every adapter module shares: its errors and a video frame entry.

A leaf module: `base` (records) and `video` (frame reading) both import it.
"""
from typing import NamedTuple

from fer_jax.data.pipeline import BadRecordError


class VideoFrame(NamedTuple):
  """An entry's image that is frame `index` (0-based) of the video at `path`."""
  path: str
  index: int


class AdapterError(BadRecordError):
  """Bad input of a real dataset; the message names the file and line."""


class LayoutError(FileNotFoundError):
  """manual_dir does not hold the layout the adapter expects."""
