"""Runs paper 000's personalization study (fer_jax/protocols/personalization.py).

  python launch/personalize.py --config=configs/personalization/synthetic.py \
      --workdir=/tmp/personal

Pre-trains the nets, fine-tunes every personal model in batched chunks, prints
the table of the three conditions and writes results.csv, results.json,
models.csv, conditions.png (Fig. 5) and sweep.png (Fig. 6) to the workdir.
Started again with the same command, a study resumes where it stopped.
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

config_flags.DEFINE_config_file('config', None, 'Study config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Where the study writes everything.')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  from fer_jax.protocols.personalization import run_study
  run_study(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  app.run(main)
