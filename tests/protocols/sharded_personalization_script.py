"""Run by test_personalization_sharded.py in a subprocess (the device count is
fixed by XLA_FLAGS before JAX starts). Modes:

  engine OUT.npz       a chunk of 8 heads trained with and without the model
                       mesh, and the compiled segment's HLO text
  study WORKDIR [PRE]  a tiny personalization study (pre-trained nets in PRE
                       if given), its models.csv in WORKDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from fer_jax.models import get_model  # noqa: E402
from fer_jax.train import batched  # noqa: E402
from fer_jax.train import mesh as mesh_lib  # noqa: E402


def engine(out):
  model = get_model('small_cnn', num_outputs=1, hidden=16, dropout=0.5)
  d, n_data, sizes = 12, 100, [1, 5, 8, 9, 23, 40, 17, 0]
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(n_data, d)).astype(np.float32))
  y = jnp.asarray(rng.normal(size=(n_data, 1)).astype(np.float32))
  head = model.init({'params': jax.random.key(0)}, jnp.zeros((1, d)),
                    method='predict_head')['params']['head']
  rows = np.zeros((len(sizes), 40), np.int32)
  for i, s in enumerate(sizes):
    rows[i, :s] = rng.choice(n_data, s, replace=False)
  zeros = jnp.zeros(len(sizes), jnp.int32)
  sub = batched.Subsets(jnp.asarray(rows), jnp.asarray(sizes, jnp.int32),
                        zeros, zeros,
                        batched.model_keys(jax.random.key(7),
                                           np.arange(len(sizes))))
  tx = optax.sgd(1e-2, momentum=0.9, nesterov=True)
  recipe = batched.Recipe(batch_size=8, epochs=3)
  params = jax.tree.map(lambda h: jnp.stack([h] * len(sizes)), head)
  result = {}
  for name, mesh in (('one', None), ('sharded', mesh_lib.model_mesh())):
    tr = batched.BatchedTrainer(batched.head_apply(model), tx, recipe,
                                segment_steps=4, mesh=mesh)
    state, _ = tr.train(tr.init(params, {}), x, y, sub)
    for k, v in flat(state.params).items():
      result[f'{name}/{k}'] = np.asarray(v)
    if mesh is not None:
      result['devices'] = np.asarray(len(state.params['fc1']['kernel']
                                         .sharding.device_set))
      orders = tr._orders(sub.key, sub.n, rows.shape[1])  # pylint: disable=protected-access
      hlo = tr._segment.lower(state, jnp.int32(0), x, y, sub, orders)  # pylint: disable=protected-access
      result['hlo'] = np.asarray(hlo.compile().as_text())
  np.savez(out, **result)


def flat(tree):
  from fer_jax.models import partition
  return {'/'.join(k): v for k, v in partition.flatten(tree).items()}


def study(workdir, pretrain_dir=''):
  from tests.conftest import tiny_config
  from configs.personalization import common
  from fer_jax.protocols.personal import study as personal_study
  pre = tiny_config(**{'data.eval_records': 32, 'total_steps': 20})
  pre.data.image_size = 16
  pre.model = dict(name='small_cnn', widths=(4,), hidden=16, dropout=0.0)
  c = common.study_config(pre, 16)
  c.joint = True
  c.pretrain_dir = pretrain_dir
  c.personal.subjects = (0, 1)
  c.personal.frame_stride = 10
  c.fractions = (0.5,)
  c.samplers = ('random', 'mcdue')
  c.mcdue.passes = 3
  c.finetune.epochs = c.no_transfer.epochs = 2
  c.runtime.verbose = False
  c.runtime.full_unroll = True
  c.runtime.full_segment_steps = 4
  personal_study.run_study(c, workdir)


if __name__ == '__main__':
  if sys.argv[1] == 'engine':
    engine(sys.argv[2])
  else:
    study(*sys.argv[2:])
