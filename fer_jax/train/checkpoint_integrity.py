"""Whether a checkpoint is the state that was saved, and what to do when not.

A finished checkpoint can still be damaged later (a truncated or deleted file,
flipped bytes: OCDBT chunks carry no checksum). So every save records a
fingerprint of the state (the sum of its bits as uint32 words) in the step's
metadata and refuses a non-finite state; every restore checks both (`verify`).
A checkpoint that fails is named in one warning line, moved aside to
`STEP.damaged-<time>` (`move_aside`: outside Orbax's step names, so nothing
deletes it) and the next older one is tried.
"""
import json
import re
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from jax.experimental import multihost_utils


class NonFiniteError(ValueError):
  """A non-finite training loss or state: the run stops and saves nothing."""


class DamagedCheckpointError(ValueError):
  """A checkpoint that does not restore, or restores other values than saved."""


def warn(message: str):
  if jax.process_index() == 0:
    print(f'warning: {message}', file=sys.stderr, flush=True)


# ---- fingerprints: the same number from device arrays and from numpy.

def _words(x):
  """The bits of each element as one uint32 (of a wider one, its low 32)."""
  x = jnp.asarray(x)
  if x.dtype == jnp.bool_:
    x = x.astype(jnp.uint8)
  bits = jax.lax.bitcast_convert_type(x, jnp.dtype(f'uint{8 * x.dtype.itemsize}'))
  return bits.astype(jnp.uint32)


@jax.jit
def _summary(tree):
  """(fingerprint, all finite) of a tree of arrays, on device: one pass over
  the state, pulled to the host as two scalars."""
  leaves = jax.tree.leaves(tree)
  fp = jnp.zeros((), jnp.uint32)
  finite = jnp.ones((), bool)
  for x in leaves:
    fp = fp + jnp.sum(_words(x), dtype=jnp.uint32)  # wraps modulo 2**32
    if jnp.issubdtype(x.dtype, jnp.inexact):
      finite = finite & jnp.all(jnp.isfinite(x))
  return fp, finite


def state_summary(tree):
  """(fingerprint as an int, all finite) of a state of device arrays."""
  fp, finite = jax.device_get(_summary(tree))
  return int(fp), bool(finite)


def numpy_summary(tree):
  """`state_summary` of a tree of numpy arrays (a restored checkpoint)."""
  fp, finite = 0, True
  for x in jax.tree.leaves(tree):
    x = np.ascontiguousarray(x)
    if x.dtype == np.bool_:
      x = x.astype(np.uint8)
    words = x.view(f'uint{8 * x.dtype.itemsize}').astype(np.uint32)
    fp = (fp + int(np.sum(words, dtype=np.uint32))) % 2**32
    if jnp.issubdtype(x.dtype, jnp.inexact):  # also bfloat16, unlike np's
      finite = finite and bool(np.isfinite(x).all())
  return fp, finite


def _saved_fingerprint(step_dir: str) -> Optional[int]:
  """The fingerprint recorded at save; None for a checkpoint written without
  one (or whose step metadata is gone: its arrays are still checked)."""
  try:
    meta = json.loads((epath.Path(step_dir) / '_CHECKPOINT_METADATA').read_text())
    fp = (meta.get('custom_metadata') or {}).get('fingerprint')
  except (OSError, ValueError, AttributeError):
    return None
  return None if fp is None else int(fp)


def verify(step_dir: str, summary):
  """DamagedCheckpointError unless `summary` ((fingerprint, finite) of what
  restored from `step_dir`) is finite and matches the saved fingerprint."""
  fp, finite = summary
  if not finite:
    raise DamagedCheckpointError(f'{step_dir} holds non-finite values')
  saved = _saved_fingerprint(step_dir)
  if saved is not None and saved != fp:
    raise DamagedCheckpointError(
        f'{step_dir} restores other values than were saved (fingerprint '
        f'{fp:#010x}, saved {saved:#010x})')


# ---- a failed restore: one line why, the processes agreeing, moving it aside.

# TensorStore errors run over many lines; their status line says what failed.
_STATUS = re.compile(r'\b(NOT_FOUND|DATA_LOSS|FAILED_PRECONDITION|INVALID_ARGUMENT|'
                     r'OUT_OF_RANGE|UNAVAILABLE|INTERNAL|UNKNOWN): [^\n]*')


def reason(e: BaseException) -> str:
  """One short line saying why a restore failed."""
  messages, seen = [], set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    messages.append(f'{type(e).__name__}: {e}')
    e = e.__cause__ or e.__context__
  hit = next((m for m in map(_STATUS.search, messages) if m), None)
  line = hit.group(0) if hit else next(
      (l for m in messages for l in m.splitlines() if l.strip()), 'unknown error')
  line = re.sub(r'\s*\[source locations=.*?\]|\s*\[tensorstore_spec.*', '', line)
  line = re.sub(r'\s+', ' ', line).strip()
  return line if len(line) <= 240 else line[:237] + '...'


def quiet_closed_loop():
  """After a failed restore, TensorStore's late callbacks meet the event loop
  Orbax has closed; Python would print each as an 'Exception ignored'
  traceback. Drops those (only those) from then on."""
  previous = sys.unraisablehook
  if getattr(previous, 'quiet_closed_loop', False):
    return

  def hook(unraisable):
    if not (isinstance(unraisable.exc_value, RuntimeError)
            and str(unraisable.exc_value) == 'Event loop is closed'):
      previous(unraisable)
  hook.quiet_closed_loop = True
  sys.unraisablehook = hook


def all_processes(ok: bool) -> bool:
  """Whether `ok` holds on every process (each must restore its shards)."""
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def move_aside(step_dir: str) -> str:
  """Renames a damaged step folder out of Orbax's step names; returns the new
  path. Kept, not deleted: it may still be worth a look."""
  dest = f'{step_dir}.damaged-{time.strftime("%Y%m%dT%H%M%S")}'
  if jax.process_index() == 0:
    epath.Path(step_dir).rename(dest)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f'move_aside:{step_dir}')
  return dest

