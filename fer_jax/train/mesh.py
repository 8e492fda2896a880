"""Meshes over every device of every process, for the two kinds of parallelism.

Data parallelism (the train loop): a 'data' mesh; parameters are replicated,
batches split along it, and `jax.jit` inserts the gradient all-reduce. Each
process feeds only its own share of a batch.

Model parallelism (the batched engine, train/batched.py): a 'model' mesh
(`model_mesh`) splits stacked models along their leading axis and replicates
the shared data. `stack_on_mesh` builds a chunk's per-model arrays from each
device's own share only (no process holds the whole grid), `replicate` puts
the shared data on every device, `per_device` runs a function on each device's
share (shard_map: no collective inside), and `to_host` gathers per-model
results to every process (`process_allgather`), outside the compiled steps.
"""
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
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


MODEL_AXIS = 'model'  # the stacked models' leading axis


def model_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: all, of every process) whose axis
  splits the models."""
  devices = np.asarray(jax.devices() if devices is None else devices)
  return jax.sharding.Mesh(devices, (MODEL_AXIS,),
                           axis_types=(jax.sharding.AxisType.Auto,))


def model_sharding(mesh: Optional[jax.sharding.Mesh]):
  """Leading (model) axis split over `mesh`; None without a mesh."""
  if mesh is None:
    return None
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(MODEL_AXIS))


def device_slots(mesh: jax.sharding.Mesh, m: int):
  """[(device, chunk slots it holds)] for this process's devices of `mesh`, for
  a chunk of m stacked models split along the model axis."""
  index = model_sharding(mesh).addressable_devices_indices_map((m,))
  return [(d, np.arange(m)[idx[0]]) for d, idx in index.items()]


def stack_on_mesh(mesh: Optional[jax.sharding.Mesh], m: int, build):
  """A chunk's stacked per-model arrays [m, ...], split along the model axis of
  `mesh`, of which this process builds only its own devices' share.

  build(slots) -> a tree of host (numpy) arrays [len(slots), ...] for the
  chunk slots `slots`; it is called once per device of this process, so no
  more than one device's share is built at a time. Without a mesh:
  build(arange(m)) on the default device.
  """
  if mesh is None:
    return jax.tree.map(jnp.asarray, build(np.arange(m)))
  sharding = model_sharding(mesh)
  per_device = [jax.device_put(build(slots), d)
                for d, slots in device_slots(mesh, m)]
  return jax.tree.map(
      lambda *shards: jax.make_array_from_single_device_arrays(
          (m,) + shards[0].shape[1:], sharding, list(shards)), *per_device)


def _spec(flag: str):
  """'m': split along the model axis; 'r': replicated."""
  return {'m': jax.sharding.PartitionSpec(MODEL_AXIS),
          'r': jax.sharding.PartitionSpec()}[flag]


def _out_specs(outs, f=_spec):
  return tuple(f(o) for o in outs) if isinstance(outs, tuple) else f(outs)


def jit_shardings(mesh, ins: str, outs) -> dict:
  if mesh is None:
    return {}
  named = lambda flag: jax.sharding.NamedSharding(mesh, _spec(flag))  # noqa: E731
  return dict(in_shardings=tuple(named(f) for f in ins),
              out_shardings=_out_specs(outs, named))


def per_device(fn, mesh: Optional[jax.sharding.Mesh], ins: str, outs,
               jit: bool = True, **jit_kwargs):
  """`fn` run by every device of `mesh` on its own share: the arguments /
  outputs flagged 'm' in `ins` (one letter per argument) / `outs` (a letter, or
  a tuple of them) are split along the model axis, 'r' replicated.
  `jax.shard_map`, so the compiled program holds no collective whatever the
  ops (the SPMD partitioner all-gathers a vmapped conv's grouped kernels, for
  one). jit=False: not jitted (to call inside a jitted function). Without a
  mesh: `fn`, jitted."""
  if mesh is not None:
    fn = jax.shard_map(fn, mesh=mesh, in_specs=tuple(_spec(f) for f in ins),
                       out_specs=_out_specs(outs), check_vma=False)
  if not jit:
    return fn
  return jax.jit(fn, **jit_shardings(mesh, ins, outs), **jit_kwargs)


def replicate(mesh: Optional[jax.sharding.Mesh], x):
  """`x` (a host array, the same on every process) on every device of `mesh`
  (the default device without one)."""
  if mesh is None:
    return jnp.asarray(x)
  x = np.asarray(x)
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  return jax.make_array_from_callback(x.shape, repl, lambda idx: x[idx])


def to_host(tree):
  """numpy copies of a tree of arrays, whole on every process: arrays whose
  shards live on several processes are all-gathered (`process_allgather`;
  every process must call this at the same point)."""
  leaves, treedef = jax.tree.flatten(tree)
  far = [i for i, a in enumerate(leaves)
         if isinstance(a, jax.Array) and not a.is_fully_addressable]
  out = [np.asarray(a) if i not in far else None for i, a in enumerate(leaves)]
  if far:
    got = multihost_utils.process_allgather([leaves[i] for i in far], tiled=True)
    for i, a in zip(far, got):
      out[i] = np.asarray(a)
  return jax.tree.unflatten(treedef, out)
