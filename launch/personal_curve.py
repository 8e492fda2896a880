"""Personalize a model to one participant end to end, on a subject whose
answers are known: the learning curve of launch/personal.py's workflow.

  python launch/personal_curve.py --out=workdirs/personal_curve

Renders one `amigos_like` subject as a video (its clips in order, with its
per-frame truth.csv), pre-trains the general valence/arousal net of paper
000's synthetic study (configs/personalization/synthetic.py; or --base=a VA
workdir, or --base=fer2013_mini_xception), then for each sampler runs the
workflow in rounds, propose -> an oracle labeller answering from the truth ->
fit, to 10, 20, 40 and 80 labelled frames. After each round the personal
model and the general one predict every unlabelled frame of the video.
Writes curve.csv, curve.png and prints the table.
"""
import argparse
import os

from fer_jax import cli
from fer_jax import participant
from fer_jax.participant import curve


def pretrain_base(out: str, steps: int) -> str:
  """The study's general net (pre-trained on affectnet_like), in out/."""
  from configs.personalization import synthetic  # pylint: disable=g-import-not-at-top
  from fer_jax.protocols.personal import pretrain  # pylint: disable=g-import-not-at-top
  config = synthetic.get_config()
  if steps:
    with config.pretrain.unlocked():
      config.pretrain.total_steps = steps
      every = max(1, steps // 3)
      config.pretrain.eval_every_steps = every
      config.pretrain.checkpoint_every_steps = every
  config.pretrain_dir = out
  net, = pretrain.pretrain(config, out)
  return os.path.join(out, net.name)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--out', required=True, help='output folder')
  p.add_argument('--base', default=None, help='a VA workdir or '
                 'fer2013_mini_xception (default: pre-train the study\'s net)')
  p.add_argument('--pretrain_steps', type=int, default=0,
                 help='pre-training steps (0: the study config\'s 1200)')
  p.add_argument('--subject', type=int, default=0)
  p.add_argument('--frames_per_clip', type=int, default=100,
                 help='frames of each of the subject\'s 10 clips')
  p.add_argument('--samplers', default=','.join(curve.SAMPLERS))
  p.add_argument('--sizes', default=','.join(map(str, curve.SIZES)))
  p.add_argument('--gap_s', type=float, default=0.3,
                 help='minimum time between proposed frames (10 frames/s)')
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  base = args.base or pretrain_base(os.path.join(args.out, 'pretrain'),
                                    args.pretrain_steps)
  video = participant.render_subject(os.path.join(args.out, 'video'),
                                     subject=args.subject,
                                     frames_per_clip=args.frames_per_clip)
  res = curve.learning_curve(
      args.out, video.video, video.truth, base,
      samplers=tuple(args.samplers.split(',')),
      sizes=tuple(int(s) for s in args.sizes.split(',')), gap_s=args.gap_s,
      seed=args.seed)
  csv_path, png_path = curve.save(res, args.out)
  print(curve.table(res.rows))
  print(f'-> {csv_path}, {png_path}; subject folders: '
        + ', '.join(res.folders.values()))


if __name__ == '__main__':
  try:
    main()
  except Exception as e:  # pylint: disable=broad-except
    if cli.is_expected(e) or isinstance(e, participant.ProposeError):
      cli.fail(cli.message(e))
    raise
