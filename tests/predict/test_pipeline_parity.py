"""A workdir's predictor feeds its model what the eval pipeline feeds it.

The same face goes through the eval pipeline (as a dataset record: the face
box's pixels, or the whole photograph for the eye-aligned crop) and through
the predictor's crop and preprocessing: the arrays and the model's outputs
must agree. Workdirs hold random weights for four configs: RGB unit, gray
feature-wise, RGB mean/std (with dropout), gray min-max eye-aligned. The
MC-dropout columns are recomputed by hand from explicit dropout masks.
"""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fer_jax import predict
from fer_jax.data import pipeline
from fer_jax.face import points
from fer_jax.tasks import get_task
from fer_jax.train.loop import build_model
from fer_jax.train.state import TrainState
from fer_jax.train.step import make_eval_step
from fer_jax.train.trained import load_run
from tests.conftest import tiny_config
from tests.predict.conftest import astronaut

# (x, y, w, h) face boxes of the astronaut: the detector's (95 px, shrunk to
# the model's size), one that leaves the image left and below (not square),
# and a 20 px one (enlarged).
BOXES = ((177, 66, 95, 95), (-12, 430, 70, 100), (200, 100, 20, 20))
TARGETS = ('valence', 'arousal', 'expression')
SAVED = {
    'rgb_unit': {},
    'gray_featurewise': {'data.channels': 1, 'data.normalize': 'featurewise',
                         'data.featurewise_records': 16, 'data.image_size': 48},
    'rgb_mean_std_dropout': {'data.normalize': 'mean_std', 'data.mean': 0.45,
                             'data.std': 0.225, 'model.dropout': 0.5,
                             'model.hidden': 32},
    'gray_minmax_eyes': {'data.channels': 1, 'data.normalize': 'minmax',
                         'data.crop': 'eyes'},
}


def _save_workdir(path: str, config, seed: int) -> str:
  """A workdir as the train loop writes it (config.json with its derived
  statistics, a checkpoint of params and batch_stats), holding random weights
  drawn with numpy (He-scaled kernels; BatchNorm statistics away from (0, 1),
  so that a forward pass on batch statistics would differ)."""
  from fer_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
  from fer_jax.train import loop  # pylint: disable=g-import-not-at-top
  config = loop.derived_config(config)
  loop.check_workdir_config(config, path)
  model = build_model(config, get_task(**config.task))
  size, channels = config.data.image_size, config.data.channels
  shapes = jax.eval_shape(lambda k, x: model.init(k, x, False),
                          jax.random.key(0), jnp.zeros((1, size, size, channels)))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name, shape = path[-1].key, leaf.shape
    if name == 'kernel':
      x = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
    elif name in ('scale', 'var'):
      x = rng.uniform(0.5, 2.0, shape)
    else:  # bias, mean
      x = rng.normal(0, 0.3, shape)
    return x.astype(np.float32)
  variables = jax.tree_util.tree_map_with_path(draw, shapes)
  ckpt = checkpoint.Checkpoints(path)
  ckpt.save(0, {'params': variables['params'],
                'batch_stats': variables['batch_stats']})
  ckpt.wait()
  ckpt.close()
  return path


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """name -> a saved workdir of that SAVED config, built on first use."""
  cache = {}

  def get(name):
    if name not in cache:
      c = tiny_config(**SAVED[name])
      c.task.targets = TARGETS
      path = str(tmp_path_factory.mktemp(name))
      cache[name] = _save_workdir(path, c, list(SAVED).index(name))
    return cache[name]
  return get


def _record(image, i):
  """A dataset record of `image` with typed labels (the eval step's loss
  reads them); no eyes or landmarks, as a photograph comes."""
  return {'image': np.ascontiguousarray(image), 'valence': np.float32(0.3),
          'arousal': np.float32(-0.2), 'expression': np.int32(3),
          'has_va': np.bool_(True), 'has_expression': np.bool_(True),
          'has_aus': np.bool_(False), 'index': np.int32(i)}


def _eval_pipeline(workdir, records):
  """(images, predictions) of the eval pipeline and eval step, as
  cross_dataset.predict runs a run's model on a split."""
  run = load_run(workdir, 'latest')
  config, task, model, v = run.config, run.task, run.model, run.variables
  state = TrainState(step=jnp.zeros((), jnp.int32), params=v['params'],
                     batch_stats=v['batch_stats'], opt_state=(),
                     rng=jnp.zeros((2,), jnp.uint32), lr_scale=jnp.ones(()))
  prep = pipeline.preprocess_from_config(config.data, name='parity',
                                         detector=points.find_points)
  batch = pipeline.eval_dataset(records, prep, len(records))[0]
  pred, _ = jax.jit(make_eval_step(model, task))(state, batch)
  return config, batch['image'], jax.device_get(pred)


def _box_pixels(image, box, pad=64):
  """The box's pixels, the image's border replicated where it leaves it."""
  x, y, w, h = box
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode='edge')
  return padded[y + pad:y + pad + h, x + pad:x + pad + w]


def _by_hand(face, data):
  """The model input of a face crop, with cv2 and the normalisation
  formulas: gray (BT.601), INTER_AREA to shrink / INTER_LINEAR to enlarge."""
  size = data.image_size
  x = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY) if data.channels == 1 else face
  shrink = min(face.shape[:2]) >= size
  x = cv2.resize(x, (size, size),
                 interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
  x = x.reshape(size, size, data.channels).astype(np.float64)
  if data.normalize == 'unit':
    return x / 255
  if data.normalize == 'minmax':
    return (x - x.min()) / (x.max() - x.min())
  if data.normalize == 'mean_std':
    return (x / 255 - np.array(data.mean)) / np.array(data.std)
  assert data.normalize == 'featurewise'
  stats = data.featurewise_stats
  return (x - np.array(stats.mean)) / (np.array(stats.std) + 1e-6)


def _assert_same_outputs(got, want):
  assert set(want) <= set(got)
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-5, err_msg=k)


@pytest.mark.parametrize('name', ['rgb_unit', 'gray_featurewise',
                                  'rgb_mean_std_dropout'])
def test_box_crops_are_what_the_pipeline_feeds(workdir, name):
  """Crop 'none' (records are face crops): the predictor's crop of a box is
  the box's pixels, and its preprocessing what the eval pipeline makes of
  them: exact arrays (float32), outputs to 1e-5."""
  wd = workdir(name)
  p = predict.load_workdir(wd, 'latest', batch_size=len(BOXES))
  img = astronaut()
  faces = predict.crop_faces(img, BOXES, p.crop)
  assert faces.methods == ['box'] * len(BOXES)
  sources = [_box_pixels(img, b) for b in BOXES]
  for got, want in zip(faces.crops, sources):
    np.testing.assert_array_equal(got, want)
  config, want_x, want_pred = _eval_pipeline(
      wd, [_record(s, i) for i, s in enumerate(sources)])
  assert config.data.crop == 'none'
  x = p.preprocess(faces.crops)
  assert x.shape == want_x.shape == (len(BOXES),) + p.input_shape
  np.testing.assert_allclose(x, want_x, rtol=0, atol=1e-6)
  for i, s in enumerate(sources):
    np.testing.assert_allclose(x[i], _by_hand(s, config.data), rtol=0, atol=1e-5)
  _assert_same_outputs(p.predict(faces.crops), want_pred)


def test_eye_aligned_crop_is_what_the_pipeline_feeds(workdir):
  """Crop 'eyes': the predictor finds the eyes in the detected face and
  aligns on them as the pipeline does on a photograph without eyes."""
  wd = workdir('gray_minmax_eyes')
  p = predict.load_workdir(wd, 'latest', batch_size=1)
  assert p.crop == predict.CropSpec('eyes', size=32)
  img = astronaut()
  faces = predict.faces_in_image(img, p.crop)
  assert faces.methods == ['eyes']
  config, want_x, want_pred = _eval_pipeline(wd, [_record(img, 0)])
  assert (config.data.channels, config.data.normalize) == (1, 'minmax')
  x = p.preprocess(faces.crops)
  np.testing.assert_allclose(x, want_x, rtol=0, atol=1e-6)
  assert x.min() == 0 and x.max() == 1  # min-max stretched
  _assert_same_outputs(p.predict(faces.crops), want_pred)


def _dropout_layer(model, variables, x, train, rngs=None, ones=False):
  """The input of the model's one dropout layer (with ones=True: its output
  when fed ones, which is mask / keep)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  seen = []

  def spy(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dropout) and context.method_name == '__call__':
      if ones:
        out = next_fun(jnp.ones_like(args[0]), *args[1:], **kwargs)
        seen.append(out)
        return out
      seen.append(args[0])
    return next_fun(*args, **kwargs)
  with nn.intercept_methods(spy):
    model.apply(variables, x, train, rngs=rngs or {},
                mutable=['batch_stats'] if train else False)
  assert len(seen) == 1
  return seen[0]


def test_mc_dropout_columns_by_hand(workdir):
  """Pass t keeps the units of crop i where training-mode dropout on that
  crop alone, with key fold_in(fold_in(fold_in(key t, 2), 0), i), keeps them
  (key t: split(fold_in(key(seed), call), T)[t]; the study's per-example dropout
  keys, step 0); BatchNorm stays on its running statistics. From the dense
  layer before dropout, the masks and the output layer's weights: each pass's
  outputs, then their std, the entropy of the mean probabilities and the mutual
  information, in float64."""
  wd = workdir('rgb_mean_std_dropout')
  t_passes, seed, rate = 32, 7, 0.5
  p = predict.load_workdir(wd, 'latest', batch_size=len(BOXES),
                           mc_passes=t_passes, seed=seed)
  assert p.dropout == [rate]
  crops = predict.crop_faces(astronaut(), BOXES, p.crop).crops
  got = p.predict(crops)  # the predictor's first call: fold_in(key, 0)

  run = load_run(wd, 'latest')
  task, model, v = run.task, run.model, run.variables
  x = p.preprocess(crops)
  # relu(fc1) in eval mode; the masks of training-mode dropout, one key per
  # pass and crop.
  hidden = np.asarray(jax.jit(lambda: _dropout_layer(model, v, x, False))(),
                      np.float64)
  keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 0), t_passes)
  fold = jax.random.fold_in
  mask_of = jax.jit(lambda k, i: _dropout_layer(
      model, v, x[:1], True, {'dropout': fold(fold(fold(k, 2), 0), i)},
      ones=True)[0])
  masks = np.stack([[np.asarray(mask_of(k, i), np.float64)
                     for i in range(len(x))] for k in keys]) * (1 - rate)
  assert set(np.unique(masks)) == {0.0, 1.0}
  assert abs(masks.mean() - (1 - rate)) < 0.05  # the layer's rate
  assert len({m.tobytes() for m in masks}) == t_passes  # a new mask each pass
  out = v['params']['head']['out']
  w, b = np.asarray(out['kernel'], np.float64), np.asarray(out['bias'], np.float64)
  logits = (hidden * masks / (1 - rate)) @ w + b  # [T, N, outputs]
  det = jax.device_get(task.predict(jnp.asarray(hidden @ w + b, jnp.float32)))
  flat = jax.device_get(task.predict(
      jnp.asarray(logits.reshape(-1, logits.shape[-1]), jnp.float32)))
  s = {k: np.asarray(v, np.float64).reshape(logits.shape[:2] + v.shape[1:])
       for k, v in flat.items()}

  def entropy(q):
    return -np.sum(q * np.log(np.clip(q, 1e-12, None)), -1)
  want = {'valence_std': s['valence'].std(0), 'arousal_std': s['arousal'].std(0),
          'expression_entropy': entropy(s['expression'].mean(0)),
          'expression_mutual_info': entropy(s['expression'].mean(0))
                                    - entropy(s['expression']).mean(0)}
  assert (want['valence_std'] > 1e-3).all()
  assert (want['expression_mutual_info'] > 1e-6).all()
  for k, val in want.items():
    np.testing.assert_allclose(got[k], val, rtol=1e-4, atol=1e-6, err_msg=k)
  for k, val in det.items():  # point values: the deterministic pass
    np.testing.assert_allclose(got[k], val, rtol=1e-5, atol=1e-6, err_msg=k)
