"""Optimisers and schedules the papers use, built from `config.optim`/`config.schedule`.

  000: SGD lr 1e-3, Nesterov momentum 0.9.     001: SGD momentum 0.9, wd 5e-4,
  lr divided by 10 every 10 epochs (step decay).  003: lr 0.05, exponential decay
  every 10k steps.  004: Adam 1e-4, then 1e-5 after unfreezing.
Frozen parameters (a bool mask, True = trainable) get `optax.set_to_zero`, so they
never move and hold no optimiser state.
"""
import jax
import optax

from fer_jax.registry import Registry

SCHEDULES = Registry('schedule')
OPTIMIZERS = Registry('optimizer')


@SCHEDULES.register('constant')
def _constant(lr, steps_per_epoch, total_steps):
  return optax.constant_schedule(lr)


@SCHEDULES.register('step')
def _step(lr, steps_per_epoch, total_steps, every_epochs=10, factor=0.1):
  """Multiplies lr by `factor` every `every_epochs` epochs (001)."""
  return optax.exponential_decay(lr, transition_steps=every_epochs * steps_per_epoch,
                                 decay_rate=factor, staircase=True)


@SCHEDULES.register('exponential')
def _exponential(lr, steps_per_epoch, total_steps, every_steps=10_000, factor=0.1,
                 staircase=True):
  """lr * factor ** (step / every_steps) (003: decay every 10k steps)."""
  return optax.exponential_decay(lr, transition_steps=every_steps,
                                 decay_rate=factor, staircase=staircase)


@SCHEDULES.register('cosine')
def _cosine(lr, steps_per_epoch, total_steps, warmup_steps=0):
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, total_steps)


@OPTIMIZERS.register('sgd')
def _sgd(learning_rate, momentum=0.0, nesterov=False, weight_decay=0.0):
  # Caffe/PyTorch-style L2 weight decay, added to the gradient before momentum.
  return optax.chain(optax.add_decayed_weights(weight_decay) if weight_decay else
                     optax.identity(),
                     optax.sgd(learning_rate, momentum=momentum or None,
                               nesterov=nesterov))


@OPTIMIZERS.register('adam')
def _adam(learning_rate, b1=0.9, b2=0.999, eps=1e-7, weight_decay=0.0):
  # eps 1e-7 is Keras' default (004 trains with Keras Adam).
  if weight_decay:
    return optax.adamw(learning_rate, b1, b2, eps, weight_decay=weight_decay)
  return optax.adam(learning_rate, b1, b2, eps)


def make_schedule(config, steps_per_epoch: int, total_steps: int):
  kwargs = dict(config.schedule)
  name = kwargs.pop('name')
  return SCHEDULES.get(name)(config.optim.learning_rate, steps_per_epoch,
                             total_steps, **kwargs)


def make_optimizer(config, steps_per_epoch: int, total_steps: int,
                   trainable_mask=None):
  """The optax optimiser of `config.optim` with its schedule and frozen params.

  Reduce-on-plateau scales the updates with `TrainState.lr_scale` instead, which
  equals scaling the learning rate (it multiplies the update last) and needs no
  recompilation.
  """
  kwargs = dict(config.optim)
  name = kwargs.pop('name')
  kwargs.pop('learning_rate')
  clip = kwargs.pop('grad_clip_norm', None)
  schedule = make_schedule(config, steps_per_epoch, total_steps)
  tx = OPTIMIZERS.get(name)(schedule, **kwargs)
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(clip), tx)
  if trainable_mask is not None:
    labels = jax.tree.map(lambda t: 'train' if t else 'freeze', trainable_mask)
    tx = optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()}, labels)
  return tx
