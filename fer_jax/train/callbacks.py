"""Callbacks run after every evaluation: early stopping and reduce-on-plateau.

Configured by `config.callbacks` (absent or empty: no callbacks, the loop
behaves exactly as without them):

  config.callbacks.unit = 'evaluation'  # or 'epoch': what patience and
                                        # cooldown count (see below)
  config.callbacks.early_stopping = dict(
      monitor='',          # '' = config.best_metric (the task's primary metric)
      mode='',             # '' = config.best_mode
      patience=5,          # units without improvement before stopping
      min_delta=0.0,       # an improvement must beat the best by more than this
      restore_best=True)   # the final state (results.json) = best checkpoint
  config.callbacks.reduce_on_plateau = dict(
      monitor='', mode='', patience=3, min_delta=0.0,
      factor=0.1,          # lr_scale *= factor on a plateau
      cooldown=0,          # units to wait after a reduction
      min_scale=0.0,       # floor of lr_scale ...
      min_lr=0.0)          # ... or of the absolute lr (/ optim.learning_rate)

Both follow Keras (paper 004 used EarlyStopping, ModelCheckpoint and
ReduceLROnPlateau): the first evaluation always counts as an improvement, a
value improves if it beats the best by more than `min_delta`, and the counter
resets after a reduction. A non-finite value (NaN, inf) never improves.

Units. Keras evaluates once per epoch, so its patience counts epochs. With
unit='evaluation' (the default) patience counts evaluations. With
unit='epoch' it counts epochs of training whatever `eval_every_steps` is: each
evaluation without improvement adds the steps trained since the previous
evaluation, and the callback acts once that sum reaches patience x
steps_per_epoch (cooldown likewise). Evaluating once per epoch, this is Keras'
count exactly; evaluating every 500 steps of a 721-step epoch, patience 5
acts at the 8th evaluation without improvement (5.5 epochs).

Reduce-on-plateau sets `TrainState.lr_scale`, which multiplies the optimizer's
updates, so the lr drops without recompiling the step. `restore_best` reads
the best-checkpoint manager, so its metric must be `best_metric`.

The callbacks' state after each evaluation goes into `callbacks.json` in the
workdir (atomically, keyed by step); a resumed run takes the entry of the
newest evaluation at or before the step it resumes from, so a run killed
between an evaluation and its checkpoint replays that evaluation identically.
"""
import copy
import json
import math
import os
from typing import Optional

import jax
import jax.numpy as jnp

from fer_jax.train.logging import write_json

FILENAME = 'callbacks.json'


UNITS = ('evaluation', 'epoch')


def _improved(value, best, mode, min_delta):
  if not math.isfinite(value):
    return False
  if best is None:
    return True
  if mode == 'min':
    return value < best - min_delta
  if mode == 'max':
    return value > best + min_delta
  raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")


class _Patience:
  """What patience and cooldown count: evaluations, or epochs as the steps
  trained since the previous evaluation (unit='epoch', `steps_per_epoch`)."""

  def __init__(self, unit: str = 'evaluation',
               steps_per_epoch: Optional[int] = None):
    if unit not in UNITS:
      raise ValueError(f'callbacks.unit must be one of {UNITS}, got {unit!r}')
    if steps_per_epoch is not None and steps_per_epoch < 1:
      raise ValueError(f'steps_per_epoch must be >= 1, got {steps_per_epoch}')
    self.unit, self.steps_per_epoch = unit, steps_per_epoch

  def _epoch(self) -> int:
    if self.steps_per_epoch is None:
      raise ValueError("callbacks.unit='epoch' needs the run's steps_per_epoch "
                       '(callbacks.from_config(..., steps_per_epoch=...)).')
    return self.steps_per_epoch

  def units(self, n) -> float:
    """`n` units in the counter's ticks (evaluations or steps)."""
    return float(n) * (self._epoch() if self.unit == 'epoch' else 1)

  def ticks(self, state: dict, step: int) -> int:
    """Ticks since the previous evaluation; records this one's step."""
    if self.unit == 'epoch':
      self._epoch()
    last, state['last_step'] = state.get('last_step', 0), int(step)
    return int(step) - last if self.unit == 'epoch' else 1


class EarlyStopping:
  """Stops after `patience` evaluations (or epochs) without an improvement of
  `monitor`; with unit='epoch', `wait` counts steps."""

  def __init__(self, monitor, mode='min', patience=5, min_delta=0.0,
               restore_best=True, unit='evaluation',
               steps_per_epoch: Optional[int] = None):
    self.monitor, self.mode = monitor, mode
    self.patience, self.min_delta = float(patience), float(min_delta)
    self.restore_best = bool(restore_best)
    self.clock = _Patience(unit, steps_per_epoch)
    self.state = {'best': None, 'best_step': None, 'wait': 0, 'stopped_step': None,
                  'last_step': 0}

  def update(self, step: int, metrics: dict) -> bool:
    """Takes one evaluation; True if training should stop now."""
    s = self.state
    if s['stopped_step'] is not None:
      return True
    if self.monitor not in metrics:
      raise KeyError(f'early_stopping monitors {self.monitor!r}, which the '
                     f'evaluation lacks; it has {sorted(metrics)}')
    value = float(metrics[self.monitor])
    ticks = self.clock.ticks(s, step)
    if _improved(value, s['best'], self.mode, self.min_delta):
      s.update(best=value, best_step=int(step), wait=0)
    else:
      s['wait'] += ticks
      if s['wait'] >= self.clock.units(self.patience):
        s['stopped_step'] = int(step)
    return s['stopped_step'] is not None


class ReduceLROnPlateau:
  """Multiplies lr_scale by `factor` after `patience` evaluations (or epochs)
  without improvement; with unit='epoch', `wait` and `cooldown` count steps."""

  def __init__(self, monitor, mode='min', patience=3, min_delta=0.0, factor=0.1,
               cooldown=0, min_scale=0.0, unit='evaluation',
               steps_per_epoch: Optional[int] = None):
    if not 0.0 < factor < 1.0:
      raise ValueError(f'reduce_on_plateau.factor must be in (0, 1), got {factor}')
    self.monitor, self.mode = monitor, mode
    self.patience, self.min_delta = float(patience), float(min_delta)
    self.factor, self.cooldown = float(factor), float(cooldown)
    self.min_scale = float(min_scale)
    self.clock = _Patience(unit, steps_per_epoch)
    self.state = {'best': None, 'wait': 0, 'cooldown': 0, 'scale': 1.0,
                  'last_step': 0}

  def update(self, step: int, metrics: dict) -> float:
    """Takes one evaluation; returns the lr_scale to train on from now."""
    s = self.state
    if self.monitor not in metrics:
      raise KeyError(f'reduce_on_plateau monitors {self.monitor!r}, which the '
                     f'evaluation lacks; it has {sorted(metrics)}')
    value = float(metrics[self.monitor])
    ticks = self.clock.ticks(s, step)
    if s['cooldown'] > 0:
      s['cooldown'] = max(s['cooldown'] - ticks, 0)
      s['wait'] = 0
    if _improved(value, s['best'], self.mode, self.min_delta):
      s.update(best=value, wait=0)
    elif s['cooldown'] == 0:
      s['wait'] += ticks
      if (s['wait'] >= self.clock.units(self.patience)
          and s['scale'] > self.min_scale):
        s['scale'] = max(s['scale'] * self.factor, self.min_scale)
        s.update(wait=0, cooldown=self.clock.units(self.cooldown))
    return s['scale']


class Callbacks:
  """The run's callbacks and their persisted history (a no-op when none)."""

  def __init__(self, early_stopping: Optional[EarlyStopping] = None,
               reduce_on_plateau: Optional[ReduceLROnPlateau] = None,
               workdir: Optional[str] = None):
    self.early_stopping, self.reduce_on_plateau = early_stopping, reduce_on_plateau
    self.path = workdir and os.path.join(workdir, FILENAME)
    self.history = {}  # str(step) -> state of every callback after that eval

  @property
  def active(self) -> bool:
    return bool(self.early_stopping or self.reduce_on_plateau)

  @property
  def stopped(self) -> bool:
    return bool(self.early_stopping and
                self.early_stopping.state['stopped_step'] is not None)

  def _states(self):
    return {n: c.state for n, c in (('early_stopping', self.early_stopping),
                                    ('reduce_on_plateau', self.reduce_on_plateau))
            if c is not None}

  def restore(self, step: int):
    """Loads the state after the newest evaluation at or before `step`."""
    if not (self.active and self.path and os.path.exists(self.path)):
      return
    with open(self.path) as f:
      history = json.load(f)['history']
    self.history = {k: v for k, v in history.items() if int(k) <= step}
    if self.history:
      last = self.history[max(self.history, key=int)]
      for name, c in (('early_stopping', self.early_stopping),
                      ('reduce_on_plateau', self.reduce_on_plateau)):
        if c is not None and name in last:
          c.state = copy.deepcopy(last[name])

  def on_eval(self, step: int, state, metrics: dict):
    """Updates every callback with one evaluation; returns the (new) state."""
    if not self.active:
      return state
    if self.reduce_on_plateau is not None:
      scale = self.reduce_on_plateau.update(step, metrics)
      if scale != float(state.lr_scale):
        # Same dtype and sharding: the jitted step does not recompile.
        state = state.replace(lr_scale=jax.device_put(
            jnp.asarray(scale, state.lr_scale.dtype), state.lr_scale.sharding))
    if self.early_stopping is not None:
      self.early_stopping.update(step, metrics)
    self.history[str(int(step))] = copy.deepcopy(self._states())
    if self.path:
      write_json(self.path, {'history': self.history})
    return state

  def on_train_end(self, state, ckpts):
    """The final state: the best checkpoint if early stopping restores it."""
    es = self.early_stopping
    if es is None or not es.restore_best or ckpts.best_step() is None:
      return state
    from fer_jax.train.checkpoint import abstract_like
    return ckpts.restore_best(abstract_like(state))


def from_config(config, workdir: Optional[str], best_metric: str,
                best_mode: str, steps_per_epoch: Optional[int] = None
                ) -> Callbacks:
  """The callbacks of `config.callbacks`, monitoring `best_metric` by default.

  `steps_per_epoch`: the run's; needed when `config.callbacks.unit='epoch'`
  (without it such callbacks are built, e.g. to validate a config, but raise
  at their first evaluation).
  """
  cfg = dict(config.get('callbacks') or {})
  unit = cfg.pop('unit', 'evaluation')
  known = {'early_stopping', 'reduce_on_plateau'}
  unknown = set(cfg) - known
  if unknown:
    raise KeyError(f'Unknown callbacks {sorted(unknown)}; valid: '
                   f'{sorted(known | {"unit"})}')
  clock = dict(unit=unit, steps_per_epoch=steps_per_epoch)
  _Patience(**clock)  # checks the unit even without callbacks
  es = rop = None
  if cfg.get('early_stopping'):
    kw = dict(cfg['early_stopping'])
    kw['monitor'] = kw.get('monitor') or best_metric
    kw['mode'] = kw.get('mode') or best_mode
    es = EarlyStopping(**kw, **clock)
    if es.restore_best and (es.monitor, es.mode) != (best_metric, best_mode):
      raise ValueError(
          f'early_stopping.restore_best restores the best checkpoint, which is '
          f'chosen by best_metric={best_metric!r} ({best_mode}), but early '
          f'stopping monitors {es.monitor!r} ({es.mode}). Set config.best_metric '
          'and best_mode to the same, or restore_best=False.')
  if cfg.get('reduce_on_plateau'):
    kw = dict(cfg['reduce_on_plateau'])
    kw['monitor'] = kw.get('monitor') or best_metric
    kw['mode'] = kw.get('mode') or best_mode
    min_lr = kw.pop('min_lr', 0.0)
    if min_lr:
      base = config.optim.learning_rate
      kw['min_scale'] = max(kw.get('min_scale', 0.0), min_lr / base)
    rop = ReduceLROnPlateau(**kw, **clock)
  return Callbacks(es, rop, workdir)
