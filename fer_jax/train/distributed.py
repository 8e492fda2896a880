"""Multi-process (multi-host) runs on JAX's own distributed runtime, and preemption.

    initialize(mode='auto')                         # SLURM, Cloud TPU, k8s, Open MPI
    initialize(coordinator_address='10.0.0.1:1234', num_processes=4, process_id=i)
    initialize()                                    # one process: does nothing

Every process runs the same program (`launch/train.py`); after `initialize`,
`jax.devices()` lists the devices of all processes, `jax.process_index()` tells
them apart, and the loop's data mesh spans them all. Call it before anything
touches a JAX backend.

`is_lead`, `from_lead` and `barrier` are what a multi-process job beside the
train loop needs (the personalization study): which process writes the files,
process 0's value of a host array on every process, and a meeting point.

`Preemption` is the loop's stop signal: on SIGTERM every process agrees on one
step, saves there and stops. With the distributed runtime this is JAX's
preemption sync point (`multihost_utils.reached_preemption_sync_point`: the
runtime catches SIGTERM on any process, collects every process's step and picks
the next one); in a single process without it, a plain SIGTERM handler.
"""
import os
import signal
import threading
from typing import Optional

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

MODES = ('none', 'auto', 'explicit')


class Preempted(Exception):
  """Raised by the loop after it saved a checkpoint because of a preemption."""

  def __init__(self, step: int):
    super().__init__(f'Preempted: saved a checkpoint at step {step} and stopped. '
                     'Run the same command again to resume.')
    self.step = step


def _on_cpu(platforms: Optional[str]) -> bool:
  """True unless JAX_PLATFORMS names only non-CPU platforms."""
  names = [p.strip() for p in (platforms or '').split(',') if p.strip()]
  return not names or 'cpu' in names


def define_flags():
  """The launchers' flags for JAX's distributed runtime (launch/train.py and
  launch/personalize.py take the same); read them with `initialize_from_flags`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_enum('distributed', 'none', ['none', 'auto', 'explicit'],
                    'Start JAX\'s distributed runtime: none (one process; '
                    'implied explicit if --coordinator_address is set), auto '
                    '(detect SLURM / Cloud TPU / k8s / Open MPI), explicit.')
  flags.DEFINE_string('coordinator_address', None,
                      'host:port of process 0\'s coordinator (all processes).')
  flags.DEFINE_integer('num_processes', None, 'Number of processes.')
  flags.DEFINE_integer('process_id', None,
                       'This process\'s id, 0..num_processes-1.')


def initialize_from_flags(flag_values) -> bool:
  """`initialize` with the flags of `define_flags`."""
  return initialize(flag_values.distributed, flag_values.coordinator_address,
                    flag_values.num_processes, flag_values.process_id)


def initialize(mode: str = 'none', coordinator_address: Optional[str] = None,
               num_processes: Optional[int] = None, process_id: Optional[int] = None,
               platforms: Optional[str] = None, initialize_fn=None) -> bool:
  """Starts JAX's distributed runtime as asked; returns whether it was started.

  mode: 'none' (one process, unless coordinator_address is given, which means
    'explicit'), 'auto' (JAX detects the cluster: SLURM, Cloud TPU, k8s,
    Open MPI; any of the three explicit values given fill in or override what it
    finds) or 'explicit' (all of coordinator_address, num_processes, process_id).
  platforms: the JAX_PLATFORMS value (default: the environment's). On CPU the
    processes need a cross-process collectives library: gloo.
  initialize_fn: stands in for `jax.distributed.initialize` (tests).
  """
  mode = (mode or 'none').lower()
  if mode not in MODES:
    raise ValueError(f'distributed mode {mode!r}; valid: {", ".join(MODES)}')
  if mode == 'none' and coordinator_address:
    mode = 'explicit'
  if mode == 'none':
    if num_processes not in (None, 1) or process_id not in (None, 0):
      raise ValueError('num_processes / process_id need --coordinator_address '
                       '(or --distributed=auto)')
    return False
  if mode == 'explicit':
    missing = [n for n, v in (('coordinator_address', coordinator_address),
                              ('num_processes', num_processes),
                              ('process_id', process_id)) if v is None]
    if missing:
      raise ValueError(f'explicit multi-process start needs {", ".join(missing)}')
  if platforms is None:
    platforms = os.environ.get('JAX_PLATFORMS', '')
  if _on_cpu(platforms):
    # Collectives between CPU processes (gloo is built into jaxlib).
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  kwargs = {k: v for k, v in (('coordinator_address', coordinator_address),
                              ('num_processes', num_processes),
                              ('process_id', process_id)) if v is not None}
  (initialize_fn or jax.distributed.initialize)(**kwargs)
  return True


def is_lead() -> bool:
  """Whether this process writes the shared files (process 0)."""
  return jax.process_index() == 0


def from_lead(tree):
  """Process 0's value of a tree of numpy arrays (the same shapes on every
  process), on every process; a collective: all must call it together."""
  if jax.process_count() == 1:
    return tree
  def enc(a):  # psum underneath: no bools
    a = np.asarray(a)
    return a.astype(np.int32) if a.dtype == bool else a
  out = multihost_utils.broadcast_one_to_all(jax.tree.map(enc, tree))
  return jax.tree.map(lambda o, a: np.asarray(o).astype(np.asarray(a).dtype),
                      out, tree)


def barrier(name: str):
  """Every process waits here until all have come (no-op in one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


class Preemption:
  """`reached(step)`, called by every process after every step, is True at the
  one step where all of them must save and stop after a SIGTERM.

  With the distributed runtime and its preemption service (on by default), this
  is JAX's preemption sync point: the runtime's own SIGTERM handler notifies
  every process, they exchange the steps they reached and pick the next one.
  The loop must be the only caller of the sync point and call it at every
  step (see checkpoint.py: Orbax's own calls are turned off). Otherwise, in a
  single process, a SIGTERM handler that sets a flag. Several processes without
  the preemption service cannot agree on a step: SIGTERM keeps its default.

  A context manager: the handler it installs is removed on exit.
  """

  def __init__(self):
    self._flag = threading.Event()
    self._previous = None
    self.sync = False

  def __enter__(self):
    if jax.distributed.is_initialized():
      self.sync = bool(jax.config.jax_enable_preemption_service)
      if self.sync or jax.process_count() > 1:
        if not self.sync:
          logging.warning('The JAX preemption service is off '
                          '(jax_enable_preemption_service): SIGTERM ends the '
                          'run without a checkpoint.')
        return self
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handler)
    except ValueError:  # not the main thread: leave signals alone
      self._previous = None
    return self

  def _handler(self, signum, frame):
    if self._flag.is_set():  # a second SIGTERM: the previous handler's way
      previous, self._previous = self._previous, None
      signal.signal(signal.SIGTERM, previous)
      if callable(previous):
        previous(signum, frame)
      elif previous == signal.SIG_DFL:
        os.kill(os.getpid(), signal.SIGTERM)
      return
    self._flag.set()

  def reached(self, step: int) -> bool:
    if self.sync:
      return bool(multihost_utils.reached_preemption_sync_point(int(step)))
    return self._flag.is_set()

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None
    return False
