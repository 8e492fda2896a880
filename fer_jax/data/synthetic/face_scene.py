"""The in-the-wild nuisances of a picture, which never move the landmarks.

A `Scene` holds them: clutter behind the face (`draw_clutter`), an occluder in
front of it (drawn with the face, since it moves with the head), light
gradient and tint, pixel noise, blur and low resolution (`photometric`, on
the finished image). The lab domain has none of them.
"""
import dataclasses
import math
from typing import Tuple

import cv2
import numpy as np

from fer_jax.data.synthetic.face_params import Identity


@dataclasses.dataclass(frozen=True)
class Scene:
  """Photometric nuisances of an in-the-wild picture; they never move landmarks."""
  background: Tuple[float, float, float]
  clutter: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 9)))
  light: Tuple[float, float, float] = (0.0, 0.0, 1.0)  # (angle, strength, brightness)
  tint: Tuple[float, float, float] = (1.0, 1.0, 1.0)
  occluder: int = 0          # 0 none, 1 sunglasses, 2 hand, 3 object
  occluder_params: Tuple[float, ...] = (0.0,) * 6
  blur: float = 0.0          # gaussian sigma, in pixels at 64x64
  lowres: float = 1.0        # down-sampling factor before up-sampling back (<1)
  noise: float = 0.0         # pixel noise std, in uint8 levels


def sample_scene(rng: np.random.Generator, domain: str, identity: Identity,
                 strength: float = 1.0) -> Scene:
  """A plain studio scene for 'lab'; clutter, light, occlusion, blur... for 'wild'."""
  if domain == 'lab':
    return Scene(background=identity.background)
  u = rng.random(24).tolist()
  s = strength
  n = int(2 + 6 * u[0])
  clutter = rng.random((n, 9))
  occluder = 0
  if u[1] < 0.35 * s:
    occluder = 1 + int(u[2] * 3)
  return Scene(
      background=tuple(40 + 200 * x for x in u[3:6]), clutter=clutter,
      light=(2 * np.pi * u[6], s * 0.55 * u[7], 1.0 + s * (0.5 * u[8] - 0.28)),
      tint=tuple(1.0 + s * 0.14 * (2 * x - 1) for x in u[9:12]),
      occluder=occluder, occluder_params=tuple(u[12:18]),
      blur=(s * 1.3 * u[18]) if u[19] < 0.35 * s else 0.0,
      lowres=(0.3 + 0.45 * u[20]) if u[21] < 0.35 * s else 1.0,
      noise=s * 9.0 * u[22] if u[23] < 0.7 else 0.0)


def draw_clutter(img, clutter, size):
  """A wild scene's background shapes (rectangles, discs, bars), in place."""
  for q in clutter.tolist():
    col = tuple(30 + 210 * v for v in q[5:8])
    x0, y0, x1, y1 = (int((v * 1.4 - 0.2) * size) for v in q[1:5])
    kind = int(q[0] * 3)
    if kind == 0:
      cv2.rectangle(img, (x0, y0), (x1, y1), col, -1, cv2.LINE_AA)
    elif kind == 1:
      cv2.circle(img, (x0, y0), int(0.05 * size + 0.3 * size * q[8]), col, -1,
                 cv2.LINE_AA)
    else:
      cv2.line(img, (x0, y0), (x1, y1), col, max(1, int(0.08 * size * q[8])),
               cv2.LINE_AA)


def photometric(img, scene: Scene, size: int, rng):
  """Light gradient and tint, noise, blur, low resolution (wild only)."""
  angle, strength, bright = scene.light
  if strength or bright != 1.0 or scene.tint != (1.0, 1.0, 1.0) or scene.noise:
    g = np.linspace(-1, 1, size, dtype=np.float32)
    light = (bright * strength * math.cos(angle)) * g[None, :, None] + (
        bright * strength * math.sin(angle)) * g[:, None, None] + np.float32(bright)
    out = img * (light * np.asarray(scene.tint, np.float32))
    if scene.noise and rng is not None:
      # Uniform noise with the requested std: a third of the cost of gaussian.
      u = rng.random(out.shape, dtype=np.float32)
      out += (u - np.float32(0.5)) * np.float32(scene.noise * math.sqrt(12))
    img = np.clip(out, 0, 255, out=out).astype(np.uint8)
  if scene.blur > 0.05:
    img = cv2.GaussianBlur(img, (0, 0), scene.blur * size / 64)
  if scene.lowres < 1.0:
    small = max(8, int(size * scene.lowres))
    img = cv2.resize(cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA),
                     (size, size), interpolation=cv2.INTER_LINEAR)
  return img
