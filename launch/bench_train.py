"""Step time of a frozen-base stage against a full fine-tune of the same net.

  python launch/bench_train.py                  # mobilenet_v2, 96 px, batch 32
  python launch/bench_train.py --model=small_cnn --image_size=32 --steps=5

Builds the loop's train step (`train/step.make_train_step`, the loop's
optimiser with the trainable mask) for one net, once per row:

  all          the whole net trains (a full fine-tune);
  SPEC, whole  `SPEC` trains (`config.trainable`, e.g. head), the step
               differentiates every parameter and the optimiser zeroes the
               frozen updates (the step before frozen leaves were split off);
  SPEC         the same stage, only the trainable leaves differentiated.

Per row: XLA's FLOPs of the compiled step (exact, whatever else runs on the
machine) and the median wall time of --steps timed steps, the rows' steps
interleaved round-robin so a busy machine slows them alike; ratios against
`all`. Random images and expression labels, SGD with Nesterov momentum.
"""
import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from fer_jax.models import get_model
from fer_jax.tasks import get_task
from fer_jax.train import loop
from fer_jax.train import optim
from fer_jax.train.state import init_state
from fer_jax.train.step import make_train_step


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
    cost = cost[0] if cost else {}
  return float((cost or {}).get('flops', float('nan')))


def build_steps(model_name, image_size, batch_size, specs, seed=0):
  """[(row name, compiled step, state)] and the batch, for `all` and every
  spec (whole-tree gradient and trainable subtree)."""
  task = get_task(name='affect', targets=('expression',))
  model = get_model(model_name, num_outputs=task.num_outputs)
  sample = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
  rng = np.random.default_rng(seed)
  batch = {'image': jnp.asarray(rng.uniform(
      size=(batch_size, image_size, image_size, 3)).astype(np.float32)),
           'expression': jnp.asarray(rng.integers(0, 7, batch_size), jnp.int32),
           'has_expression': jnp.ones(batch_size, bool)}
  config = ml_collections.ConfigDict(dict(
      optim=dict(name='sgd', learning_rate=1e-3, momentum=0.9, nesterov=True),
      schedule=dict(name='constant')))
  shapes = jax.eval_shape(lambda: model.init(
      {'params': jax.random.key(seed), 'dropout': jax.random.key(seed)}, sample))
  rows = []
  for spec in ('all',) + tuple(specs):
    mask = loop.trainable_mask(model, shapes['params'], sample, spec)
    tx = optim.make_optimizer(config, 100, 1000, mask)
    state = init_state(model, tx, jax.random.key(seed), sample)
    variants = [(spec, None)] if mask is None else [
        (f'{spec}, whole', None), (spec, mask)]
    for name, trainable in variants:
      step = jax.jit(make_train_step(model, task, tx, trainable=trainable))
      compiled = step.lower(state, batch).compile()
      n_train = sum(int(np.prod(p.shape)) for p, m in zip(
          jax.tree.leaves(shapes['params']),
          jax.tree.leaves(mask) if mask is not None else
          [True] * len(jax.tree.leaves(shapes['params']))) if m)
      rows.append(dict(name=name, step=compiled, state=state, trains=n_train,
                       flops=_flops(compiled)))
  return rows, batch


def time_steps(rows, batch, steps: int, warmup: int):
  """Median seconds per step of each row, steps interleaved round-robin."""
  for r in rows:
    for _ in range(warmup):
      jax.block_until_ready(r['step'](r['state'], batch))
  times = {r['name']: [] for r in rows}
  for _ in range(steps):
    for r in rows:
      t = time.perf_counter()
      _, metrics = r['step'](r['state'], batch)
      jax.block_until_ready(metrics)
      times[r['name']].append(time.perf_counter() - t)
      if not np.isfinite(float(metrics['loss'])):
        raise FloatingPointError(f'{r["name"]}: non-finite loss')
  return {k: float(np.median(v)) for k, v in times.items()}


def main(argv):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument('--model', default='mobilenet_v2')
  p.add_argument('--image_size', type=int, default=96)
  p.add_argument('--batch_size', type=int, default=32)
  p.add_argument('--specs', default='head',
                 help='comma-separated config.trainable values to compare '
                      'with all (e.g. head,last:56)')
  p.add_argument('--steps', type=int, default=10)
  p.add_argument('--warmup', type=int, default=2)
  args = p.parse_args(argv)

  rows, batch = build_steps(args.model, args.image_size, args.batch_size,
                            [s for s in args.specs.split(',') if s])
  sec = time_steps(rows, batch, args.steps, args.warmup)
  print(f'{args.model} at {args.image_size} px, batch {args.batch_size}, '
        f'jax {jax.__version__} on {jax.devices()[0].device_kind} '
        f'({os.cpu_count()} CPUs), median of {args.steps} steps')
  header = (f'{"trainable":18s} {"trains":>10s} {"GFLOP/step":>10s} '
            f'{"x all":>6s} {"ms/step":>8s} {"x all":>6s}')
  print(header)
  print('-' * len(header))
  base = rows[0]
  for r in rows:
    print(f'{r["name"]:18s} {r["trains"]:10,d} {r["flops"] / 1e9:10.2f} '
          f'{r["flops"] / base["flops"]:6.2f} {1e3 * sec[r["name"]]:8.1f} '
          f'{sec[r["name"]] / sec[base["name"]]:6.2f}', flush=True)
  print('trains: parameters that train; "SPEC, whole": the same stage with '
        'every parameter differentiated.')
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
