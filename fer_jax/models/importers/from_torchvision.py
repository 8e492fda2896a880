"""torchvision state dicts into our models.

torchvision -> flax: conv weight OIHW -> kernel HWIO, linear (out, in) ->
(in, out), BatchNorm weight/bias/running_mean/running_var -> scale/bias (params)
and mean/var (batch_stats). AlexNet/VGG flatten pool5 in CHW order, ours in
HWC, so the first Linear after the flatten gets its input axis permuted.
A .safetensors file reads without torch; a .pth (a pickle of torch storages)
needs it.
"""
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from fer_jax.models import partition
from fer_jax.models import vgg
from fer_jax.models.importers import merge

Path = partition.Path
StateDict = Mapping[str, np.ndarray]

# Families whose pool5 is flattened into the first Linear: (C, H, W).
_FLATTEN_CHW = {'alexnet': (256, 6, 6), 'vgg': (512, 7, 7)}


class WeightFileError(partition.WeightMismatchError):
  """A weights file that cannot be read here (a .pth without torch); a
  WeightMismatchError, so a launcher prints it as one line."""


def load_state_dict(path: str) -> Dict[str, np.ndarray]:
  """A torch state dict as numpy: .safetensors (no torch needed) or .pth."""
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return dict(load_file(path))
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ModuleNotFoundError as e:
    if e.name != 'torch':  # torch is there but broken: its own error
      raise
    raise WeightFileError(
        f'{path}: reading a .pth file needs torch, which is not installed; '
        'convert it to .safetensors (where torch is: safetensors.torch.'
        'save_file(torch.load(path), out)) or install torch.') from None
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
  return merge.merge(variables, flat, strict, head, origin)


def _to_numpy(v):
  if hasattr(v, 'detach'):  # a torch tensor
    v = v.detach().cpu()
    if v.is_floating_point() and v.element_size() < 4:
      v = v.float()  # numpy has no bfloat16; float16 is upcast alike
    return v.numpy()
  return np.asarray(v)
