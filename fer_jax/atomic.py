"""Atomic file writes: a reader sees the old file or the new one, never half.

Each writer writes a temporary file in the destination's folder (a rename is
atomic only within one file system), fsyncs it, renames it over the
destination with `os.replace` and fsyncs the folder, so a crash or a kill -9
leaves the old file or the new one. A leaf module: it imports nothing of
fer_jax, so every layer may use it.
"""
import csv
import io
import json
import os
import threading
from typing import Iterable, Mapping, Sequence

import numpy as np


def _fsync_dir(folder: str):
  fd = os.open(folder, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


def _write(path: str, write_fn, mode: str = 'wb', **open_kwargs):
  """write_fn(f) to a temporary file next to `path`, then renamed over it."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  # One name per process and thread: concurrent writers never share a file.
  tmp = f'{path}.tmp{os.getpid()}.{threading.get_ident()}'
  try:
    with open(tmp, mode, **open_kwargs) as f:
      write_fn(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  _fsync_dir(folder)


def write_bytes(path: str, data: bytes):
  _write(path, lambda f: f.write(data))


def write_text(path: str, text: str):
  _write(path, lambda f: f.write(text), 'w')


def write_json(path: str, obj, **dump_kwargs):
  """`obj` as JSON; dump_kwargs go to json.dump (indent, sort_keys, default)."""
  _write(path, lambda f: json.dump(obj, f, **dump_kwargs), 'w')


def write_csv(path: str, rows: Iterable[Mapping], columns: Sequence[str]):
  """The dicts `rows` as CSV with the header `columns` (keys not in it are
  left out; csv's default line ends)."""
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=columns, extrasaction='ignore')
  w.writeheader()
  w.writerows(rows)
  write_text(path, buf.getvalue())


def savez(path: str, **arrays):
  """np.savez of `arrays` to `path` (give it the .npz suffix)."""
  _write(path, lambda f: np.savez(f, **arrays))
