"""A labelled grid of records, to look at what a model will see.

Each tile is a record's image (upscaled, nearest neighbour), optionally with
its 68 landmarks and eye centres, captioned with the record's annotated
labels: expression or compound class, valence/arousal, the present AUs, and
subject (/clip:frame for video).
"""
from typing import Sequence

import cv2
import numpy as np

from fer_jax.data import labels


def caption(record) -> list:
  """The caption lines of one record."""
  lines = []
  if record['has_expression']:
    lines.append(labels.EXPRESSIONS[int(record['expression'])])
  if record['has_compound']:
    lines.append(labels.COMPOUND_EXPRESSIONS[int(record['compound'])])
  if record['has_va']:
    lines.append(f'v{float(record["valence"]):+.2f} a{float(record["arousal"]):+.2f}')
  if record['has_aus']:
    on = [str(n) for n, x in zip(labels.AUS, record['aus']) if x > 0]
    lines.append('AU ' + ','.join(on) if on else 'AU -')
  who = f's{int(record["subject"])}'
  if record['clip'] >= 0:
    who += f' c{int(record["clip"])}:{int(record["frame"])}'
  lines.append(f'{who} #{int(record["index"])}')
  return lines


def tile_image(record, tile: int, draw_landmarks: bool):
  """One record as an RGB tile `tile` pixels wide, its caption below."""
  img = record['image']
  if img.shape[-1] == 1:
    img = np.repeat(img, 3, -1)
  k = tile / img.shape[0]
  img = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_NEAREST)
  if draw_landmarks:
    for x, y in record['landmarks']:
      cv2.circle(img, (int((x + 0.5) * k), int((y + 0.5) * k)), 1, (0, 255, 0), -1)
    for x, y in record['eyes']:
      cv2.circle(img, (int((x + 0.5) * k), int((y + 0.5) * k)), 2, (255, 0, 0), -1)
  lines = caption(record)
  band = np.full((14 * len(lines) + 4, tile, 3), 255, np.uint8)
  for j, text in enumerate(lines):
    cv2.putText(band, text, (3, 13 + 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
  return np.concatenate([img, band], 0)


def contact_sheet(records: Sequence[dict], cols: int = 8, tile: int = 160,
                  draw_landmarks: bool = False) -> np.ndarray:
  """The records' tiles in rows of `cols`, as one RGB uint8 image (white
  padding under shorter captions and after the last tile)."""
  tiles = [tile_image(r, tile, draw_landmarks) for r in records]
  height = max(t.shape[0] for t in tiles)
  tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)), constant_values=255)
           for t in tiles]
  tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % cols)
  rows = [np.concatenate(tiles[r:r + cols], 1)
          for r in range(0, len(tiles), cols)]
  return np.concatenate(rows, 0)
