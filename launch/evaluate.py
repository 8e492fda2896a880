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
Model and preprocessing always come from the run's own config.json. Mistakes
(a workdir that is not a trained run, an unknown key or dataset) are one line
`error: ...` and exit status 2.
"""
import os

from absl import flags, logging
from ml_collections import config_flags

from fer_jax import cli

config_flags.DEFINE_config_file('config', None, 'Optional config whose data section '
                                'names the dataset to evaluate on.', lock_config=False)
flags.DEFINE_string('workdir', None, 'The trained run.')
flags.DEFINE_string('out_dir', None, 'Where results go.')
flags.DEFINE_enum('which', 'best', ['best', 'latest'], 'Which checkpoint.')
flags.DEFINE_string('dataset', None, 'config.data.name to evaluate on.')
flags.DEFINE_string('split', None, 'Split (default: the eval_split).')
flags.DEFINE_float('va_scale', None, 'Label range of VA in the evaluated dataset.')
flags.DEFINE_multi_string('set', [], "KEY=VALUE under config.data (read as the "
                          "field's type), e.g. source.preset=afew_va_like.")
flags.DEFINE_bool('plots', True, 'Write scatter / confusion-matrix PNGs.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from fer_jax.protocols import cross_dataset
  from fer_jax.train.stages import apply_overrides, get_field
  from fer_jax.train.trained import run_config
  from fer_jax.train.workdir import check_trained_run, validate_config
  check_trained_run(FLAGS.workdir)
  run = run_config(FLAGS.workdir)
  target = FLAGS.config
  if cli.config_overrides():
    if target is None:
      raise cli.UsageError('--config.KEY=VALUE needs --config=FILE')
    target = apply_overrides(target, cli.config_overrides())
  sets = {}
  for kv in FLAGS.set:
    key, eq, value = kv.partition('=')
    if not eq:
      raise cli.UsageError(f'--set={kv!r}: expected KEY=VALUE')
    sets[f'data.{key}'] = value
  # Checked and typed against the run's data section (a key it lacks is an error).
  typed = apply_overrides(cross_dataset.eval_config(run, target=target), sets)
  data = {k[len('data.'):]: get_field(typed, k) for k in sets}
  if FLAGS.dataset:
    data['name'] = FLAGS.dataset
  base = cross_dataset.eval_config(run, data, FLAGS.va_scale, target)
  validate_config(base, check_files=False)  # dataset, preset, crop names
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
  cli.run(main, config_flag='config')
