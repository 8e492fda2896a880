"""A fake subject folder: astronaut() frames (a real photograph) written by
files.write_round as `propose` would write them."""
import functools
from typing import Sequence

import cv2
import numpy as np

from fer_jax.labeling import files

FRAMES = (3, 8, 15, 21, 30, 42, 57, 64)  # video frame indices, in showing order
EXPRESSIONS = ('neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger')
CLIP_LEN, CLIP_FPS = 8, 8.0


@functools.lru_cache(maxsize=4)
def _photo(size: int) -> np.ndarray:
  from skimage import data  # pylint: disable=g-import-not-at-top
  return cv2.resize(np.ascontiguousarray(data.astronaut()[..., ::-1]), (size, size),
                    interpolation=cv2.INTER_AREA)


def _picture(t: int, size: int = 320) -> np.ndarray:
  img = _photo(size)
  shift = (t * 7) % 40 - 20
  img = np.roll(img, shift, axis=1)
  cv2.putText(img, f'frame {t}', (8, size - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
              (255, 255, 255), 2)
  return img


def make_subject(subject_dir: str, frames: Sequence[int] = FRAMES,
                 expressions: Sequence[str] = EXPRESSIONS, number: int = 1,
                 clip_len: int = CLIP_LEN) -> str:
  items = []
  for f in frames:
    full = _picture(f)
    clip = [_picture(f + k - clip_len // 2, 120) for k in range(clip_len)]
    items.append(dict(frame=f, time_s=f / 25.0, image=full,
                      crop=full[30:190, 80:240], clip=clip,
                      clip_index=clip_len // 2, sampler='gsx'))
  return files.write_round(subject_dir, number, items, expressions=expressions,
                           clip_fps=CLIP_FPS)
