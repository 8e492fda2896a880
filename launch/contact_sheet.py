"""Renders a labelled grid of a synthetic preset, to look at what a model will see.

  python launch/contact_sheet.py --preset=affectnet_like --split=train --n=48 \
      --image_size=96 --out=sheet.png [--landmarks] [--start=0] [--stride=1]

Each tile is captioned with the record's annotated labels: expression or compound
class, valence/arousal, the present AUs, and subject (/clip:frame for video).
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


def caption(record) -> list:
  from fer_jax.data import labels
  lines = []
  if record['has_expression']:
    lines.append(labels.EXPRESSIONS[int(record['expression'])])
  if record['has_compound']:
    lines.append(labels.COMPOUND_EXPRESSIONS[int(record['compound'])])
  if record['has_va']:
    lines.append(f'v{float(record["valence"]):+.2f} a{float(record["arousal"]):+.2f}')
  if record['has_aus']:
    on = [str(n) for n, x in zip(labels.AUS, record['aus']) if x > 0]
    lines.append('AU ' + ','.join(on) if on else 'AU -')
  who = f's{int(record["subject"])}'
  if record['clip'] >= 0:
    who += f' c{int(record["clip"])}:{int(record["frame"])}'
  lines.append(f'{who} #{int(record["index"])}')
  return lines


def tile_image(record, tile: int, draw_landmarks: bool):
  import cv2
  import numpy as np
  img = record['image']
  if img.shape[-1] == 1:
    img = np.repeat(img, 3, -1)
  k = tile / img.shape[0]
  img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_NEAREST)
  if draw_landmarks:
    for x, y in record['landmarks']:
      cv2.circle(img, (int((x + 0.5) * k), int((y + 0.5) * k)), 1, (0, 255, 0), -1)
    for x, y in record['eyes']:
      cv2.circle(img, (int((x + 0.5) * k), int((y + 0.5) * k)), 2, (255, 0, 0), -1)
  lines = caption(record)
  band = np.full((14 * len(lines) + 4, tile, 3), 255, np.uint8)
  for j, text in enumerate(lines):
    cv2.putText(band, text, (3, 13 + 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
  return np.concatenate([img, band], 0)


def main(argv):
  del argv
  import cv2
  import numpy as np
  from fer_jax.data.synthetic import SyntheticSource
  source = SyntheticSource(FLAGS.preset, FLAGS.split, image_size=FLAGS.image_size,
                           channels=FLAGS.channels, seed=FLAGS.seed,
                           all_labels=FLAGS.all_labels)
  idx = list(range(FLAGS.start, len(source), FLAGS.stride))[:FLAGS.n]
  tiles = [tile_image(source[i], FLAGS.tile, FLAGS.landmarks) for i in idx]
  height = max(t.shape[0] for t in tiles)
  tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)), constant_values=255)
           for t in tiles]
  tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % FLAGS.cols)
  rows = [np.concatenate(tiles[r:r + FLAGS.cols], 1)
          for r in range(0, len(tiles), FLAGS.cols)]
  sheet = np.concatenate(rows, 0)
  cv2.imwrite(FLAGS.out, sheet[..., ::-1])
  print(f'{FLAGS.out}: {len(idx)} records of {source!r}')


if __name__ == '__main__':
  app.run(main)
