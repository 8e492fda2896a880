"""Pure train and eval steps. `make_*_step` closes over the static pieces (model,
task, optimiser) and returns functions of (state, batch) ready for `jax.jit`.

Keras-style frozen BatchNorm (`inference_batchnorm`): in Keras (TF2) a
BatchNormalization layer whose `trainable` is False runs in inference mode: it
normalises with its moving statistics and does not update them, while the rest
of the network trains. `make_train_step(..., frozen_bn=paths)` does the same for
the BatchNorm layers at `paths` (from `partition.frozen_batchnorm_layers`, i.e.
the BatchNorm layers the trainable mask freezes; `config.frozen_bn='inference'`):
they see running statistics in the train-mode forward pass and their
`batch_stats` come out bit-identical. Every other layer (dropout included)
behaves as in training.
"""
import contextlib
from typing import Collection

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from fer_jax.train.state import TrainState, variables_of


@contextlib.contextmanager
def inference_batchnorm(paths: Collection[str]):
  """Within it, the nn.BatchNorm layers at `paths` ('/'-joined module paths,
  e.g. 'features/bn0') run on their running statistics and leave them as they
  are, whatever `train` the model was called with."""
  paths = frozenset(paths)

  def intercept(next_fun, args, kwargs, context):
    mod = context.module
    if (not paths or not isinstance(mod, nn.BatchNorm)
        or context.method_name != '__call__' or '/'.join(mod.path) not in paths):
      return next_fun(*args, **kwargs)
    # The same layer with use_running_average=True, applied to its own
    # variables as a pure function: flax's own normalisation code, no update.
    # (The clone is unbound, its path is (), so it is not intercepted again.)
    frozen = mod.clone(parent=None, use_running_average=True)
    return frozen.apply(dict(mod.variables), *args, **kwargs)

  if not paths:
    yield
    return
  with nn.intercept_methods(intercept):
    yield


def make_train_step(model, task, tx, frozen_bn: Collection[str] = ()):
  """One optimiser step. `frozen_bn`: BatchNorm layers that run in inference
  mode (Keras-style frozen BatchNorm, see the module doc)."""
  frozen_bn = frozenset(frozen_bn)

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      variables = variables_of(state.replace(params=params))
      with inference_batchnorm(frozen_bn):
        outputs, new_vars = model.apply(variables, batch['image'], train=True,
                                        rngs={'dropout': rng},
                                        mutable=['batch_stats'])
      loss, aux = task.loss(outputs, batch)
      return loss, (aux, new_vars.get('batch_stats', {}))

    (loss, (aux, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
    new_state = state.replace(step=state.step + 1,
                              params=optax.apply_updates(state.params, updates),
                              batch_stats=batch_stats, opt_state=opt_state)
    metrics = {'loss': loss, 'grad_norm': optax.tree.norm(grads), **aux}
    return new_state, metrics
  return train_step


def make_eval_step(model, task):
  # The loss evaluation reports (e.g. without training-only class weights).
  task = task.for_evaluation() if hasattr(task, 'for_evaluation') else task

  def eval_step(state: TrainState, batch):
    outputs = model.apply(variables_of(state), batch['image'], train=False)
    loss, _ = task.loss(outputs, batch, mask=batch['mask'])
    return task.predict(outputs), loss * jnp.sum(batch['mask'])
  return eval_step
