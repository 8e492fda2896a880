"""`fit`: the personal model of one participant from the labels so far.

Paper 000's Transfer 100% on the participant's own frames: the base model's
convolutional features stay frozen (they are cached in features.npz by
`propose`) and its dense part is fine-tuned on the labelled frames, with the
study's recipe (SGD, lr 1e-3, Nesterov 0.9, batch 16; `Recipe`). A base without
a valence/arousal output (the published FER-2013 mini-Xception) gets a new
head of its own architecture with two outputs, initialised from `seed`.

Its error is estimated by k-fold cross-validation over contiguous blocks of
time (neighbouring frames are near copies, so a random split would leak): each
labelled frame is predicted once by the model that did not see its block, and
RMSE and CCC per target are computed over those predictions, beside the
general model's (the base's own head, when it has one) and beside the mean of
the training labels. The fold models and the model on all labels are trained
together, by one vmapped call of the study's engine (train/batched.py).

The personal model is saved as SUBJECT_DIR/model, a workdir that
`launch/predict.py --workdir` reads like any trained run: config.json, an
Orbax checkpoint and fit.json (what it was fitted on, and the cross-validated
errors). It is replaced as a whole (written beside it, then renamed).
"""
import dataclasses
import json
import os
import shutil
import time
from typing import Any, Dict, Optional, Sequence, Tuple

import ml_collections
import numpy as np

from fer_jax import atomic
from fer_jax import labeling
from fer_jax.participant import frames as frames_lib
from fer_jax.participant.labelled import (Labelled, match_labels, read_labels,
                                          time_folds)
from fer_jax.participant.frames import ProposeError
from fer_jax.predict import predictor as predictor_lib
from fer_jax.train import trained

MODEL_DIR = 'model'
FIT_FILE = 'fit.json'
TARGETS = ('valence', 'arousal')
FOLDS = 5
MIN_CV_LABELS = 6     # fewer: the model is fitted, its error not estimated
# Streams under the fit's key (batched.model_keys takes the models' ids).
_NEW_HEAD, _MODELS = 1, 2


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How the dense part is fine-tuned: 000's SGD, for `epochs` passes over the
  labels but at least `min_steps` steps (a few dozen labels are two batches)."""
  epochs: int = 10
  min_steps: int = 100
  batch_size: int = 16
  learning_rate: float = 1e-3
  momentum: float = 0.9

  def epochs_for(self, n: int) -> int:
    spe = -(-n // self.batch_size)
    return max(self.epochs, -(-self.min_steps // max(spe, 1)))


# ---------------------------------------------------------------- the head


@dataclasses.dataclass(frozen=True)
class Head:
  """What a personal model fine-tunes, and how its outputs read as VA."""
  model: Any              # flax module with embed / predict_head
  init: Any               # the head's starting params
  variables: Dict         # the base's variables with `init` as the head
  columns: Tuple[int, int]  # output columns of valence and arousal
  scale: float            # label units per output unit (task.va_scale)
  config: ml_collections.ConfigDict  # the saved workdir's run config
  general: bool           # `init` is a trained valence/arousal head

  def apply_fn(self):
    """The study engine's apply function, outputs cut to (valence, arousal)."""
    from fer_jax.train import batched  # pylint: disable=g-import-not-at-top
    apply = batched.head_apply(self.model)
    cols = np.asarray(self.columns)

    def fn(params, extra, x, keys, train):
      pred, extra = apply(params, extra, x, keys, train)
      return pred[:, cols], extra
    return fn


def _va_columns(task) -> Optional[Tuple[int, int]]:
  starts, at = {}, 0
  for t in task.targets:
    starts[t] = at
    at += task.size(t)
  if not all(t in starts for t in TARGETS):
    return None
  return starts['valence'], starts['arousal']


def published_config(name: str) -> ml_collections.ConfigDict:
  """The run config of a personal model on a published base: its architecture
  with a valence/arousal head; crop and preprocessing are the published
  model's (`predictor.load_workdir` reads `published_features`)."""
  c = ml_collections.ConfigDict()
  c.published_features = name
  c.model = dict(name='mini_xception')
  c.task = dict(name='affect', targets=TARGETS)
  c.data = dict(image_size=64, channels=1, crop='none')
  return c


def head_of(base: frames_lib.Base, seed: int = 0) -> Head:
  """The base's own dense part when it outputs valence and arousal, else a
  new head (its architecture, two outputs) on the same frozen features."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fer_jax.tasks import get_task  # pylint: disable=g-import-not-at-top
  from fer_jax.train.loop import build_model  # pylint: disable=g-import-not-at-top
  p = base.predictor
  if base.config_bytes:
    config = trained.run_config(base.spec)
    task = get_task(**config.task)
    cols = _va_columns(task)
    if cols is not None:
      return Head(p.model, base.variables['params']['head'], base.variables,
                  cols, float(getattr(task, 'va_scale', 1.0)), config, True)
    raise ProposeError(f'base {base.spec}: its task has no valence and arousal '
                       f'outputs ({", ".join(task.targets)}); fit needs a VA '
                       'workdir or a published model')
  if base.spec not in predictor_lib.PUBLISHED:
    raise ProposeError(f'base {base.spec}: fit needs a VA workdir or a '
                       f'published model ({", ".join(predictor_lib.PUBLISHED)})')
  config = published_config(base.spec)
  task = get_task(**config.task)
  model = build_model(config, task)
  shape = (1,) + tuple(p.input_shape)
  fresh = model.init(jax.random.fold_in(jax.random.key(seed), _NEW_HEAD),
                     jnp.zeros(shape), False)
  variables = dict(base.variables)
  variables['params'] = dict(base.variables['params'],
                             head=jax.device_get(fresh['params']['head']))
  return Head(model, variables['params']['head'], variables, (0, 1), 1.0,
              config, False)


# ---------------------------------------------------------------- training


_TRAINERS = {}  # one engine per head architecture and recipe: no recompiles


def _trainer(head: Head, rec, recipe: Recipe):
  import optax  # pylint: disable=g-import-not-at-top
  from fer_jax.train import batched  # pylint: disable=g-import-not-at-top
  key = (repr(head.model), head.columns, rec, recipe.learning_rate,
         recipe.momentum)
  if key not in _TRAINERS:
    tx = optax.sgd(recipe.learning_rate, recipe.momentum, nesterov=True)
    _TRAINERS[key] = batched.BatchedTrainer(head.apply_fn(), tx, rec,
                                            segment_steps=32)
  return _TRAINERS[key]


def train_heads(head: Head, x: np.ndarray, y: np.ndarray,
                train_rows: Sequence[np.ndarray], recipe: Recipe, seed: int
                ) -> Tuple[Any, np.ndarray]:
  """Fine-tunes one copy of `head` per training list (rows of x and y), all
  in one vmapped call of the study's engine. x [N, ...] features, y [N, 2]
  labels in [-1, 1]; returns the stacked params and each model's last
  training loss."""
  import jax  # pylint: disable=g-import-not-at-top
  from fer_jax.train import batched  # pylint: disable=g-import-not-at-top
  m = len(train_rows)
  n = np.asarray([len(r) for r in train_rows], np.int32)
  if n.min() < 1:
    raise ValueError('every model needs a labelled frame')
  # One epoch count for all (the engine's recipe is shared): that of the
  # smallest list, so every model runs at least `min_steps`.
  rec = batched.Recipe(recipe.batch_size, recipe.epochs_for(int(n.min())))
  rows = np.zeros((m, int(n.max())), np.int32)
  for i, r in enumerate(train_rows):
    rows[i, :len(r)] = r
  trainer = _trainer(head, rec, recipe)
  key = jax.random.fold_in(jax.random.key(seed), _MODELS)
  params = jax.tree.map(
      lambda a: np.broadcast_to(np.asarray(a), (m,) + np.shape(a)).copy(),
      head.init)
  state = trainer.init(params, {})
  zeros = np.zeros(m, np.int32)
  # On the device once, not at every segment's call.
  sub = jax.device_put(batched.Subsets(rows, n, zeros, zeros,
                                       batched.model_keys(key, np.arange(m))))
  x, y = jax.device_put((np.asarray(x, np.float32),
                         np.asarray(y, np.float32) / np.float32(head.scale)))
  state, loss = trainer.train(state, x, y, sub)
  return jax.device_get(state.params), loss


_PREDICT = {}


def predict_heads(head: Head, params, x: np.ndarray) -> np.ndarray:
  """[M, N, 2] valence/arousal (label units) of M stacked heads on x."""
  import jax  # pylint: disable=g-import-not-at-top
  key = (repr(head.model), head.columns)
  if key not in _PREDICT:
    apply = head.apply_fn()
    _PREDICT[key] = jax.jit(jax.vmap(
        lambda p, x: apply(p, {}, x, None, False)[0], in_axes=(0, None)))
  out = _PREDICT[key](params, np.asarray(x, np.float32))
  return np.asarray(out, np.float64) * head.scale


def general_predictions(head: Head, x: np.ndarray) -> Optional[np.ndarray]:
  """[N, 2] of the base's own head, or None when it has no VA head."""
  import jax  # pylint: disable=g-import-not-at-top
  if not head.general:
    return None
  stacked = jax.tree.map(lambda a: np.asarray(a)[None], head.init)
  return predict_heads(head, stacked, x)[0]


# ---------------------------------------------------------------- metrics


def scores(pred: np.ndarray, y: np.ndarray) -> Dict[str, Dict[str, float]]:
  """{target: {rmse, ccc}} over the frames (float64)."""
  out = {}
  for j, t in enumerate(TARGETS):
    p, g = np.asarray(pred[:, j], np.float64), np.asarray(y[:, j], np.float64)
    rmse = float(np.sqrt(np.mean((p - g) ** 2)))
    cov = np.mean((p - p.mean()) * (g - g.mean()))
    denom = p.var() + g.var() + (p.mean() - g.mean()) ** 2
    out[t] = dict(rmse=rmse, ccc=float(2 * cov / denom) if denom > 0 else 0.0)
  return out


@dataclasses.dataclass
class FitResult:
  workdir: str
  labels: int
  folds: int
  cv: Dict[str, Dict[str, Dict[str, float]]]  # model -> target -> metric
  cv_pred: Optional[np.ndarray]                # [n, 2] held-out predictions
  labelled: Labelled
  table: str
  params: Any = None                           # the personal head's params


def cross_validate(head: Head, x: np.ndarray, y: np.ndarray,
                   frames: np.ndarray, k: int, recipe: Recipe, seed: int):
  """x [n, ...], y [n, 2] of the labelled frames. Returns (params of the model
  on all labels, held-out predictions [n, 2] or None, folds used, the fold of
  each frame). The k fold models and the final one train in one call."""
  import jax  # pylint: disable=g-import-not-at-top
  n = len(frames)
  k = min(k, n // 2) if n >= MIN_CV_LABELS else 0
  fold = time_folds(frames, k) if k >= 2 else np.zeros(n, np.int64)
  lists = [np.flatnonzero(fold != f) for f in range(k)] if k >= 2 else []
  lists.append(np.arange(n))  # the personal model: every label
  params, _ = train_heads(head, x, y, lists, recipe, seed)
  final = jax.tree.map(lambda a: np.asarray(a)[-1], params)
  if k < 2:
    return final, None, 0, fold
  pred = predict_heads(head, jax.tree.map(lambda a: a[:-1], params), x)
  held = np.zeros((n, 2))
  for f in range(k):
    held[fold == f] = pred[f][fold == f]
  return final, held, k, fold


def baseline_predictions(lab: Labelled, fold: np.ndarray, k: int) -> np.ndarray:
  """Each held-out frame predicted by the mean label of the other blocks."""
  out = np.zeros_like(lab.y, np.float64)
  for f in range(k):
    out[fold == f] = lab.y[fold != f].mean(axis=0)
  return out


def format_table(cv: Dict[str, Dict[str, Dict[str, float]]], n: int, k: int
                 ) -> str:
  lines = [f'{n} labelled frames, {k}-fold cross-validation over contiguous '
           'blocks of time (each frame predicted by the model that did not '
           'see its block)',
           f'{"model":<28}' + ''.join(f'{t + " RMSE":>15}{t + " CCC":>14}'
                                      for t in TARGETS)]
  names = {'personal': 'personal (fine-tuned)', 'general': 'general (base head)',
           'mean': 'mean of training labels'}
  for name, s in cv.items():
    lines.append(f'{names.get(name, name):<28}' + ''.join(
        f'{s[t]["rmse"]:>15.4f}{s[t]["ccc"]:>14.4f}' for t in TARGETS))
  return '\n'.join(lines)


# ---------------------------------------------------------------- saving


def save_workdir(out: str, head: Head, params, info: dict):
  """Writes the personal model as a run workdir: config.json, one Orbax
  checkpoint, fit.json; built beside `out` and renamed into place."""
  import jax  # pylint: disable=g-import-not-at-top
  from fer_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
  parent = os.path.dirname(os.path.abspath(out))
  tmp = os.path.join(parent, f'.{os.path.basename(out)}.tmp-{os.getpid()}')
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  config = ml_collections.ConfigDict(head.config.to_dict())
  with config.unlocked():
    config.personal_fit = dict(base=info['base'], labels=info['labels'])
  atomic.write_json(os.path.join(tmp, 'config.json'), config.to_dict(),
                    indent=2, default=list)
  variables = {'params': dict(head.variables['params'], head=params)}
  tree = {'step': np.asarray(info['labels'], np.int32),
          'params': jax.tree.map(np.asarray, variables['params'])}
  if head.variables.get('batch_stats'):
    tree['batch_stats'] = jax.tree.map(np.asarray, head.variables['batch_stats'])
  # Also as best/, which launch/predict.py reads by default.
  ckpts = checkpoint.Checkpoints(tmp, keep=1, best_metric='labels',
                                 best_mode='max')
  ckpts.save(int(info['labels']), tree, force=True)
  ckpts.save_best(int(info['labels']), tree, {'labels': info['labels']})
  ckpts.wait()
  ckpts.close()
  atomic.write_json(os.path.join(tmp, FIT_FILE), info, indent=2)
  old = None
  if os.path.exists(out):
    old = os.path.join(parent, f'.{os.path.basename(out)}.old-{os.getpid()}')
    os.rename(out, old)
  os.rename(tmp, out)
  if old:
    shutil.rmtree(old, ignore_errors=True)


def load_fit(subject_dir: str) -> Optional[dict]:
  """fit.json of SUBJECT_DIR/model, or None when nothing is fitted yet."""
  path = os.path.join(subject_dir, MODEL_DIR, FIT_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


# ---------------------------------------------------------------- fit


def fit(subject_dir: str, base: str, video: Optional[str] = None,
        frames_dir: Optional[str] = None, track: Optional[int] = None,
        export: Optional[str] = None, folds: int = FOLDS,
        recipe: Recipe = Recipe(), seed: int = 0, out: Optional[str] = None,
        log=print) -> FitResult:
  """Fits the personal model on SUBJECT_DIR's labels; writes SUBJECT_DIR/model."""
  if not os.path.isdir(subject_dir):
    raise ProposeError(f'{subject_dir} is not a subject folder (run propose '
                       'first)')
  if folds < 2:
    raise ProposeError(f'--folds must be >= 2, got {folds}')
  answers = read_labels(subject_dir, export)
  if not answers:
    raise ProposeError(f'{labeling.labels_path(subject_dir)}: no labelled '
                       'frame yet (label a round first)')
  t0 = time.perf_counter()
  source = frames_lib.FrameSource(video, frames_dir)
  base_model = frames_lib.load_base(base)
  cache = frames_lib.cached_features(subject_dir, base_model, source, log=log)
  feats = cache.of_track(track, source.path)
  lab = match_labels(answers, feats, labeling.labels_path(subject_dir))
  head = head_of(base_model, seed)
  x = np.asarray(feats.features, np.float32)
  x = x[lab.rows]
  final, held, k, fold = cross_validate(head, x, lab.y, lab.frame, folds,
                                        recipe, seed)
  cv = {}
  if held is not None:
    cv['personal'] = scores(held, lab.y)
    general = general_predictions(head, x)
    if general is not None:
      cv['general'] = scores(general, lab.y)
    cv['mean'] = scores(baseline_predictions(lab, fold, k), lab.y)
    table = format_table(cv, len(lab.frame), k)
  else:
    table = (f'{len(lab.frame)} labelled frames: too few to estimate the '
             f'error (cross-validation needs {MIN_CV_LABELS}); fitted on all.')
  out = out or os.path.join(subject_dir, MODEL_DIR)
  info = dict(base=base if base in predictor_lib.PUBLISHED
              else os.path.abspath(base), video=os.path.abspath(source.path),
              track=int(feats.track[0]), labels=int(len(lab.frame)),
              frames=[int(f) for f in lab.frame], folds=int(k),
              recipe=dataclasses.asdict(recipe), seed=int(seed),
              features_fingerprint=frames_lib.base_fingerprint(base_model),
              general_head=bool(head.general), cv=cv)
  save_workdir(out, head, final, info)
  log(table)
  log(f'Personal model on {len(lab.frame)} labels -> {out} '
      f'({time.perf_counter() - t0:.1f} s); predict with: python '
      f'launch/predict.py --workdir={out} --input=VIDEO')
  return FitResult(out, int(len(lab.frame)), k, cv, held, lab, table, final)
