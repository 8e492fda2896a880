"""Personalize a model to one participant: one subcommand per step, one
subject folder holding everything (its layout: fer_jax/labeling/files.py).

  # Propose the frames to label: round 1 by GSx (no label needed), later
  # rounds by iGS (default) or --sampler; features are cached in the folder:
  python launch/personal.py propose subjects/p01 --video=p01.mp4 \
      --base=fer2013_mini_xception --k=20
  python launch/personal.py propose subjects/p01 --video=p01.mp4 \
      --base=runs/va_pretrained --k=20 --sampler=mcdue --track=2
  # Label the latest round's proposed frames in the browser (the page's URL,
  # with its token, is printed; Ctrl-C stops; answers are on disk at once):
  python launch/personal.py label subjects/p01
  python launch/personal.py label subjects/p01 --round=2 --port=8766
  # Continuous mode: the clip plays, the pad is sampled into trace.csv:
  python launch/personal.py label subjects/p01 --continuous
  # For Label Studio: round_N/label_studio/tasks.json and config.xml:
  python launch/personal.py label subjects/p01 --export=label-studio
  # Fit the personal model on the labels so far (k-fold error over blocks of
  # time, personal vs general); writes subjects/p01/model for predict.py:
  python launch/personal.py fit subjects/p01 --video=p01.mp4 \
      --base=fer2013_mini_xception
  python launch/personal.py fit subjects/p01 --video=p01.mp4 \
      --base=runs/va_pretrained --labels=label_studio_export.json
  python launch/predict.py --workdir=subjects/p01/model --input=p01.mp4
"""
import argparse
import errno
import os

from fer_jax import cli
from fer_jax import labeling


class _Parser(argparse.ArgumentParser):
  def error(self, message):
    cli.fail(f'{self.prog}: {message}')


def propose(args):
  from fer_jax import participant  # pylint: disable=g-import-not-at-top
  try:
    participant.propose(args.subject_dir, args.base, args.k, args.sampler,
                        video=args.video, frames_dir=args.frames,
                        track=args.track, gap_s=args.gap_s, seed=args.seed)
  except participant.ProposeError as e:
    raise cli.UsageError(str(e)) from None


def fit(args):
  from fer_jax import participant  # pylint: disable=g-import-not-at-top
  recipe = participant.Recipe(epochs=args.epochs, min_steps=args.min_steps,
                              learning_rate=args.lr)
  try:
    participant.fit(args.subject_dir, args.base, video=args.video,
                    frames_dir=args.frames, track=args.track,
                    export=args.labels, folds=args.folds, recipe=recipe,
                    seed=args.seed)
  except participant.ProposeError as e:
    raise cli.UsageError(str(e)) from None


def label(args):
  if args.export == 'label-studio':
    number = args.round
    if number is None:
      numbers = labeling.rounds(args.subject_dir)
      if not numbers:
        raise FileNotFoundError(f'{args.subject_dir} has no round_N/to_label.csv')
      number = numbers[-1]
    tasks, config = labeling.export_round(args.subject_dir, number)
    print(f'Wrote {tasks} and {config}. In Label Studio: create a project with '
          f'config.xml as its labelling config, add a Local Files storage for '
          f'{os.path.abspath(args.subject_dir)} (started with '
          'LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true and '
          'LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT set to that folder), import '
          'tasks.json; export as JSON for fit.')
    return
  if not 0 <= args.port < 65536:
    raise cli.UsageError(f'--port must be in [0, 65535], got {args.port}')
  try:
    labeling.serve(args.subject_dir, args.round, args.host, args.port,
                   args.continuous)
  except OSError as e:
    if e.errno == errno.EADDRINUSE:
      raise cli.UsageError(f'port {args.port} on {args.host} is in use: '
                           'pass another --port') from None
    raise


def parser():
  p = _Parser(prog='personal.py', description=__doc__,
              formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = p.add_subparsers(dest='command', required=True, parser_class=_Parser)
  pro = sub.add_parser('propose', help='choose the next round of frames to label')
  pro.add_argument('subject_dir')
  src = pro.add_mutually_exclusive_group(required=True)
  src.add_argument('--video', help='the participant\'s video file')
  src.add_argument('--frames', help='a folder of its frames (name order, '
                   'timed at 25 frames/s)')
  pro.add_argument('--base', required=True,
                   help='a VA workdir of launch/train.py, or fer2013_mini_xception')
  pro.add_argument('--k', type=int, default=20, help='frames to propose')
  pro.add_argument('--sampler', choices=['gsx', 'gsy', 'igs', 'mcdue', 'random'],
                   help='default: gsx in round 1, igs after')
  pro.add_argument('--track', type=int, default=None,
                   help='the face track to label (default: the one seen in '
                   'most frames)')
  pro.add_argument('--gap-s', type=float, default=1.0,
                   help='minimum time between two proposed frames (s)')
  pro.add_argument('--seed', type=int, default=0, help='for random and mcdue')
  pro.set_defaults(run=propose)
  fit_ = sub.add_parser('fit', help='fit the personal model on the labels')
  fit_.add_argument('subject_dir')
  src = fit_.add_mutually_exclusive_group(required=True)
  src.add_argument('--video', help='the participant\'s video (as for propose)')
  src.add_argument('--frames', help='or the folder of its frames')
  fit_.add_argument('--base', required=True, help='the base model given to '
                    'propose: a VA workdir, or fer2013_mini_xception')
  fit_.add_argument('--track', type=int, default=None,
                    help='the face track labelled (default: as propose)')
  fit_.add_argument('--labels', default=None, help='also read this Label '
                    'Studio JSON export (its answers win over labels.csv)')
  fit_.add_argument('--folds', type=int, default=5,
                    help='k of the k-fold error estimate (blocks of time)')
  fit_.add_argument('--epochs', type=int, default=10,
                    help='passes over the labels (000: 10) ...')
  fit_.add_argument('--min-steps', type=int, default=100,
                    help='... but at least this many SGD steps')
  fit_.add_argument('--lr', type=float, default=1e-3,
                    help='SGD learning rate (000: 1e-3, Nesterov 0.9)')
  fit_.add_argument('--seed', type=int, default=0)
  fit_.set_defaults(run=fit)
  lab = sub.add_parser('label', help='label the proposed frames in a browser')
  lab.add_argument('subject_dir')
  lab.add_argument('--host', default='127.0.0.1',
                   help='address to bind (default: this machine only)')
  lab.add_argument('--port', type=int, default=8765, help='0: any free port')
  lab.add_argument('--round', type=int, default=None,
                   help='round to label (default: the latest)')
  lab.add_argument('--continuous', action='store_true',
                   help='also record pad traces while clips play (trace.csv)')
  lab.add_argument('--export', choices=['label-studio'],
                   help='write Label Studio tasks and config instead of serving')
  lab.set_defaults(run=label)
  return p


def main(argv=None):
  args = parser().parse_args(argv)
  try:
    args.run(args)
  except Exception as e:  # pylint: disable=broad-except
    if cli.is_expected(e) or isinstance(e, labeling.ContractError):
      cli.fail(cli.message(e))
    raise


if __name__ == '__main__':
  main()
