"""One paper's experiment grid, run (or resumed) and written as the paper's tables.

  python launch/report.py --paper=002 --workdir=/tmp/u002 --arg=reduced   # CPU
  python launch/report.py --paper=002 --workdir=/tmp/u002 --arg=real \
      --set=data.source.manual_dir=/data/AFEW-VA ...                          # paper
  python launch/report.py --paper=001 --workdir=/tmp/n001 --arg=reduced
  python launch/report.py --paper=004 --workdir=/tmp/z004 --arg=reduced

001  configs/transfer/cascade_001.py: every scheme (cascade, direct, and any other
     in its METHODS) x network (alexnet, vgg_cnn_m); accuracy of the last stage's
     best checkpoint on the small set's validation and test splits.
002  configs/transfer/ulloa_002.py: k-fold CV of each network on afew_va and on
     semaine (Tables 2, 3), then each dataset's best-fold model tested on the other
     dataset's test split (Table 4).
004  configs/transfer/zaitouny_004.py: the three networks (both stages), their test
     accuracy, and the weighted-average ensemble (weights from the validation
     accuracy ranks, w_i = R(A_i) / sum R(A_i); --ensemble=fit|uniform too).

Every run lives in WORKDIR/<name> and resumes; finished runs are read, not
retrained. Writes WORKDIR/report_<paper>.md and report_<paper>.json; --notrain
only tabulates what is there.

--set=KEY=VALUE reaches every run and every stage of it (stages.<i|name>.KEY:
one stage); --set=RUN:KEY=VALUE only the runs one of whose names is RUN (a
network, a dataset or a method), e.g. 002's two real datasets:

  --set=afew_va:data.source.manual_dir=/data/AFEW-VA \
  --set=semaine:data.source.manual_dir=/data/SEMAINE

and 001's two stages: --set=stages.fer.data.source.manual_dir=/data/fer2013
--set=stages.sfew.data.source.manual_dir=/data/SFEW (lists by index: its
combined scheme's data.mixture.0.source.manual_dir=...). A run that lacks a key
skips it; a key that reaches no run, or a RUN that names none, is one line
`error: ...` (exit status 2), before anything trains.
"""
from absl import flags, logging

from fer_jax import cli

flags.DEFINE_enum('paper', None, ['001', '002', '004'], 'Which paper.')
flags.DEFINE_string('workdir', None, 'Root of every run and of the report.')
flags.DEFINE_string('arg', '', "Extra config arguments, e.g. 'reduced' or 'real'.")
flags.DEFINE_list('models', [], 'Networks (default: all of the paper\'s; one '
                  'with reduced, where they all become the same small net).')
flags.DEFINE_multi_string('set', [], '[RUN:]KEY=VALUE override of every run '
                          "config (or of the runs named RUN), read as the field's "
                          'type, e.g. total_steps=100.')
flags.DEFINE_bool('train', True, 'Run missing runs (else tabulate what exists).')
flags.DEFINE_enum('ensemble', 'rank', ['rank', 'fit', 'uniform'], '004 weights.')
flags.mark_flags_as_required(['paper', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from launch import paper_runs
  md, path = paper_runs.report(FLAGS.paper, FLAGS.workdir, FLAGS.arg, FLAGS.set,
                               FLAGS.train, tuple(FLAGS.models), FLAGS.ensemble)
  print(md)
  print(f'Written: {path}')


if __name__ == '__main__':
  cli.run(main)
