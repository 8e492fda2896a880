"""Runs paper 000's personalization study (fer_jax/protocols/personal/).

  python launch/personalize.py --config=configs/personalization/synthetic.py \
      --workdir=/tmp/personal

Pre-trains the nets, fine-tunes every personal model in batched chunks, prints
the table of the three conditions and writes results.csv, results.json,
models.csv, conditions.png (Fig. 5) and sweep.png (Fig. 6) to the workdir.
Started again with the same command, a study resumes where it stopped.

Many processes (hosts) run this same command, each with its own process id, as
for launch/train.py; the personal models are split over the devices of all of
them, and process 0 alone prints and writes the results:

  python launch/personalize.py ... --distributed=auto    # SLURM, Cloud TPU, k8s
  python launch/personalize.py ... --coordinator_address=host0:1234 \
      --num_processes=2 --process_id=0                   # (and =1 on the other)

The workdir must then be on a file system all hosts see.

`--config.KEY=VALUE` overrides a field of the study config. Every name the
study looks up (subjects, samplers, the pre-training model and data, ...) is
checked before anything is pre-trained or written; a mistake is one line
`error: ...` and exit status 2. On SIGTERM the study saves what is done (the
pre-training checkpoint, or the personal models' chunks), prints `Preempted`
and exits with status 0; the same command resumes.
"""

from absl import flags, logging
from ml_collections import config_flags

from fer_jax import cli
from fer_jax.train import distributed

config_flags.DEFINE_config_file('config', None, 'Study config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Where the study writes everything.')
distributed.define_flags()  # --distributed, --coordinator_address, ...
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  if not FLAGS['verbosity'].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  distributed.initialize_from_flags(FLAGS)
  from fer_jax.protocols.personal.study import run_study
  from fer_jax.train.stages import apply_overrides
  config = apply_overrides(FLAGS.config, cli.config_overrides())
  try:
    run_study(config, FLAGS.workdir)
  except distributed.Preempted as e:  # SIGTERM: what is done is saved
    print(e, flush=True)


if __name__ == '__main__':
  cli.run(main, config_flag='config')
