"""Measures synthetic rendering speed: records per second on one CPU core.

  python launch/bench_render.py [--presets=affectnet_like,amigos_like] \
      [--sizes=48,64,224] [--n=400]

Single process, cv2 limited to one thread and the process pinned to one core (where
the OS allows), so the numbers are per core; a grain pipeline with k workers
renders about k times as many.
"""
import os
import time

from absl import app, flags


flags.DEFINE_list('presets', ['affectnet_like', 'amigos_like', 'emotionet_like',
                              'fer2013_like', 'compound_like', 'afew_va_like'],
                  'Presets to time.')
flags.DEFINE_list('sizes', ['48', '64', '224'], 'Image sizes.')
flags.DEFINE_integer('n', 400, 'Records per measurement (after 20 warm-up ones).')
flags.DEFINE_integer('repeats', 3, 'Measurements per cell; the best is reported.')
flags.DEFINE_bool('pin', True, 'Pin the process to one CPU core.')
FLAGS = flags.FLAGS


def records_per_second(source, n: int, repeats: int) -> float:
  for i in range(20):
    source[i]
  best = 0.0
  for r in range(repeats):
    start = 20 + r * n
    t = time.perf_counter()
    for i in range(start, start + n):
      source[i % len(source)]
    best = max(best, n / (time.perf_counter() - t))
  return best


def main(argv):
  del argv
  import cv2
  from fer_jax.data.synthetic import SyntheticSource
  cv2.setNumThreads(1)
  if FLAGS.pin and hasattr(os, 'sched_setaffinity'):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
  sizes = [int(s) for s in FLAGS.sizes]
  print(f'records/s on one core (best of {FLAGS.repeats} x {FLAGS.n})')
  header = f'{"preset":16s} {"domain":6s} ch ' + ''.join(f'{s:>8d}' for s in sizes)
  print(header)
  print('-' * len(header))
  for name in FLAGS.presets:
    src = SyntheticSource(name)
    row = f'{name:16s} {src.spec.domain:6s} {src.channels:2d} '
    for size in sizes:
      rate = records_per_second(SyntheticSource(name, image_size=size), FLAGS.n,
                                FLAGS.repeats)
      row += f'{rate:8.0f}'
    print(row, flush=True)


if __name__ == '__main__':
  app.run(main)
