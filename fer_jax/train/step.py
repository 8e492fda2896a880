"""Pure train and eval steps. `make_*_step` closes over the static pieces (model,
task, optimiser) and returns functions of (state, batch) ready for `jax.jit`."""
import jax
import jax.numpy as jnp
import optax

from fer_jax.train.state import TrainState, variables_of


def make_train_step(model, task, tx):
  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      variables = variables_of(state.replace(params=params))
      outputs, new_vars = model.apply(variables, batch['image'], train=True,
                                      rngs={'dropout': rng}, mutable=['batch_stats'])
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
  def eval_step(state: TrainState, batch):
    outputs = model.apply(variables_of(state), batch['image'], train=False)
    loss, _ = task.loss(outputs, batch, mask=batch['mask'])
    return task.predict(outputs), loss * jnp.sum(batch['mask'])
  return eval_step
