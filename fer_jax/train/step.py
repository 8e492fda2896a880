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

Frozen parameters (`trainable=mask`, the mask the optimiser freezes with) are
not differentiated at all: the loss is a function of the trainable leaves only,
so XLA builds no backward pass for a frozen base, and the logged `grad_norm` is
the norm of the gradients that train. The optimiser still sees a whole tree
(zeros where frozen, which its `set_to_zero` branch ignores).
"""
import contextlib
from typing import Any, Callable, Collection, Optional, Tuple

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


def split_trainable(params, trainable) -> Tuple[list, Callable[[list], Any]]:
  """(the trainable leaves of `params`, merge): merge(leaves) is `params` with
  those leaves replaced, the frozen ones as they were. `trainable`: a bool tree
  shaped like `params` (matched by key path, so dict flavours may differ)."""
  marks = {jax.tree_util.keystr(p): bool(m)
           for p, m in jax.tree_util.tree_flatten_with_path(trainable)[0]}
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = [jax.tree_util.keystr(p) for p, _ in flat]
  missing = [k for k in keys if k not in marks]
  if missing:
    raise ValueError(f'The trainable mask has no entry for {missing[:3]}')
  index = [i for i, k in enumerate(keys) if marks[k]]
  leaves = [leaf for _, leaf in flat]

  def merge(train_leaves):
    out = list(leaves)
    for i, leaf in zip(index, train_leaves):
      out[i] = leaf
    return jax.tree_util.tree_unflatten(treedef, out)
  return [leaves[i] for i in index], merge


def make_train_step(model, task, tx, frozen_bn: Collection[str] = (),
                    trainable: Optional[Any] = None):
  """One optimiser step. `frozen_bn`: BatchNorm layers that run in inference
  mode (Keras-style frozen BatchNorm, see the module doc). `trainable`: the bool
  mask of the parameters that train (None: all); only those are
  differentiated."""
  frozen_bn = frozenset(frozen_bn)
  if trainable is not None and all(jax.tree.leaves(trainable)):
    trainable = None  # everything trains: the plain whole-tree gradient

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

    if trainable is None:
      (loss, (aux, batch_stats)), grads = jax.value_and_grad(
          loss_fn, has_aux=True)(state.params)
      grad_norm = optax.tree.norm(grads)
    else:
      # The frozen leaves enter as constants: no gradient is built for them.
      leaves, merge = split_trainable(state.params, trainable)
      (loss, (aux, batch_stats)), train_grads = jax.value_and_grad(
          lambda ls: loss_fn(merge(ls)), has_aux=True)(leaves)
      grad_norm = optax.tree.norm(train_grads)
      _, merge_zeros = split_trainable(
          jax.tree.map(jnp.zeros_like, state.params), trainable)
      grads = merge_zeros(train_grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
    new_state = state.replace(step=state.step + 1,
                              params=optax.apply_updates(state.params, updates),
                              batch_stats=batch_stats, opt_state=opt_state)
    metrics = {'loss': loss, 'grad_norm': grad_norm, **aux}
    return new_state, metrics
  return train_step


def make_predict_fn(model, task):
  """(predictions, loss summed over the batch's real examples) of a variables
  dict on a batch: the evaluation of a model outside a TrainState."""
  # The loss evaluation reports (e.g. without training-only class weights).
  task = task.for_evaluation() if hasattr(task, 'for_evaluation') else task

  def predict_fn(variables, batch):
    outputs = model.apply(variables, batch['image'], train=False)
    loss, _ = task.loss(outputs, batch, mask=batch['mask'])
    return task.predict(outputs), loss * jnp.sum(batch['mask'])
  return predict_fn


def make_eval_step(model, task):
  """`make_predict_fn` of a TrainState."""
  predict_fn = make_predict_fn(model, task)

  def eval_step(state: TrainState, batch):
    return predict_fn(variables_of(state), batch)
  return eval_step
