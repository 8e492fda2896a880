"""Every dataset's table sends a class to the canonical class of the same name."""
import pytest

from fer_jax.data.adapters import label_maps
from fer_jax.data.adapters.base import CONTEMPT


@pytest.mark.parametrize('names,table,first', [
    (label_maps.FER2013_NAMES, label_maps.FER2013, 0),
    (label_maps.FERPLUS_NAMES[:8], label_maps.FERPLUS[:8], 0),
    (label_maps.AFFECTNET_NAMES[:8], label_maps.AFFECTNET[:8], 0),
    (label_maps.RAFDB_NAMES, label_maps.RAFDB, 1),
    (label_maps.CKPLUS_NAMES, label_maps.CKPLUS, 0),
])
def test_tables_agree_with_names(names, table, first):
  for code, name in enumerate(names, first):
    assert table[code] == label_maps.canonical(name), (code, name)


def test_folder_and_letter_codes():
  for folder, idx in label_maps.SFEW.items():
    assert idx == label_maps.canonical(folder)
  assert sorted(label_maps.SFEW) == sorted(label_maps.SFEW_FOLDERS)
  for code, name in label_maps.KDEF_CODES.items():
    assert label_maps.KDEF[code] == label_maps.canonical(name)


def test_every_table_covers_the_seven_basic_expressions():
  for table in (label_maps.FER2013, label_maps.FERPLUS, label_maps.AFFECTNET,
                tuple(label_maps.RAFDB.values()), label_maps.CKPLUS,
                tuple(label_maps.SFEW.values()), tuple(label_maps.KDEF.values())):
    assert set(range(7)) <= set(table)
  assert label_maps.FERPLUS[7] == label_maps.AFFECTNET[7] == CONTEMPT
  assert label_maps.FERPLUS[8:] == (None, None)  # unknown, NF are no expression


def test_contempt_space_extends_the_canonical_seven():
  from fer_jax.data import labels
  assert labels.EXPRESSIONS_WITH_CONTEMPT[:7] == labels.EXPRESSIONS
  assert labels.EXPRESSIONS_WITH_CONTEMPT[CONTEMPT] == 'contempt'
  for names, table in ((label_maps.FERPLUS_NAMES, label_maps.FERPLUS),
                       (label_maps.AFFECTNET_NAMES, label_maps.AFFECTNET),
                       (label_maps.CKPLUS_NAMES, label_maps.CKPLUS)):
    for code, name in enumerate(names):
      if table[code] is not None:  # same face, same meaning in the 8-class space
        canon = label_maps._SYNONYMS.get(  # pylint: disable=protected-access
            name.lower(), name.lower())
        assert labels.EXPRESSIONS_WITH_CONTEMPT[table[code]] == canon, (code, name)
