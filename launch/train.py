"""Trains the model of an ml-collections config and evaluates it.

  python launch/train.py --config=configs/va_regression.py --workdir=/tmp/va \
      --config.total_steps=3000

Started again with the same command, a run resumes from its newest checkpoint.
"""
import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and results go.')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from fer_jax.train.loop import train_and_evaluate
  results = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  print(json.dumps(results, indent=2, sort_keys=True))


if __name__ == '__main__':
  app.run(main)
