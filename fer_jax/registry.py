"""One small registry per kind of thing (models, datasets, tasks, ...).

A config names a piece by string; `Registry.get` looks it up and, for an unknown
name, raises an error that lists every valid one.
"""
from typing import Any, Callable, Dict, Iterator


class Registry:
  """Maps names to factories for one kind of thing."""

  def __init__(self, kind: str):
    self.kind = kind
    self._items: Dict[str, Any] = {}

  def register(self, name: str) -> Callable[[Any], Any]:
    def deco(obj):
      if name in self._items:
        raise ValueError(f'{self.kind} {name!r} is registered twice.')
      self._items[name] = obj
      return obj
    return deco

  def get(self, name: str) -> Any:
    try:
      return self._items[name]
    except KeyError:
      raise KeyError(
          f'Unknown {self.kind} {name!r}; valid {self.kind} names: '
          f'{", ".join(sorted(self._items))}') from None

  def names(self) -> list:
    return sorted(self._items)

  def __contains__(self, name: str) -> bool:
    return name in self._items

  def __iter__(self) -> Iterator[str]:
    return iter(sorted(self._items))
