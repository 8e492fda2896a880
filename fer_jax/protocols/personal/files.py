"""The study's files and log lines: reads that survive a damaged file, and
what process 0 prints (the writes are fer_jax/atomic.py's).

A damaged file (a truncated or garbled .npz) is never used and never deleted:
it is moved aside to NAME.damaged[.N] with one warning line, and the study does
its work again (extracts the features, trains the chunk's models).
"""
import os
import zipfile
import zlib
from typing import Callable, Optional, Sequence

import numpy as np
from absl import logging

from fer_jax.train import distributed

# What reading a damaged .npz raises: a truncated or garbled zip (its CRC-32
# catches a flipped byte), a missing member, an empty or foreign file.
_DAMAGED = (zipfile.BadZipFile, zlib.error, OSError, EOFError, KeyError,
            ValueError)


def set_aside(path: str, what: str, problem: str) -> str:
  """Moves the damaged file `path` to `path`.damaged[.N] (kept for a look,
  never deleted) and says so in one warning line; returns the new name."""
  dest, n = f'{path}.damaged', 1
  while os.path.exists(dest):
    dest, n = f'{path}.damaged.{n}', n + 1
  os.replace(path, dest)
  problem = ' '.join(str(problem).split())
  logging.warning('%s is damaged (%s); moved it to %s and will %s.', path,
                  problem, dest, what)
  return dest


def read_npz(path: str, keys: Sequence[str], what: str,
             check: Optional[Callable[[dict], Optional[str]]] = None):
  """{key: array} of the .npz at `path`, every member read in full (so zip's
  checksums are verified); None if it is damaged, after moving it aside
  (`set_aside`, `what`: what the study does instead). check(arrays): a
  problem with the contents (str) or None."""
  try:
    with np.load(path) as z:
      arrays = {k: z[k] for k in keys}
    problem = check(arrays) if check is not None else None
  except _DAMAGED as e:
    problem = f'{type(e).__name__}: {e}'
  if problem is None:
    return arrays
  set_aside(path, what, problem)
  return None


def log(config, *args):
  """Prints on process 0, unless config.runtime.verbose is False."""
  if config.runtime.get('verbose', True) and distributed.is_lead():
    print(*args, flush=True)
