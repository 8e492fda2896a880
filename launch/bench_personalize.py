"""Naive loop vs batched vmap for paper 000's personal dense parts.

  python launch/bench_personalize.py                      # AlexNet scale
  python launch/bench_personalize.py --hidden=256 --subjects=2 --frames=200 \
      --epochs=2                                          # a quick CPU run

Trains the AlexNet dense part (features-hidden-hidden-1, ReLU, dropout before
fc6 and fc7 as in torchvision, SGD lr 1e-3 Nesterov 0.9, batch 16) on random
'cached features', one model per subject x fold (training set = the other
folds), twice:
  naive    one model per call: the same engine (`BatchedTrainer`) with one
           model, called in a Python loop over the models, as one would
           without vmap;
  batched  `BatchedTrainer`: all models stacked, vmapped, lax.scan over steps,
           in chunks sized to the memory budget.
Prints time, model-steps/s and achieved bandwidth (about 7 x params x itemsize
bytes per model-step: read params, grads, momentum, write them and the update)
and the ratio, and checks the two give the same parameters.
"""
import time

from absl import app, flags


flags.DEFINE_integer('features', 9216, 'Feature size (AlexNet pool5: 9216).')
flags.DEFINE_integer('hidden', 4096, 'Width of fc6 and fc7.')
flags.DEFINE_integer('subjects', 10, 'Subjects.')
flags.DEFINE_integer('folds', 5, 'Folds per subject (one model per fold).')
flags.DEFINE_integer('frames', 800, 'Frames per subject.')
flags.DEFINE_integer('epochs', 10, 'Epochs over each training fold.')
flags.DEFINE_integer('batch', 16, 'Batch size.')
flags.DEFINE_float('dropout', 0.5, 'Dropout rate of the dense part.')
flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                  'Params, grads, momentum and compute dtype.')
flags.DEFINE_integer('naive_models', 0,
                     'Time only this many naive models and extrapolate '
                     '(0: all of them).')
flags.DEFINE_integer('memory_budget_mb', 2048,
                     'Chunk budget where the device reports no memory (CPU).')
flags.DEFINE_integer('max_models_per_chunk', 0, '0: as many as fit.')
flags.DEFINE_integer('segment_steps', 50, 'Steps per jitted scan call.')
flags.DEFINE_bool('check', True, 'Compare naive and batched parameters.')
flags.DEFINE_integer('seed', 0, 'Seed.')
FLAGS = flags.FLAGS


def _dense_part(hidden, dropout, dtype):
  import flax.linen as nn
  import jax.numpy as jnp
  from fer_jax.models import heads
  from fer_jax.models.alexnet import torch_default_init

  class DensePartOnly(nn.Module):
    """Just the head of torchvision's AlexNet, under 'head'."""

    def setup(self):
      self.head = heads.DensePart(1, (hidden, hidden), dropout,
                                  dropout_first=True, dtype=dtype,
                                  kernel_init=torch_default_init)

    def predict_head(self, f, train: bool = False):
      return self.head(f, train).astype(jnp.float32)

    def __call__(self, f, train: bool = False):
      return self.predict_head(f, train)

  return DensePartOnly()


def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from fer_jax.train import batched
  from fer_jax.train import memory

  dtype = jnp.dtype(FLAGS.dtype)
  model = _dense_part(FLAGS.hidden, FLAGS.dropout, dtype)
  head = model.init({'params': jax.random.key(FLAGS.seed)},
                    jnp.zeros((1, FLAGS.features)), method='predict_head')
  head = jax.tree.map(lambda a: a.astype(dtype), head['params']['head'])
  n_params = sum(a.size for a in jax.tree.leaves(head))
  apply = batched.head_apply(model)
  tx = optax.sgd(1e-3, momentum=0.9, nesterov=True)
  recipe = batched.Recipe(batch_size=FLAGS.batch, epochs=FLAGS.epochs)

  rng = np.random.default_rng(FLAGS.seed)
  n_frames = FLAGS.subjects * FLAGS.frames
  x = jnp.asarray(rng.normal(size=(n_frames, FLAGS.features)), dtype)
  y = jnp.asarray(rng.normal(size=(n_frames, 1)), jnp.float32)
  # Model (subject s, fold k) trains on the subject's frames outside block k.
  train_rows = []
  for s in range(FLAGS.subjects):
    frames = s * FLAGS.frames + np.arange(FLAGS.frames)
    fold = np.arange(FLAGS.frames) * FLAGS.folds // FLAGS.frames
    for k in range(FLAGS.folds):
      train_rows.append(frames[fold != k])
  m_all = len(train_rows)
  keys = batched.model_keys(jax.random.key(FLAGS.seed + 1), np.arange(m_all))
  steps = [int(recipe.total_steps(len(r))) for r in train_rows]
  itemsize = dtype.itemsize
  print(f'{m_all} models ({FLAGS.subjects} subjects x {FLAGS.folds} folds), '
        f'dense part {FLAGS.features}-{FLAGS.hidden}-{FLAGS.hidden}-1 = '
        f'{n_params / 1e6:.2f} M params ({FLAGS.dtype}), {sum(steps)} '
        f'model-steps, device {jax.devices()[0].device_kind}', flush=True)

  n_pad = max(len(r) for r in train_rows)
  # No longer a segment than the longest model: no wasted (masked) steps.
  segment = min(FLAGS.segment_steps, max(steps))

  # Naive: one model per call, one after another. The first one (compile) is
  # not timed. Lists padded to one length: one compile for all.
  single = batched.BatchedTrainer(apply, tx, recipe, segment)
  one_head = jax.tree.map(lambda a: a[None], head)
  n_naive = FLAGS.naive_models or m_all
  naive_params = []
  t_naive = 0.0
  for i in range(min(n_naive + 1, m_all)):
    t = time.perf_counter()
    rows = np.zeros((1, n_pad), np.int32)
    rows[0, :len(train_rows[i])] = train_rows[i]
    sub = batched.Subsets(jnp.asarray(rows),
                          jnp.asarray([len(train_rows[i])], jnp.int32),
                          jnp.zeros(1, jnp.int32), jnp.zeros(1, jnp.int32),
                          keys[i:i + 1])
    state, _ = single.train(single.init(one_head, {}), x, y, sub)
    p = jax.tree.map(lambda a: a[0], state.params)
    jax.block_until_ready(p)
    if i:
      t_naive += time.perf_counter() - t
    naive_params.append(p)
  timed = range(1, min(n_naive + 1, m_all))
  naive_steps = sum(steps[i] for i in timed) or 1
  naive_rate = naive_steps / max(t_naive, 1e-9)

  # Batched: every model, in chunks that fit the memory budget.
  trainer = batched.BatchedTrainer(apply, tx, recipe, segment)
  opt = jax.eval_shape(tx.init, head)
  act = memory.activation_elems(model, (FLAGS.features,),
                                method='predict_head')
  per_model = memory.bytes_per_model(head, opt, {}, FLAGS.batch,
                                     FLAGS.features, act, 0,
                                     order_elems=FLAGS.epochs * n_pad)
  budget = (memory.memory_budget(FLAGS.memory_budget_mb * 2**20)
            - memory.tree_bytes(x))
  m = memory.chunk_size(per_model, max(budget, per_model), m_all,
                        FLAGS.max_models_per_chunk)

  def run_batched():
    out = []
    for c0 in range(0, m_all, m):
      ids = np.arange(c0, min(c0 + m, m_all))
      rows = np.zeros((m, n_pad), np.int32)
      n = np.zeros(m, np.int32)
      for j, i in enumerate(ids):
        rows[j, :len(train_rows[i])], n[j] = train_rows[i], len(train_rows[i])
      ids_pad = batched.pad_models(ids, m, 2**31 - 1)
      sub = batched.Subsets(jnp.asarray(rows), jnp.asarray(n),
                            jnp.zeros(m, jnp.int32), jnp.zeros(m, jnp.int32),
                            batched.model_keys(jax.random.key(FLAGS.seed + 1),
                                               ids_pad))
      params = jax.tree.map(lambda a: jnp.broadcast_to(a, (m,) + a.shape), head)
      state, _ = trainer.train(trainer.init(params, {}), x, y, sub)
      jax.block_until_ready(state.params)
      out.append(jax.tree.map(lambda a: np.asarray(a[:len(ids)]), state.params))
    return jax.tree.map(lambda *a: np.concatenate(a), *out)

  t = time.perf_counter()
  batched_params = run_batched()
  t_first = time.perf_counter() - t
  t = time.perf_counter()
  batched_params = run_batched()
  t_batched = time.perf_counter() - t
  # A padded last chunk still computes its dummy models: count real steps only.
  batched_rate = sum(steps) / t_batched

  def bandwidth(rate):
    return 7 * n_params * itemsize * rate / 1e9

  print(f'\nchunks of {m} models (~{per_model / 2**20:.0f} MiB each by the '
        f'estimate, budget {(budget + memory.tree_bytes(x)) / 2**20:.0f} MiB)')
  print(f'{"":10s}{"models":>8s}{"time s":>10s}{"model-steps/s":>15s}'
        f'{"GB/s":>9s}')
  extra = '' if len(timed) == m_all - 1 else f' (timed {len(timed)}, extrapolated)'
  t_naive_all = sum(steps) / naive_rate
  print(f'{"naive":10s}{m_all:8d}{t_naive_all:10.2f}{naive_rate:15.1f}'
        f'{bandwidth(naive_rate):9.2f}{extra}')
  print(f'{"batched":10s}{m_all:8d}{t_batched:10.2f}{batched_rate:15.1f}'
        f'{bandwidth(batched_rate):9.2f} (first call with compile: '
        f'{t_first:.2f} s)')
  print(f'ratio batched / naive: {batched_rate / naive_rate:.2f}x')
  if FLAGS.check:
    diff = max(float(np.max(np.abs(np.asarray(a[i], np.float32) -
                                   np.asarray(b, np.float32))))
               for i, p in enumerate(naive_params)
               for a, b in zip(jax.tree.leaves(batched_params),
                               jax.tree.leaves(p)))
    print(f'max |naive - batched| over {len(naive_params)} models\' params: '
          f'{diff:.2e}')


if __name__ == '__main__':
  app.run(main)
