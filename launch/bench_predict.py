"""Frames per second of the video predictor, against a naive per-frame loop.

  python launch/bench_predict.py                 # 60 s, 640x480, 30 frames/s
  python launch/bench_predict.py --seconds=10    # a shorter video

Two synthetic videos (tests/predict/synthetic_video.py: the astronaut's face
photograph moving over a plain wall) with 1 and with 3 faces, predicted with
the fer package's mini-Xception by

  * naive: what the `fer` package does per frame: decode, Haar detection at
    full resolution, one model call per face (batch 1);
  * the streaming pipeline (`fer_jax.predict.predict_video`) at
    detect_every K = 1, 5, 15, detecting at --detect_width, and at K=1 full
    width (every frame detected as the naive loop does, batched and
    overlapped).

Prints one table row per run: frames/s, the CPU time per frame (all threads
of the process: what a busy, shared machine cannot hide) and the speed-up
over the naive loop of the same video in the same run (the CPU may be
shared: compare ratios; the header gives the load average), and checks that
no batch shape compiled after warm-up.
"""
import importlib.util
import os
import sys
import tempfile
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_float('seconds', 60.0, 'Video length in seconds.')
flags.DEFINE_integer('fps', 30, 'Video frame rate.')
flags.DEFINE_integer('batch_size', None, 'Largest device batch (faces); default '
                     '32 on CPU (no faster batched, less padding), 256 on GPU.')
flags.DEFINE_integer('detect_width', None, 'Detection width of the pipeline '
                     'runs (default: the predictor default).')
flags.DEFINE_string('detect_every', '1,5,15', 'K values to run.')
flags.DEFINE_string('faces', '1,3', 'Videos: number of faces.')
flags.DEFINE_bool('naive', True, 'Also time the naive loop.')
FLAGS = flags.FLAGS


def _synthetic_video():
  """tests/predict/synthetic_video.py, loaded from its file: the tests are
  not an installed package."""
  path = os.path.join(ROOT, 'tests', 'predict', 'synthetic_video.py')
  spec = importlib.util.spec_from_file_location('synthetic_video', path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses look their module up there
  spec.loader.exec_module(module)
  return module


def _faces(n, frames):
  sv = _synthetic_video()
  if n == 1:  # back and forth across the frame
    return [sv.Face(1.0, (40, 30), (420, 230), 0, frames // 2),
            sv.Face(1.0, (420, 230), (40, 60), frames // 2, frames)]
  return sv.three_faces(frames, enter=frames // 3)


def make_video(path, n_faces, seconds, fps):
  """Writes the video chunk by chunk (constant memory)."""
  import cv2  # pylint: disable=g-import-not-at-top
  sv = _synthetic_video()
  frames = int(round(seconds * fps))
  faces = _faces(n_faces, frames)
  out = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (640, 480))
  for start in range(0, frames, 150):
    n = min(150, frames - start)
    part = []  # the faces of frames [start, start + n), times shifted
    for f in faces:
      a, b = max(f.start - start, 0), min(f.stop - start, n)
      if b > a:
        part.append(sv.Face(f.scale, _at(f, start + a), _at(f, start + b - 1),
                            a, b, f.mirror))
    imgs, _ = sv.render(part, n)
    for img in imgs:
      out.write(img)
  out.release()
  return path, frames


def _at(f, t):
  u = (t - f.start) / max(f.stop - 1 - f.start, 1)
  return (f.start_xy[0] + u * (f.stop_xy[0] - f.start_xy[0]),
          f.start_xy[1] + u * (f.stop_xy[1] - f.start_xy[1]))


def naive(path, predictor):
  """fer's loop: every frame, full-resolution Haar, one call per face."""
  import cv2  # pylint: disable=g-import-not-at-top
  from fer_jax.face import detect  # pylint: disable=g-import-not-at-top
  from fer_jax import predict  # pylint: disable=g-import-not-at-top
  cap, frames, faces = cv2.VideoCapture(path), 0, 0
  t0, c0 = time.perf_counter(), time.process_time()
  while True:
    ok, bgr = cap.read()
    if not ok:
      break
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    gray = detect.to_gray(rgb)
    boxes = detect.detect_faces(gray)
    for box in boxes:
      predictor.predict(predict.crop_faces(rgb, [box], predictor.crop).crops)
    frames += 1
    faces += len(boxes)
  cap.release()
  return frames, faces, time.perf_counter() - t0, time.process_time() - c0


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  from fer_jax import predict  # pylint: disable=g-import-not-at-top
  width = FLAGS.detect_width or predict.DETECT_WIDTH
  cpu = jax.devices()[0].platform == 'cpu'
  batched = predict.load_published(
      batch_size=FLAGS.batch_size or (32 if cpu else 256))
  single = predict.load_published(batch_size=1)
  batched.warmup()
  single.warmup()
  compiled = batched.compiled_shapes()
  print(f'device: {jax.devices()[0].device_kind} x{len(jax.devices())}, '
        f'{os.cpu_count()} CPU cores; buckets {batched.buckets}; '
        f'{FLAGS.seconds:g} s video, 640x480 at {FLAGS.fps} frames/s; load '
        'average ' + ', '.join(f'{v:.1f}' for v in os.getloadavg()))
  header = (f'| faces | run | K | detect width | frames | faces found | '
            f'seconds | CPU ms/frame | frames/s | x naive |')
  print(header)
  print('|' + '---|' * 10)
  with tempfile.TemporaryDirectory() as tmp:
    for n in (int(v) for v in FLAGS.faces.split(',')):
      path, _ = make_video(os.path.join(tmp, f'faces{n}.avi'), n,
                           FLAGS.seconds, FLAGS.fps)
      base = None
      if FLAGS.naive:
        frames, faces, dt, cpu = naive(path, single)
        base = frames / dt
        print(f'| {n} | naive (fer-like) | 1 | full | {frames} | {faces} | '
              f'{dt:.1f} | {1e3 * cpu / frames:.1f} | {base:.1f} | 1.0 |',
              flush=True)
      runs = [(1, None)] + [(int(k), width)
                            for k in FLAGS.detect_every.split(',')]
      for k, w in runs:
        t0, c0 = time.perf_counter(), time.process_time()
        df = predict.predict_video(path, batched, detect_every=k, detect_width=w)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        frames = int(df['frame'].max()) + 1 if len(df) else 0
        fps = frames / dt
        ratio = f'{fps / base:.1f}' if base else '-'
        print(f'| {n} | pipeline | {k} | {w or "full"} | {frames} | {len(df)} '
              f'| {dt:.1f} | {1e3 * cpu / max(frames, 1):.1f} | {fps:.1f} '
              f'| {ratio} |', flush=True)
  after = batched.compiled_shapes()
  print(f'compiled batch shapes: {compiled} after warm-up, {after} at the end'
        + ('' if after == compiled else '  <-- RECOMPILED'))


if __name__ == '__main__':
  app.run(main)
