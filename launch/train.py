"""Trains the model of an ml-collections config and evaluates it.

  python launch/train.py --config=configs/va_regression.py --workdir=/tmp/va \
      --config.total_steps=3000

Started again with the same command, a run resumes from its newest checkpoint.
A config with `stages` (fer_jax/train/stages.py) runs them in turn, each in
WORKDIR/<i>_<name>, and resumes in the stage it was stopped in.
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and results go.')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
  from fer_jax.train.loop import train_and_evaluate
  from fer_jax.train.stages import run_stages
  if FLAGS.config.get('stages'):
    by_stage = run_stages(FLAGS.config, FLAGS.workdir)
    results = {f'{name}/{k}': v for name, r in by_stage.items()
               for k, v in r.items()}
  else:
    results = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  # Scalars here; the confusion matrix and the rest are in results.json.
  width = max(len(k) for k in results)
  for key, value in sorted(results.items()):
    if isinstance(value, (int, float)) and value is not None:
      print(f'{key:<{width}}  {value:.4f}' if isinstance(value, float) else
            f'{key:<{width}}  {value}')
  print(f'All results: {os.path.join(FLAGS.workdir, "results.json")}')


if __name__ == '__main__':
  app.run(main)
