"""One small registry per kind of thing (models, datasets, tasks, ...).

A config names a piece by string; `Registry.get` looks it up and, for an unknown
name, raises an error that lists every valid one. A piece whose module is heavy
to import (TFDS) is registered by that module itself; the registry knows only
the module's name (`lazy`) and imports it on the first lookup.
"""
import importlib
from typing import Any, Callable, Dict, Iterator, Mapping, Optional


class Registry:
  """Maps names to factories for one kind of thing."""

  def __init__(self, kind: str, lazy: Optional[Mapping[str, str]] = None):
    """lazy: {name: module} of pieces that `module` registers when imported."""
    self.kind = kind
    self._items: Dict[str, Any] = {}
    self._lazy = dict(lazy or {})

  def register(self, name: str) -> Callable[[Any], Any]:
    def deco(obj):
      if name in self._items:
        raise ValueError(f'{self.kind} {name!r} is registered twice.')
      self._items[name] = obj
      return obj
    return deco

  def get(self, name: str) -> Any:
    if name not in self._items and name in self._lazy:
      importlib.import_module(self._lazy[name])
    try:
      return self._items[name]
    except KeyError:
      raise KeyError(
          f'Unknown {self.kind} {name!r}; valid {self.kind} names: '
          f'{", ".join(self.names())}') from None

  def names(self) -> list:
    return sorted(set(self._items) | set(self._lazy))

  def __contains__(self, name: str) -> bool:
    return name in self._items or name in self._lazy

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())
