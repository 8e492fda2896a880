"""The contact sheet of launch/contact_sheet.py: tiles, captions, the grid."""
import numpy as np

from fer_jax.data import contact_sheet as sheet_lib
from fer_jax.data.synthetic import SyntheticSource


def test_grid_of_captioned_tiles():
  source = SyntheticSource('ck_like', 'train', image_size=32, channels=1,
                           all_labels=True)
  records = [source[i] for i in range(3)]
  lines = sheet_lib.caption(records[0])
  assert lines[-1] == (f's{int(records[0]["subject"])} c{int(records[0]["clip"])}:'
                       f'{int(records[0]["frame"])} #0')
  assert any(l.startswith('AU ') for l in lines)
  tile = sheet_lib.tile_image(records[0], 48, draw_landmarks=True)
  assert tile.dtype == np.uint8 and tile.shape[1:] == (48, 3)
  assert tile.shape[0] == 48 + 14 * len(lines) + 4
  sheet = sheet_lib.contact_sheet(records, cols=2, tile=48)
  height = max(sheet_lib.tile_image(r, 48, False).shape[0] for r in records)
  assert sheet.shape == (2 * height, 2 * 48, 3)
  assert (sheet[height:, 48:] == 255).all()  # the empty fourth tile
