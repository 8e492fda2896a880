"""Loss and metric curves of one or several runs, from their metrics.jsonl.

  python launch/plot.py --workdir /tmp/run_a /tmp/run_b --out curves.png
  python launch/plot.py --workdir /tmp/run_a --metrics val/loss val/valence/ccc

One panel per metric, side by side; every run is one line in each panel
(labelled by its workdir's name). The x axis is the step (or the epoch with
--x=epoch, from the train rows' `train/epoch`). See fer_jax/train/curves.py.
"""
import argparse
import sys


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--workdir', nargs='+', required=True)
  p.add_argument('--out', default='curves.png')
  p.add_argument('--metrics', nargs='*', default=None)
  p.add_argument('--x', choices=('step', 'epoch'), default='step')
  args = p.parse_args(argv)
  from fer_jax.train import curves  # pylint: disable=g-import-not-at-top
  drawn = curves.plot_runs(args.workdir, args.out, args.metrics, args.x)
  print(f'Wrote {args.out} ({", ".join(drawn)})')


if __name__ == '__main__':
  main(sys.argv[1:])
