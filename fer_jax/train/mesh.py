"""Data parallelism over a `jax.sharding.Mesh` of every device of every process.

Parameters are replicated, batches split along the 'data' axis; `jax.jit` inserts
the gradient all-reduce. Each process feeds only its own share of a batch.
"""
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def data_mesh() -> Mesh:
  # Auto axes: the compiler propagates shardings. (jax.make_mesh now defaults to
  # Explicit axes, under which flax's Dropout fails: its unsharded random mask
  # meets the data-sharded activations in one lax.select.)
  return jax.make_mesh((jax.device_count(),), ('data',),
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def global_batch(local_batch, mesh: Mesh):
  """Assembles the global batch from every process's local numpy batch."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
      local_batch)
