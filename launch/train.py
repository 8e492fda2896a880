"""Trains the model of an ml-collections config and evaluates it.

  python launch/train.py --config=configs/va_regression.py --workdir=/tmp/va \
      --config.total_steps=3000

Started again with the same command, a run resumes from its newest checkpoint.
A config with `stages` (fer_jax/train/stages.py) runs them in turn, each in
WORKDIR/<i>_<name>, and resumes in the stage it was stopped in. A config with
`kfold.num_folds` > 1 trains every fold in WORKDIR/fold_<k> and writes the mean
and spread over folds to WORKDIR/kfold_results.json.

Many processes (hosts) run this same command, each with its own process id:

  python launch/train.py ... --distributed=auto          # SLURM, Cloud TPU, k8s
  python launch/train.py ... --coordinator_address=host0:1234 \
      --num_processes=2 --process_id=0                   # (and =1 on the other)

On SIGTERM (preemption) every process saves a checkpoint at one agreed step and
the command exits with status 0 without results.json; run it again to resume.

`--config.KEY=VALUE` reaches every stage of a staged config, winning over the
stage's own value; `--config.stages.<i|name>.KEY=VALUE` reaches one stage
(fer_jax/train/stages.py). A mistake (unknown key or name, a workdir of another
config) is one line `error: ...` and exit status 2, and writes nothing.
"""
from absl import flags, logging
from ml_collections import config_flags

from fer_jax import cli
from fer_jax.train import distributed

config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Where checkpoints, logs and results go.')
distributed.define_flags()  # --distributed, --coordinator_address, ...
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
  distributed.initialize_from_flags(FLAGS)
  from fer_jax.protocols import experiment
  from fer_jax.train.stages import apply_overrides
  config = apply_overrides(FLAGS.config, cli.config_overrides())
  try:
    results, path = experiment.run(config, FLAGS.workdir)
  except distributed.Preempted as e:
    print(e, flush=True)
    return
  import jax
  if jax.process_index() == 0:
    print('\n'.join(experiment.scalar_lines(results)))
    print('All results: ' + path)


if __name__ == '__main__':
  cli.run(main, config_flag='config')
