"""Which parameters train, swapping heads, and merging weights into a model.

Paths are '/'-joined names inside a params tree, e.g. 'features/conv1/kernel'.
A *layer* is a leaf module: the innermost dict holding arrays (a Conv, Dense,
BatchNorm, SeparableConv...); 'last:N' counts these weighted layers only.
Keras also counts layers without weights (ReLU, Add, pooling, padding), so
"the last 56 layers" of a Keras application (paper 004's MobileNetV2) is
'keras_last:56': the last 56 entries of the Keras model's own layer list,
which a family registers in `KERAS_LAYERS` (mobilenet_v2.keras_layers) with
each Keras layer's path here.

Forward order. Flax creates a compact module's children in call order, and an
eagerly run `model.init` returns dicts in that order. But any jax transform of
the tree (jit, eval_shape, tree.map, optax, checkpoint restore) returns dicts
with *sorted* keys, so the order of a params dict cannot be trusted in general.
'last:N' therefore takes the order explicitly, from `layer_order(model, x)`,
which reads it inside a trace (no compile, no allocation).
"""
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from fer_jax.registry import Registry

Path = Tuple[str, ...]

# family -> () -> [(Keras layer name, Keras class, our layer path or None)], in
# the order of the Keras application's `model.layers` (its include_top=False
# base); None for a layer without weights.
KERAS_LAYERS = Registry('Keras layer list')


def _is_leaf_module(d) -> bool:
  return isinstance(d, Mapping) and d and not any(
      isinstance(v, Mapping) for v in d.values())


def flatten(tree, prefix: Path = ()) -> Dict[Path, Any]:
  """{path tuple: leaf}, in the dicts' own iteration order."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(flatten(v, prefix + (k,)))
    else:
      out[prefix + (k,)] = v
  return out


def unflatten(flat: Mapping[Path, Any]) -> Dict[str, Any]:
  out: Dict[str, Any] = {}
  for path, v in flat.items():
    d = out
    for k in path[:-1]:
      d = d.setdefault(k, {})
    d[path[-1]] = v
  return out


def layer_paths(params) -> List[str]:
  """'/'-joined paths of the leaf modules, in the dicts' iteration order."""
  out = []
  def walk(d, prefix):
    if _is_leaf_module(d):
      out.append('/'.join(prefix))
      return
    for k, v in d.items():
      if isinstance(v, Mapping):
        walk(v, prefix + (k,))
  walk(params, ())
  return out


def layer_order(model, *args, **kwargs) -> List[str]:
  """The leaf modules of `model.init(rng, *args, **kwargs)` in call order."""
  order = []
  def init(*a):
    params = model.init({'params': jax.random.key(0),
                         'dropout': jax.random.key(1)}, *a, **kwargs)['params']
    order.extend(layer_paths(params))  # read before eval_shape re-sorts keys
    return params
  jax.eval_shape(init, *args)
  return order


def _map_leaves(fn: Callable[[str], bool], params) -> Dict[str, Any]:
  """A bool tree shaped like params; `fn` gets the leaf's '/'-joined path."""
  def walk(d, prefix):
    return {k: walk(v, prefix + (k,)) if isinstance(v, Mapping)
            else fn('/'.join(prefix + (k,))) for k, v in d.items()}
  return walk(params, ())


def trainable_mask(params, spec: str,
                   order: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  """A pytree of bools shaped like `params`: True where a param trains.

  spec: 'all' | 'none' | 'head' | 'features' | 'last:N' (the head plus the
  last N layers of the features in forward order; needs `order`, from
  `layer_order`) | 'keras_last:N' (the head plus the weights of the last N
  layers of the same net's Keras application, as Keras' `base.layers[-N:]`,
  weightless layers counted; see `keras_layers_of`) | 're:PATTERN' (re.search
  on '/'-joined param paths).
  """
  if spec == 'all':
    return _map_leaves(lambda p: True, params)
  if spec == 'none':
    return _map_leaves(lambda p: False, params)
  if spec in ('head', 'features'):
    return _map_leaves(lambda p: p.split('/')[0] == spec, params)
  if spec.startswith('re:'):
    pattern = re.compile(spec[3:])
    return _map_leaves(lambda p: bool(pattern.search(p)), params)
  if spec.startswith('last:'):
    n = _count(spec)
    if order is None:
      raise ValueError(
          f"trainable_mask({spec!r}) needs the layers' forward order: pass "
          "order=layer_order(model, sample_images) (params dicts lose call "
          'order under jax transforms).')
    feats = [p for p in order if p.split('/')[0] == 'features']
    have = set(layer_paths(params))
    if not set(feats) <= have:
      raise ValueError('`order` names layers that are not in params: '
                       f'{sorted(set(feats) - have)[:5]}...')
    chosen = set(feats[len(feats) - n:]) if n > 0 else set()
    return _map_leaves(
        lambda p: p.split('/')[0] == 'head' or p.rsplit('/', 1)[0] in chosen,
        params)
  if spec.startswith('keras_last:'):
    n = _count(spec)
    chosen = {path for _, _, path in keras_layers_of(params)[::-1][:n] if path}
    return _map_leaves(
        lambda p: p.split('/')[0] == 'head' or p.rsplit('/', 1)[0] in chosen,
        params)
  raise ValueError(f'Unknown trainable spec {spec!r}; valid: all, none, head, '
                   'features, last:N, keras_last:N, re:PATTERN')


def _count(spec: str) -> int:
  n = spec.split(':', 1)[1]
  if not n.isdigit():
    raise ValueError(f'trainable {spec!r}: N must be a whole number >= 0.')
  return int(n)


def keras_layers_of(params) -> List[Tuple[str, str, Optional[str]]]:
  """The registered Keras layer list whose weighted layers are exactly the
  features' layers of `params` (so a family is recognised by its weights,
  without its name)."""
  feats = {p for p in layer_paths(params) if p.split('/')[0] == 'features'}
  for family in KERAS_LAYERS:
    keras = KERAS_LAYERS.get(family)()
    if {path for _, _, path in keras if path} == feats:
      return keras
  raise ValueError(
      "trainable 'keras_last:N' counts the layers of a Keras application; "
      'these features match none of the known ones: '
      f'{", ".join(KERAS_LAYERS.names())}. Use last:N (weighted layers).')


def frozen_batchnorm_layers(mask, batch_stats) -> List[str]:
  """'/'-joined paths of the BatchNorm layers that `mask` freezes.

  A BatchNorm layer is a leaf module of `batch_stats` (its 'mean' / 'var');
  it is frozen when none of its own params (scale, bias) trains. One without
  params (use_scale=use_bias=False) follows the module that holds it: frozen
  when nothing under that module trains. With Keras-style frozen BatchNorm
  (`config.frozen_bn='inference'`, see fer_jax/train/step.py) these layers run
  in inference mode. `mask=None` (everything trains) freezes none.
  """
  if mask is None:
    return []
  trainable = {'/'.join(p): bool(m) for p, m in flatten(mask).items()}

  def any_trains(prefix):
    return any(v for k, v in trainable.items() if k.startswith(prefix + '/'))

  out = []
  for layer in layer_paths(batch_stats):
    own = [v for k, v in trainable.items() if k.rsplit('/', 1)[0] == layer]
    if own:
      frozen = not any(own)
    else:
      parent = layer.rsplit('/', 1)[0] if '/' in layer else ''
      frozen = not (any(trainable.values()) if not parent else any_trains(parent))
    if frozen:
      out.append(layer)
  return out


def freeze(tx, mask):
  """`tx` on the True leaves of `mask`, zero updates (frozen) on the others.

  Plain `optax.masked(tx, mask)` would pass the raw gradients through as the
  update of the masked-out leaves, so they would still move.
  """
  import optax  # pylint: disable=g-import-not-at-top
  labels = jax.tree.map(lambda m: 'train' if m else 'freeze', mask)
  return optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()},
                               labels)


def reinit_head(params_pretrained, params_fresh):
  """`params_pretrained` with its 'head' subtree taken from `params_fresh`.

  Works on a params tree or on full variables ({'params', 'batch_stats'}).
  """
  if 'head' in params_pretrained or 'features' in params_pretrained:
    out = dict(params_pretrained)
    if 'head' in params_fresh:
      out['head'] = params_fresh['head']
    else:
      out.pop('head', None)
    return out
  out = {k: reinit_head(v, params_fresh.get(k, {}))
         for k, v in params_pretrained.items()}
  for k, v in params_fresh.items():  # e.g. a new head brings batch_stats
    if k not in out and 'head' in v:
      out[k] = {'head': v['head']}
  return out


class WeightMismatchError(ValueError):
  """Weights that do not fit a model; the message lists every offender."""


def describe_mismatch(missing, unexpected, wrong_shape) -> str:
  lines = []
  if missing:
    lines.append(f'{len(missing)} missing (in the model, not in the weights):')
    lines += [f'  {m}' for m in missing]
  if unexpected:
    lines.append(f'{len(unexpected)} unexpected (in the weights, not in the '
                 'model):')
    lines += [f'  {u}' for u in unexpected]
  if wrong_shape:
    lines.append(f'{len(wrong_shape)} wrongly shaped (weights vs model):')
    lines += [f'  {n}: {s} vs {t}' for n, s, t in wrong_shape]
  return '\n'.join(lines)


def merge_flat(target: Mapping[Path, Any], source: Mapping[Path, Any],
               strict: bool = True,
               ignore_missing: Callable[[Path], bool] = lambda p: False,
               origin: Optional[Mapping[Path, str]] = None,
               ) -> Dict[Path, Any]:
  """Flat version of `load_into`; names in errors are '/'-joined paths.

  `origin` maps source paths to the names they had in the file (torch or
  Keras names), quoted next to unexpected and wrongly shaped entries.
  """
  origin = origin or {}
  def name(p):
    n = '/'.join(map(str, p))
    return f'{n} (from {origin[p]})' if p in origin else n
  missing = ['/'.join(p) for p in target
             if p not in source and not ignore_missing(p)]
  unexpected = [name(p) for p in source if p not in target]
  wrong = [(name(p), tuple(np.shape(v)), tuple(target[p].shape))
           for p, v in source.items()
           if p in target and tuple(np.shape(v)) != tuple(target[p].shape)]
  if wrong or (strict and (missing or unexpected)):
    raise WeightMismatchError(
        'Weights do not match the model:\n' + describe_mismatch(
            missing if strict else [], unexpected if strict else [], wrong))
  return {p: jnp.asarray(source[p], dtype=t.dtype) if p in source else t
          for p, t in target.items()}


def load_into(params_target, params_source, strict: bool = True):
  """`params_target` with every value of `params_source` merged in.

  Names and shapes must agree. strict=True: any missing, unexpected or wrongly
  shaped name raises ONE WeightMismatchError listing all of them. strict=False
  keeps the target's values for missing names and ignores unexpected ones, but
  a wrong shape still raises (silently keeping a fresh layer hides bugs; drop
  or reinit the head instead, see `reinit_head`). Works on params or on full
  variables; the target may hold jax.ShapeDtypeStruct (from eval_shape).
  """
  return unflatten(merge_flat(flatten(params_target), flatten(params_source),
                              strict))
