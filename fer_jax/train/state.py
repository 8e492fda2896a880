"""The train state: everything a run needs to continue, and nothing else."""
from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array        # raw uint32 key data, so checkpoints hold plain arrays
  lr_scale: jax.Array   # reduce-on-plateau multiplies the updates by this


def init_state(model, tx, rng, sample_image) -> TrainState:
  """Initialises parameters from `rng` for images shaped like `sample_image`."""
  init_rng, state_rng = jax.random.split(rng)
  variables = model.init({'params': init_rng, 'dropout': init_rng},
                         sample_image, train=False)
  return create_state(variables, tx, state_rng)


def create_state(variables, tx, rng) -> TrainState:
  params = variables['params']
  return TrainState(
      step=jnp.zeros((), jnp.int32), params=params,
      batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params),
      rng=jax.random.key_data(rng), lr_scale=jnp.ones((), jnp.float32))


def variables_of(state: TrainState):
  v = {'params': state.params}
  if state.batch_stats:
    v['batch_stats'] = state.batch_stats
  return v
