"""The study's optimiser comes from train/optim.make_optimizer: the default
sections give the same updates as the bare optimiser, and a section's
schedule and grad_clip_norm change them as a hand computation says."""
import importlib.util
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs.personalization import common as study_configs
from fer_jax.protocols.personal import runner
from fer_jax.protocols.personal import study
from fer_jax.train import optim
from fer_jax.train import workdir as workdir_lib

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    'multihost_personalization_script.py')


def _section(**fields):
  return ml_collections.ConfigDict(dict(batch_size=16, epochs=10, **fields))


def _run(tx, params, grads):
  state = tx.init(params)
  for g in grads:
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
  return params


@pytest.mark.parametrize('optim_section,dtype', [
    (study_configs.paper_sgd(), jnp.float32),
    (study_configs.paper_sgd(), jnp.bfloat16),  # finetune.dtype bfloat16
    (dict(name='adam', learning_rate=2e-3), jnp.float32)])
def test_default_sections_update_bit_for_bit_as_the_bare_optimiser(
    optim_section, dtype):
  kw = dict(optim_section)
  name, lr = kw.pop('name'), kw.pop('learning_rate')
  bare = optim.OPTIMIZERS.get(name)(lr, **kw)  # what the study used to build
  keys = jax.random.split(jax.random.key(0), 7)
  params = {'w': jax.random.normal(keys[0], (5, 3)).astype(dtype),
            'b': jax.random.normal(keys[1], (3,)).astype(dtype)}
  grads = [jax.tree.map(lambda p, k=k: jax.random.normal(k, p.shape).astype(
      p.dtype), params) for k in keys[2:]]
  want = _run(bare, params, grads)
  got = _run(runner.make_tx(_section(optim=optim_section)), params, grads)
  for k in params:
    assert got[k].dtype == want[k].dtype
    np.testing.assert_array_equal(np.asarray(got[k], np.float32),
                                  np.asarray(want[k], np.float32))


def test_schedule_and_grad_clip_norm_change_the_update_as_by_hand():
  section = _section(
      optim=dict(name='sgd', learning_rate=0.1, grad_clip_norm=1.0),
      schedule=dict(name='exponential', every_steps=2, factor=0.5))
  big, small = jnp.array([3.0, 4.0]), jnp.array([0.3, 0.4])  # norms 5 and 0.5
  got = _run(runner.make_tx(section), jnp.ones(2), [big, small, big, small])
  # Steps 0-1 at lr 0.1, steps 2-3 at 0.05 (staircase); |big| clipped to 1:
  # 1 - (0.1 * (0.6 + 0.3) + 0.05 * (0.6 + 0.3)), same for 0.8 + 0.4.
  np.testing.assert_allclose(np.asarray(got), [1 - 0.135, 1 - 0.18], rtol=1e-6)


def test_a_schedule_in_epochs_is_refused_before_anything_runs():
  with pytest.raises(ValueError, match="'step'"):
    runner.make_tx(_section(optim=study_configs.paper_sgd(),
                            schedule=dict(name='step', every_epochs=2)))
  spec = importlib.util.spec_from_file_location('tiny_study', TINY)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config()
  config.finetune.schedule = dict(name='step', every_epochs=2)
  config.no_transfer.schedule = dict(name='exponential', every_step=3)
  config.no_transfer.optim.grad_clip_norm = 1.0  # accepted
  with pytest.raises(workdir_lib.ConfigError) as e:
    study.check_study_config(config, '/nonexistent/study')
  msg = str(e.value)
  assert "finetune.schedule.name: unknown 'step'; valid: constant, " \
         "exponential" in msg, msg
  assert "no_transfer.schedule (exponential)" in msg and 'every_step' in msg, msg
  assert 'grad_clip_norm' not in msg, msg
