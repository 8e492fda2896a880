"""Caffe .caffemodel weights into our models.

Parsed without Caffe by fer_jax.models.caffe: bvlc_alexnet and VGG_CNN_M_2048
into alexnet_lrn / vgg_cnn_m_2048, matched by layer name; conv (out,
in/groups, kh, kw) -> HWIO, fc6 CHW -> HWC as for torchvision, conv1's BGR
input channels flipped to RGB (or summed for gray), see `import_caffe`.
"""
import os
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np

from fer_jax.models import partition
from fer_jax.models.importers import merge

Path = partition.Path

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
  flat = merge.gray_first_conv(flat, target)
  in_head = lambda p: len(p) > 2 and p[1] == 'head'
  if not head:
    flat = {p: v for p, v in flat.items()
            if not in_head(p) or (p[2] != 'out' and p in target)}
  try:
    merged = partition.merge_flat(
        target, flat, strict, origin=origin,
        ignore_missing=(lambda p: False) if head else in_head)
  except partition.WeightMismatchError as e:
    raise partition.WeightMismatchError(
        f'{where} does not fit model {model_name!r} (Caffe conv1-5 are '
        f'features/conv1-5, fc6/fc7 head/fc6/fc7, fc8 head/out): {e}') from None
  return partition.unflatten(merged)
