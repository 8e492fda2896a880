"""Renders a labelled grid of a synthetic preset, to look at what a model will see.

  python launch/contact_sheet.py --preset=affectnet_like --split=train --n=48 \
      --image_size=96 --out=sheet.png [--landmarks] [--start=0] [--stride=1]

Each tile is captioned with the record's annotated labels: expression or compound
class, valence/arousal, the present AUs, and subject (/clip:frame for video);
see fer_jax/data/contact_sheet.py.
"""

from absl import app, flags


flags.DEFINE_string('preset', 'affectnet_like', 'Synthetic preset name.')
flags.DEFINE_string('split', 'train', 'Split.')
flags.DEFINE_integer('n', 48, 'Number of tiles.')
flags.DEFINE_integer('start', 0, 'First record index.')
flags.DEFINE_integer('stride', 1, 'Index step between tiles (e.g. frames_per_clip).')
flags.DEFINE_integer('image_size', 96, 'Render size.')
flags.DEFINE_integer('channels', None, 'Channels (default: the preset\'s).')
flags.DEFINE_integer('seed', 0, 'Dataset seed.')
flags.DEFINE_integer('cols', 8, 'Tiles per row.')
flags.DEFINE_integer('tile', 160, 'Displayed tile side in pixels (images are upscaled).')
flags.DEFINE_bool('landmarks', False, 'Draw the 68 landmarks and eye centres.')
flags.DEFINE_bool('all_labels', False, 'Caption ground truth the preset does not annotate.')
flags.DEFINE_string('out', 'sheet.png', 'Output PNG.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import cv2
  from fer_jax.data.contact_sheet import contact_sheet
  from fer_jax.data.synthetic import SyntheticSource
  source = SyntheticSource(FLAGS.preset, FLAGS.split, image_size=FLAGS.image_size,
                           channels=FLAGS.channels, seed=FLAGS.seed,
                           all_labels=FLAGS.all_labels)
  idx = list(range(FLAGS.start, len(source), FLAGS.stride))[:FLAGS.n]
  sheet = contact_sheet([source[i] for i in idx], FLAGS.cols, FLAGS.tile,
                        FLAGS.landmarks)
  cv2.imwrite(FLAGS.out, sheet[..., ::-1])
  print(f'{FLAGS.out}: {len(idx)} records of {source!r}')


if __name__ == '__main__':
  app.run(main)
