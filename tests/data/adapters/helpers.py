"""Shared checks: a source through TFDS and through the grain pipeline."""
import numpy as np

from fer_jax.data import labels
from fer_jax.data.pipeline import Preprocess, eval_dataset, train_dataset
from fer_jax.data.synthetic.source import RECORD_KEYS


def name_of(record):
  return labels.EXPRESSIONS[int(record['expression'])]


def check_record(r):
  assert tuple(r) == RECORD_KEYS
  assert r['image'].dtype == np.uint8 and r['image'].ndim == 3
  assert r['landmarks'].shape == (68, 2) and r['eyes'].shape == (2, 2)
  assert r['aus'].shape == r['au_intensity'].shape == (len(labels.AUS),)


def through_tfds(name, kwargs, tmp_path, splits):
  """Materialises the source and checks the stored records equal the source's."""
  from fer_jax.data.sources import DATASETS
  from fer_jax.data.tfds_builder import record_builder
  builder = record_builder(name, kwargs, str(tmp_path / 'tfds'), splits=splits)
  builder.download_and_prepare()
  for split in splits:
    src = DATASETS.get(name)(split=split, **kwargs)
    stored = builder.as_data_source(split)
    assert len(stored) == len(src)
    for i in range(len(src)):
      a, b = stored[i], src[i]
      for k in RECORD_KEYS:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
  return builder


def through_pipeline(source, channels=3, size=32):
  """Eval batches keep the labels in order; a train batch preprocesses."""
  pre = Preprocess(f'{"gray" if channels == 1 else "rgb"}|resize({size})|unit',
                   name=source.name)
  batch = eval_dataset(source, pre, global_batch=4)[0]
  n = min(4, len(source))
  np.testing.assert_array_equal(batch['expression'][:n],
                                [source[i]['expression'] for i in range(n)])
  assert batch['image'].shape == (4, size, size, channels)
  train = train_dataset(source, pre, global_batch=2, num_steps=1, seed=0)[0]
  assert train['image'].shape == (2, size, size, channels)
  return batch


def write_xlsx(path, rows):
  """A minimal .xlsx as Excel writes it (zip of XML): strings go to the shared
  string table, numbers into numeric cells, empty cells are left out."""
  import zipfile
  from xml.sax.saxutils import escape
  shared, cells_xml = [], []
  for r, row in enumerate(rows, 1):
    cells = []
    for c, value in enumerate(row):
      ref = f'{chr(65 + c % 26) if c < 26 else "A" + chr(65 + c - 26)}{r}'
      if value is None or value == '':
        continue
      if isinstance(value, (int, float)):
        cells.append(f'<c r="{ref}"><v>{value}</v></c>')
      else:
        shared.append(str(value))
        cells.append(f'<c r="{ref}" t="s"><v>{len(shared) - 1}</v></c>')
    cells_xml.append(f'<row r="{r}">{"".join(cells)}</row>')
  main = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main'
  rel = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships'
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('[Content_Types].xml', '<?xml version="1.0"?><Types xmlns="http://'
               'schemas.openxmlformats.org/package/2006/content-types"/>')
    z.writestr('xl/workbook.xml', f'<?xml version="1.0"?><workbook xmlns="{main}" '
               f'xmlns:r="{rel}"><sheets><sheet name="Sheet1" sheetId="1" '
               'r:id="rId1"/></sheets></workbook>')
    z.writestr('xl/_rels/workbook.xml.rels', '<?xml version="1.0"?><Relationships '
               'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
               f'<Relationship Id="rId1" Type="{rel}/worksheet" '
               'Target="worksheets/sheet1.xml"/></Relationships>')
    z.writestr('xl/sharedStrings.xml', f'<?xml version="1.0"?><sst xmlns="{main}">'
               + ''.join(f'<si><t>{escape(s)}</t></si>' for s in shared) + '</sst>')
    z.writestr('xl/worksheets/sheet1.xml', f'<?xml version="1.0"?><worksheet '
               f'xmlns="{main}"><sheetData>{"".join(cells_xml)}</sheetData>'
               '</worksheet>')


def write_video(path, values, size=(24, 32), fps=10.0):
  """An MJPG .avi whose frame k is flat gray `values[k]` (read back +-3)."""
  import os
  import cv2
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  h, w = size
  out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (w, h))
  assert out.isOpened(), path
  for v in values:
    out.write(np.full((h, w, 3), v, np.uint8))
  out.release()


def au(record, number):
  """(occurrence, intensity) of one FACS AU of a record."""
  k = labels.AUS.index(number)
  return float(record['aus'][k]), float(record['au_intensity'][k])


def write_marked_image(path, points, shape=(160, 200, 3), value=200, radius=4):
  """A flat `value` image (written with OpenCV, so .jpg is lossy) with a black
  disk of `radius` at each (x, y) of `points`: where they land after a crop
  is dark, the rest bright."""
  import os
  import cv2
  os.makedirs(os.path.dirname(str(path)), exist_ok=True)
  img = np.full(shape, value, np.uint8)
  for x, y in points:
    cv2.circle(img, (int(round(x)), int(round(y))), radius, (0,) * 3, -1)
  assert cv2.imwrite(str(path), img), path
  return img


def dark_at(image, point, radius=1, threshold=100):
  """Whether the mean of `image` around (x, y) `point` is below threshold."""
  h, w = image.shape[:2]
  x, y = int(round(float(point[0]))), int(round(float(point[1])))
  patch = np.asarray(image)[max(0, y - radius):min(h, y + radius + 1),
                            max(0, x - radius):min(w, x + radius + 1)]
  return patch.size > 0 and float(patch.mean()) < threshold
