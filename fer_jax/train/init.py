"""Where a run's weights start: random, a fer_jax workdir, or a published file.

`config.init` (see configs/common.py):
  workdir     '' or a fer_jax run (its Orbax checkpoint, any topology); a cascade
              stage starts from the previous stage's this way
  checkpoint  'best' or 'latest' checkpoint of that workdir
  torchvision '' or a .pth / .safetensors state dict of the same family
  keras       '' or a Keras HDF5 (mini_xception, resnet50_v2)
  caffe       '' or a Caffe .caffemodel: bvlc_alexnet into alexnet_lrn,
              VGG_CNN_M_2048 into vgg_cnn_m_2048 (BGR 0-255 minus the ImageNet
              mean input: see importers.import_caffe); 'reinit' replaces only
              fc8, fc6/fc7 keep their ImageNet weights (paper 001)
  head        'keep' (load the head too: same label space) or 'reinit' (a fresh
              head, e.g. a new label space); BatchNorm statistics follow params

Only a fresh run is initialised: a resumed run restores its own checkpoint.
"""
from typing import Any, Dict

import jax
import numpy as np

from fer_jax.models import partition

HEADS = ('keep', 'reinit')
SOURCES = ('workdir', 'torchvision', 'keras', 'caffe')  # at most one set


def has_init(config) -> bool:
  init = config.get('init') or {}
  return any(init.get(k) for k in SOURCES)


def initial_variables(config, variables: Dict[str, Any]) -> Dict[str, Any]:
  """`variables` ({'params', 'batch_stats'} of a fresh model) with the weights
  named by `config.init` merged in; every mismatch is one error listing all."""
  init = config.get('init') or {}
  if not has_init(config):
    return variables
  sources = [k for k in SOURCES if init.get(k)]
  if len(sources) > 1:
    raise ValueError(f'config.init names {sources}; give one source of weights.')
  head = init.get('head', 'keep')
  if head not in HEADS:
    raise ValueError(f'config.init.head must be one of {HEADS}, got {head!r}.')
  keep_head = head == 'keep'
  target = jax.tree.map(np.asarray, dict(variables))
  name = config.model.name
  if init.get('workdir'):
    from fer_jax.train import checkpoint as ckpt_lib  # pylint: disable=g-import-not-at-top
    # A missing or damaged best/ falls back to latest/ (with a warning).
    which, step, tree = ckpt_lib.load_checkpoint(init.workdir,
                                                 init.get('checkpoint', 'best'))
    source = {'params': tree['params']}
    if tree.get('batch_stats'):
      source['batch_stats'] = tree['batch_stats']
    if not keep_head:
      source = partition.reinit_head(source, target)
    try:
      loaded = partition.load_into(target, source)
    except partition.WeightMismatchError as e:
      raise partition.WeightMismatchError(
          f'{init.workdir} ({which} checkpoint, step {step}) does not fit '
          f'model {name!r}: {e}') from None
    print(f'Initialised from {init.workdir} ({which}, step {step}'
          f'{", fresh head" if not keep_head else ""}).', flush=True)
    return loaded
  from fer_jax.models import importers  # pylint: disable=g-import-not-at-top
  if init.get('torchvision'):
    return importers.import_torchvision(name, init.torchvision, target,
                                        head=keep_head)
  if init.get('caffe'):
    return importers.import_caffe(name, init.caffe, target, head=keep_head)
  if name == 'mini_xception':
    return importers.import_keras_mini_xception(init.keras, target,
                                                head=keep_head)
  if name == 'resnet50_v2':
    return importers.import_keras_resnet50_v2(init.keras, target, head=keep_head)
  raise ValueError(f'No Keras importer for model {name!r} (config.init.keras); '
                   'there are importers for mini_xception and resnet50_v2.')
