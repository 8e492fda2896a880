"""Adapters of real datasets, read in their formats as distributed.

Each module parses one dataset into `base.AdapterSource` (records with every key
of the synthetic source); `ADAPTERS` maps the registered DATASETS names to them.
See `base` for the conventions (NaN landmarks, skip_bad, skipped/dropped,
AU_MISSING, expression_names); `video` reads frames of the video datasets,
`tables` csv/xlsx annotation tables.
"""
import importlib

# name -> (module, factory) under fer_jax.data.adapters, imported on first use.
ADAPTERS = {
    'fer2013': ('fer2013', 'fer2013'),
    'ferplus': ('fer2013', 'ferplus'),
    'affectnet': ('affectnet', 'affectnet'),
    'afew_va': ('afew_va', 'afew_va'),
    'rafdb': ('rafdb', 'rafdb'),
    'sfew': ('sfew', 'sfew'),
    'ckplus': ('ckplus', 'ckplus'),
    'kdef': ('kdef', 'kdef'),
    'disfa': ('disfa', 'disfa'),
    'emotionet': ('emotionet', 'emotionet'),
    'amigos': ('amigos', 'amigos'),
    'semaine': ('semaine', 'semaine'),
}


def get_adapter(name: str):
  module, fn = ADAPTERS[name]
  return getattr(importlib.import_module(f'fer_jax.data.adapters.{module}'), fn)
