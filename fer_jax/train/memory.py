"""How many stacked models fit a device: the batched engine's memory model.

Per model: params, grads, optimiser slots and activations, estimated
analytically (activations read from `eval_shape`, nothing compiled); a chunk is
as many models as the budget, a fraction of the device's free memory, allows.
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils


def tree_bytes(tree) -> int:
  return int(sum(np.prod(np.shape(l)) * jnp.dtype(l.dtype).itemsize
                 for l in jax.tree.leaves(tree)))


def activation_elems(model, x_shape, method=None, mutable=()) -> int:
  """Elements of every intermediate output of one example's forward pass.

  Read from `capture_intermediates` inside `eval_shape`: no compile, no FLOPs.
  """
  def run(x):
    v = model.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)},
                   x, True, method=method)
    _, st = model.apply(v, x, True, method=method, capture_intermediates=True,
                        rngs={'dropout': jax.random.key(1)},
                        mutable=['intermediates', *mutable])
    return st['intermediates']
  inter = jax.eval_shape(run, jax.ShapeDtypeStruct((1,) + tuple(x_shape),
                                                   jnp.float32))
  return int(sum(np.prod(l.shape) for l in jax.tree.leaves(inter)))


def bytes_per_model(params, opt_state, extra, batch_size: int, x_elems: int,
                    act_elems: int, eval_rows: int, order_elems: int = 0) -> int:
  """params + grads + optimiser slots (+ the update's temporaries) + activations.

  Training keeps every intermediate for the backward pass and as much again for
  its gradients; evaluation keeps one forward over the test rows (no grads).
  order_elems: the epochs x padded-list-length int32 visiting orders.
  """
  p = tree_bytes(params)
  state = p + tree_bytes(opt_state) + tree_bytes(extra) + 4 * order_elems
  step = 2 * p + 4 * batch_size * (x_elems + 2 * act_elems)
  evaluation = 4 * eval_rows * (x_elems + act_elems)
  return state + max(step, evaluation)


def memory_budget(cpu_budget_bytes: int, fraction: float = 0.5) -> int:
  """Bytes to spend on a chunk per device: a fraction of the accelerator's free
  memory, or `cpu_budget_bytes` where a device reports none (CPU); the smallest
  over this process's devices and, with several processes, over all of them
  (an all-gather: every process must call it, and all size the same chunks)."""
  budgets = []
  for d in jax.local_devices():
    stats = d.memory_stats() or {}
    limit = stats.get('bytes_limit')
    budgets.append(int(fraction * (limit - stats.get('bytes_in_use', 0)))
                   if limit else int(cpu_budget_bytes))
  budget = min(budgets)
  if jax.process_count() > 1:  # in KiB: int32 on the wire
    kib = multihost_utils.process_allgather(np.int32(min(budget // 1024,
                                                         2**31 - 1)))
    budget = int(np.min(kib)) * 1024
  return budget


def chunk_size(per_model: int, budget: int, num_models: int,
               max_models: int = 0) -> int:
  """How many models fit the budget (at least 1, at most num_models)."""
  m = max(1, budget // max(per_model, 1))
  if max_models:
    m = min(m, max_models)
  return int(max(1, min(m, num_models)))
