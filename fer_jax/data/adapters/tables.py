"""Annotation tables as distributed: csv / tsv text, and Excel .xlsx sheets.

`read_rows(path)` yields (where, cells) for every non-empty row, `where` being
'file:line' (the sheet's row number for xlsx), cells as stripped strings.
xlsx is read with the standard library (an .xlsx is a zip of XML: shared
strings plus one XML per sheet), so no Excel package is needed. Cells keep
Excel's own text: numbers as stored ('1', '0.35', '999'), strings as typed.
`columns()` finds named or pattern-matched columns in a header and, when any is
absent, raises an AdapterError listing the expected and the found columns.
"""
import csv
import os
import re
import zipfile
from typing import Dict, Iterator, List, Sequence, Tuple
from xml.etree import ElementTree

from fer_jax.data.adapters.shared import AdapterError

_NS = {'m': 'http://schemas.openxmlformats.org/spreadsheetml/2006/main',
       'r': 'http://schemas.openxmlformats.org/officeDocument/2006/relationships',
       'p': 'http://schemas.openxmlformats.org/package/2006/relationships'}


def _col_index(ref: str) -> int:
  letters = re.match(r'[A-Z]+', ref.upper()).group(0)
  n = 0
  for ch in letters:
    n = n * 26 + ord(ch) - 64
  return n - 1


def _text(el) -> str:
  return ''.join(t.text or '' for t in el.iter(f'{{{_NS["m"]}}}t'))


def read_xlsx(path: str, sheet: int = 0) -> Iterator[Tuple[int, List[str]]]:
  """(row number, cells) of one sheet of an .xlsx workbook."""
  try:
    zf = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise AdapterError(f'{path}: not a readable .xlsx workbook ({e})') from None
  with zf:
    try:
      shared = []
      if 'xl/sharedStrings.xml' in zf.namelist():
        root = ElementTree.fromstring(zf.read('xl/sharedStrings.xml'))
        shared = [_text(si) for si in root.findall('m:si', _NS)]
      book = ElementTree.fromstring(zf.read('xl/workbook.xml'))
      sheets = book.findall('m:sheets/m:sheet', _NS)
      if sheet >= len(sheets):
        raise AdapterError(f'{path}: workbook has {len(sheets)} sheet(s), asked for '
                           f'sheet {sheet}')
      rid = sheets[sheet].get(f'{{{_NS["r"]}}}id')
      rels = ElementTree.fromstring(zf.read('xl/_rels/workbook.xml.rels'))
      target = next(r.get('Target') for r in rels.findall('p:Relationship', _NS)
                    if r.get('Id') == rid)
      target = target.lstrip('/')
      target = target if target.startswith('xl/') else f'xl/{target}'
      data = ElementTree.fromstring(zf.read(target))
    except (KeyError, StopIteration, ElementTree.ParseError) as e:
      raise AdapterError(f'{path}: malformed .xlsx workbook ({e!r})') from None
  for n, row in enumerate(data.iter(f'{{{_NS["m"]}}}row'), 1):
    cells: Dict[int, str] = {}
    for j, c in enumerate(row.findall('m:c', _NS)):
      ref, kind = c.get('r'), c.get('t')
      v = c.find('m:v', _NS)
      if kind == 's' and v is not None:
        value = shared[int(v.text)]
      elif kind == 'inlineStr':
        value = _text(c)
      else:
        value = v.text if v is not None and v.text is not None else ''
      cells[_col_index(ref) if ref else j] = value
    if cells:
      yield int(row.get('r', n)), [cells.get(k, '').strip()
                                   for k in range(max(cells) + 1)]


def read_rows(path: str, delimiter: str = None) -> Iterator[Tuple[str, List[str]]]:
  """(where, cells) of each non-empty row of a csv/tsv/txt or xlsx table.

  delimiter: None = tab for .tsv/.txt, comma otherwise.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(path)
  if path.lower().endswith(('.xlsx', '.xlsm')):
    for n, cells in read_xlsx(path):
      if any(cells):
        yield f'{path}:{n}', cells
    return
  if delimiter is None:
    delimiter = '\t' if path.lower().endswith(('.tsv', '.txt')) else ','
  with open(path, newline='', encoding='utf-8-sig') as f:
    reader = csv.reader(f, delimiter=delimiter)
    for cells in reader:
      if any(c.strip() for c in cells):
        yield f'{path}:{reader.line_num}', [c.strip() for c in cells]


def columns(header: Sequence[str], where: str, exact: Dict[str, str] = None,
            patterns: Dict[str, str] = None, optional: Sequence[str] = ()):
  """{key: index} of exact column names and {key: [indices]} of regex patterns.

  exact: key -> column name (matched case-insensitively, spaces ignored);
  patterns: key -> regex (full match, case-insensitive), at least one column
  each. Keys in `optional` may be absent (then None / []). A missing column
  raises AdapterError naming the expected and the found columns.
  """
  norm = lambda s: re.sub(r'\s+', '', s).lower()  # noqa: E731
  found = [h.strip() for h in header]
  out, missing = {}, []
  for key, name in (exact or {}).items():
    idx = [i for i, h in enumerate(found) if norm(h) == norm(name)]
    out[key] = idx[0] if idx else None
    if not idx and key not in optional:
      missing.append(repr(name))
  for key, pattern in (patterns or {}).items():
    rx = re.compile(pattern, re.IGNORECASE)
    out[key] = [i for i, h in enumerate(found) if rx.fullmatch(h)]
    if not out[key] and key not in optional:
      missing.append(f'/{pattern}/')
  if missing:
    raise AdapterError(f'{where}: expected column(s) {", ".join(missing)}; found '
                       f'{found}')
  return out
