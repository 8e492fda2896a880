"""The registry: names to factories, and pieces whose module registers them
on the first lookup (lazy)."""
import sys

import pytest


def test_a_lazy_piece_is_listed_before_and_imported_on_lookup(tmp_path, monkeypatch):
  (tmp_path / 'reg_home.py').write_text(
      'from fer_jax.registry import Registry\n'
      "THINGS = Registry('thing', lazy={'late': 'reg_late'})\n"
      "THINGS.register('early')(lambda: 'early')\n")
  (tmp_path / 'reg_late.py').write_text(
      'from reg_home import THINGS\n'
      "THINGS.register('late')(lambda: 'late')\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  for m in ('reg_home', 'reg_late'):
    monkeypatch.delitem(sys.modules, m, raising=False)
  from reg_home import THINGS  # pylint: disable=import-error
  assert 'late' in THINGS and THINGS.names() == ['early', 'late']
  assert list(THINGS) == ['early', 'late']
  assert 'reg_late' not in sys.modules  # listed, not imported
  assert THINGS.get('late')() == 'late' and 'reg_late' in sys.modules
  with pytest.raises(KeyError, match="Unknown thing 'lat'; valid thing names: early, late"):
    THINGS.get('lat')
