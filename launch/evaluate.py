"""Evaluates a trained run's best (or latest) checkpoint on another dataset/split.

  # AffectNet-trained VA model on AFEW-VA's test split, labels in [-10, 10]:
  python launch/evaluate.py --workdir=/tmp/va --dataset=afew_va --split=test \
      --va_scale=10 --out_dir=/tmp/va/eval_afew_va
  # The data section (name, source, crop, eval split, va_scale) of another
  # experiment config, with its usual --config.* overrides:
  python launch/evaluate.py --workdir=/tmp/va --config=configs/other.py \
      --config.data.source.preset=afew_va_like
  # Any key under config.data:
  python launch/evaluate.py --workdir=/tmp/va --set=source.preset=fer2013_like

Writes results.json, predictions.npz and scatter.png (VA) / confusion_matrix.png
(expressions) into --out_dir (default WORKDIR/eval/<dataset>_<split>_<which>).
Model and preprocessing always come from the run's own config.json.
"""
import ast
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

config_flags.DEFINE_config_file('config', None, 'Optional config whose data section '
                                'names the dataset to evaluate on.', lock_config=False)
flags.DEFINE_string('workdir', None, 'The trained run.')
flags.DEFINE_string('out_dir', None, 'Where results go.')
flags.DEFINE_enum('which', 'best', ['best', 'latest'], 'Which checkpoint.')
flags.DEFINE_string('dataset', None, 'config.data.name to evaluate on.')
flags.DEFINE_string('split', None, 'Split (default: the eval_split).')
flags.DEFINE_float('va_scale', None, 'Label range of VA in the evaluated dataset.')
flags.DEFINE_multi_string('set', [], 'KEY=VALUE under config.data (python literal '
                          'or string), e.g. source.preset=afew_va_like.')
flags.DEFINE_bool('plots', True, 'Write scatter / confusion-matrix PNGs.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def _literal(s):
  try:
    return ast.literal_eval(s)
  except (ValueError, SyntaxError):
    return s


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from fer_jax.protocols import cross_dataset
  data = dict(kv.split('=', 1) for kv in FLAGS.set)
  data = {k: _literal(v) for k, v in data.items()}
  if FLAGS.dataset:
    data['name'] = FLAGS.dataset
  base = cross_dataset.eval_config(cross_dataset.run_config(FLAGS.workdir), data,
                                   FLAGS.va_scale, FLAGS.config)
  split = FLAGS.split or base.data.eval_split
  out = FLAGS.out_dir or os.path.join(
      FLAGS.workdir, 'eval', f'{base.data.name}_{split}_{FLAGS.which}')
  res = cross_dataset.evaluate_workdir(FLAGS.workdir, out, FLAGS.which, split, data,
                                       FLAGS.va_scale, FLAGS.config, FLAGS.plots)
  for k, v in sorted(res.items()):
    if isinstance(v, float):
      print(f'{k:<40} {v:.4f}')
  print(f'All results: {os.path.join(out, "results.json")}')


if __name__ == '__main__':
  app.run(main)
