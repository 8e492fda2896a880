"""A participant's video (or folder of frames) as per-frame frozen features.

The base model is a fer_jax VA workdir (the study's pre-trained net: its
'features' part stays frozen, the dense part is what a personal model
fine-tunes) or the published FER-2013 mini-Xception (frozen; its penultimate
4x4x128 map, the input of the output conv, is the feature). Either way the
feature is `model.embed` of the face crop, cut and preprocessed as the base
model wants it (`Predictor.crop`, `Predictor.preprocess`).

Faces are found by the predictor's video pipeline (`stream.stream_frames`:
detect every `detect_every`-th frame, track in between), so frame i's face
here is the face `launch/predict.py` reports for frame i. Every face of
every track is cached; `Features.of_track` keeps one track (the one seen in
most frames by default).

SUBJECT_DIR/features.npz holds them with a fingerprint of the input file(s)
(their bytes), of the base model (its config and frozen weights) and of the
extraction settings; a cache with another fingerprint is extracted again. It
is written atomically (fer_jax/atomic.py).
"""
import collections
import dataclasses
import hashlib
import json
import os
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from fer_jax import atomic
from fer_jax.models import partition
from fer_jax.predict import io as io_lib
from fer_jax.predict import predictor as predictor_lib
from fer_jax.predict import stream
from fer_jax.protocols.personal.pretrain import Net

FEATURES_FILE = 'features.npz'
FRAMES_FPS = 25.0  # the time base of a folder of frames (it has no clock)


class ProposeError(ValueError):
  """An input of the participant workflow that cannot be used."""


# ---------------------------------------------------------------- base model


@dataclasses.dataclass(frozen=True)
class Base:
  """The base model: its predictor (crop, preprocessing, outputs) and weights."""
  spec: str                      # as given: a workdir or a PUBLISHED name
  predictor: predictor_lib.Predictor
  variables: Dict
  config_bytes: bytes = b''      # a workdir's config.json

  @property
  def net(self) -> Net:
    """The study's view of it, for `features.head_outputs` and MC dropout."""
    return Net('base', (), None, self.predictor.model, self.variables)

  @property
  def expressions(self) -> Tuple[str, ...]:
    return tuple(self.predictor.labels.get('expression', ()))


def load_base(spec: str, batch_size: int = 32) -> Base:
  """`spec` is a workdir written by launch/train.py or a name in PUBLISHED."""
  if spec in predictor_lib.PUBLISHED:
    p = predictor_lib.load_published(spec, batch_size)
    config = b''
  elif os.path.isdir(spec):
    p = predictor_lib.load_workdir(spec, batch_size=batch_size)
    with open(os.path.join(spec, 'config.json'), 'rb') as f:
      config = f.read()
  else:
    raise ProposeError(f'base {spec!r} is neither a workdir (no such folder) nor '
                       f'a published model ({", ".join(predictor_lib.PUBLISHED)})')
  # The Predictor keeps its weights to itself; features need the same ones.
  variables = p.variables
  return Base(spec, p, variables, config)


def _digest_tree(h, tree, prefix: str):
  for path, leaf in sorted(partition.flatten(tree).items()):
    leaf = np.ascontiguousarray(np.asarray(leaf))
    h.update(f'{prefix}/{"/".join(path)}:{leaf.dtype}:{leaf.shape}'.encode())
    h.update(leaf.tobytes())


def base_fingerprint(base: Base) -> str:
  """sha256 of what the features depend on: crop, input, config, frozen weights."""
  p = base.predictor
  h = hashlib.sha256()
  published = base.spec if base.spec in predictor_lib.PUBLISHED else ''
  h.update(json.dumps({'published': published,
                       'crop': dataclasses.asdict(p.crop),
                       'input': list(p.input_shape)}, sort_keys=True).encode())
  h.update(base.config_bytes)
  _digest_tree(h, base.variables['params'].get('features', {}), 'params')
  _digest_tree(h, base.variables.get('batch_stats', {}).get('features', {}),
               'batch_stats')
  return h.hexdigest()


# ------------------------------------------------------------------- frames


class FrameSource:
  """The frames of a video file, or of a folder of images in name order.

  Iterating yields (index, time_s, BGR uint8). A video's times are its
  container's; a folder's frame i is at i / fps.
  """

  def __init__(self, video: Optional[str] = None,
               frames_dir: Optional[str] = None, fps: float = FRAMES_FPS):
    if (video is None) == (frames_dir is None):
      raise ProposeError('give a video or a folder of frames (one of them)')
    self.path = video or frames_dir
    self.files: Sequence[str] = ()
    if video is not None:
      if not os.path.isfile(video):
        raise FileNotFoundError(f'video {video} does not exist')
      reader = self._open()
      self.fps = float(reader.fps)
      reader.close()
    else:
      if not os.path.isdir(frames_dir):
        raise FileNotFoundError(f'frame folder {frames_dir} does not exist')
      self.files = [os.path.join(frames_dir, n) for n in sorted(os.listdir(frames_dir))
                    if n.lower().endswith(io_lib.IMAGE_EXTS) and not n.startswith('.')]
      if not self.files:
        raise ProposeError(f'{frames_dir} holds no image '
                           f'({", ".join(io_lib.IMAGE_EXTS[:3])}, ...)')
      self.fps = float(fps)

  def _open(self) -> io_lib.VideoReader:
    try:
      return io_lib.VideoReader(self.path)
    except io_lib.UnreadableError as e:
      raise ProposeError(str(e)) from None

  def __iter__(self) -> Iterator[Tuple[int, float, np.ndarray]]:
    if not self.files:
      reader = self._open()
      try:
        yield from reader
      finally:
        reader.close()
      return
    for i, f in enumerate(self.files):
      try:
        rgb = io_lib.read_image(f)
      except io_lib.UnreadableError as e:
        raise ProposeError(str(e)) from None
      yield i, round(i / self.fps, 6), np.ascontiguousarray(rgb[..., ::-1])

  def read(self, indices: Iterable[int]) -> Dict[int, np.ndarray]:
    """{index: BGR frame} of the wanted frames (one pass over a video)."""
    wanted = set(int(i) for i in indices)
    out = {}
    if self.files:
      for i in sorted(wanted):
        if 0 <= i < len(self.files):
          out[i] = np.ascontiguousarray(io_lib.read_image(self.files[i])[..., ::-1])
      return out
    last = max(wanted, default=-1)
    frames = iter(self)
    try:
      for i, _, bgr in frames:
        if i in wanted:
          out[i] = bgr
        if i >= last:
          break
    finally:
      frames.close()  # closes the video now, not when collected
    return out

  def fingerprint(self) -> str:
    """sha256 of the input's bytes (and, for a folder, its file names)."""
    h = hashlib.sha256()
    for f in (self.files or [self.path]):
      h.update(os.path.basename(f).encode() if self.files else b'video')
      with open(f, 'rb') as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b''):
          h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ features


@dataclasses.dataclass
class Features:
  """One row per face found: its frame, time, track, box and frozen features."""
  frame: np.ndarray      # [M] int
  time_s: np.ndarray     # [M] float
  track: np.ndarray      # [M] int
  box: np.ndarray        # [M, 4] x, y, w, h
  features: np.ndarray   # [M, ...] float32 (the embed output's shape)
  num_frames: int        # frames read, with or without a face
  fps: float

  def tracks(self) -> Dict[int, int]:
    """{track id: frames it is seen in}."""
    ids, counts = np.unique(self.track, return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts)}

  def of_track(self, track: Optional[int], where: str = 'the video'
               ) -> 'Features':
    """The rows of one track (default: the one seen in most frames, the
    lowest id among equals), in frame order."""
    tracks = self.tracks()
    if not tracks:
      raise ProposeError(f'no face was found in {where} '
                         f'({self.num_frames} frames read)')
    if track is None:
      track = max(tracks, key=lambda t: (tracks[t], -t))
    elif track not in tracks:
      listed = ', '.join(f'{t} ({n} frames)' for t, n in sorted(tracks.items()))
      raise ProposeError(f'track {track} is not in {where}; its tracks: {listed}')
    keep = np.flatnonzero(self.track == track)
    keep = keep[np.argsort(self.frame[keep], kind='stable')]
    return Features(self.frame[keep], self.time_s[keep], self.track[keep],
                    self.box[keep], self.features[keep], self.num_frames,
                    self.fps)


class _Embedder:
  """What `stream.stream_frames` needs of a predictor, computing the frozen
  features instead of predictions. They queue up in the order of the faces,
  which is the order of the rows the stream yields."""
  outputs = ()  # the rows carry no prediction columns

  def __init__(self, base: Base):
    import jax  # pylint: disable=g-import-not-at-top
    p = base.predictor
    self.crop, self.batch_size = p.crop, p.batch_size
    self.preprocess, self.bucket = p.preprocess, p.bucket
    model = p.model
    self._fn = jax.jit(lambda v, x: model.apply(v, x, False, method='embed'))
    self._variables = base.variables
    self._input_shape = p.input_shape
    self.queue = collections.deque()

  def empty(self) -> np.ndarray:
    """[0, ...] features: the shape of a video without a face."""
    import jax  # pylint: disable=g-import-not-at-top
    x = jax.ShapeDtypeStruct((1,) + tuple(self._input_shape), np.float32)
    shape = jax.eval_shape(self._fn, self._variables, x).shape[1:]
    return np.zeros((0,) + tuple(shape), np.float32)

  def predict_batch(self, x: np.ndarray) -> dict:
    for i in range(0, len(x), self.batch_size):
      chunk = x[i:i + self.batch_size]
      n, b = len(chunk), self.bucket(len(chunk))
      if n < b:  # one of a few shapes: no compile after the first of each
        chunk = np.concatenate([chunk, np.zeros((b - n,) + chunk.shape[1:],
                                                chunk.dtype)])
      f = np.asarray(self._fn(self._variables, chunk), np.float32)[:n]
      if not np.isfinite(f).all():
        raise predictor_lib.NonFiniteError('non-finite features (damaged '
                                           'weights?)')
      self.queue.extend(f)
    return {}


def extract(base: Base, source: FrameSource,
            detect_every: int = stream.DETECT_EVERY,
            detect_width: Optional[int] = stream.DETECT_WIDTH,
            min_size: int = 20) -> Features:
  """The frozen features of every face of every frame of `source`."""
  emb = _Embedder(base)
  frame, time_s, track, box, feats, n = [], [], [], [], [], 0
  for res in stream.stream_frames(emb, iter(source), source.path, detect_every,
                                  detect_width, min_size):
    n += 1
    for row in res.rows:
      frame.append(res.index)
      time_s.append(res.time_s)
      track.append(row['track'])
      box.append((row['x'], row['y'], row['w'], row['h']))
      feats.append(emb.queue.popleft())
  if n == 0:
    raise ProposeError(f'{source.path}: no frame could be decoded')
  return Features(np.asarray(frame, np.int64), np.asarray(time_s, np.float64),
                  np.asarray(track, np.int64),
                  np.asarray(box, np.int64).reshape(-1, 4),
                  np.stack(feats) if feats else emb.empty(), n, source.fps)


_FIELDS = ('frame', 'time_s', 'track', 'box', 'features')


def fingerprint(base: Base, source: FrameSource, settings: dict) -> str:
  h = hashlib.sha256()
  for part in (source.fingerprint(), base_fingerprint(base),
               json.dumps(settings, sort_keys=True)):
    h.update(part.encode())
  return h.hexdigest()


def _load(path: str, fp: str) -> Optional[Features]:
  """The cache at `path` when it was written for `fp` (None otherwise)."""
  try:
    with np.load(path) as z:
      if str(z['fingerprint']) != fp:
        return None
      return Features(*(z[k] for k in _FIELDS), int(z['num_frames']),
                      float(z['fps']))
  except (OSError, KeyError, ValueError, EOFError):
    return None  # damaged or of an older layout: extracted again


def cached_features(subject_dir: str, base: Base, source: FrameSource,
                    detect_every: int = stream.DETECT_EVERY,
                    detect_width: Optional[int] = stream.DETECT_WIDTH,
                    min_size: int = 20, log=print) -> Features:
  """SUBJECT_DIR/features.npz: read when its fingerprint matches, else
  extracted (every face of every frame) and written atomically."""
  settings = dict(detect_every=detect_every, detect_width=detect_width,
                  min_size=min_size, fps=source.fps if source.files else None)
  fp = fingerprint(base, source, settings)
  path = os.path.join(subject_dir, FEATURES_FILE)
  if os.path.exists(path):
    feats = _load(path, fp)
    if feats is not None:
      return feats
    log(f'{path} is for another input, base model or settings (or damaged): '
        'extracting the features again')
  feats = extract(base, source, detect_every, detect_width, min_size)
  atomic.savez(path, fingerprint=np.asarray(fp), num_frames=feats.num_frames,
               fps=feats.fps, **{k: getattr(feats, k) for k in _FIELDS})
  log(f'Features of {len(feats.frame)} faces in {feats.num_frames} frames '
      f'({len(feats.tracks())} track(s)) -> {path}')
  return feats
