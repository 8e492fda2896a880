"""Who is drawn and how the head sits: the renderer's identity and pose.

`Identity` (face shape, feature sizes, colours) and `Pose` (head pose and
gaze), each drawn from one numpy Generator. Lengths are fractions of the image
side in the canonical frame (face centred, y down); `face` draws them.
"""
import dataclasses
import math
from typing import Tuple

import numpy as np

_SKINS = np.array([(255, 225, 200), (240, 196, 165), (222, 170, 130), (196, 135, 95),
                   (150, 95, 62), (100, 64, 44)], np.float64)
_HAIRS = np.array([(22, 18, 16), (55, 38, 28), (105, 70, 42), (196, 164, 104),
                   (150, 68, 32), (155, 152, 148)], np.float64)
_IRISES = np.array([(92, 56, 30), (45, 28, 20), (70, 112, 165), (78, 122, 80),
                    (125, 96, 52)], np.float64)


@dataclasses.dataclass(frozen=True)
class Identity:
  """Who the face is. Lengths are fractions of the image side (canonical frame)."""
  face_w: float      # half-width of the head at the eye line
  face_h: float      # eye line to chin
  forehead: float    # eye line to the top of the head
  jaw: float         # superellipse exponent of the jaw: 2 round .. 3.5 square
  eye_y: float       # eye line
  eye_dx: float      # half the distance between the eye centres
  eye_w: float       # eye half-width
  eye_h: float       # upper-lid height above the eye line at rest
  brow_h: float      # brow height above the eye line
  brow_arch: float
  brow_thick: float
  nose_len: float    # eye line to nose tip
  nose_w: float      # half-width of the nostrils
  mouth_dy: float    # nose tip to the lip line
  mouth_w: float     # half-width of the mouth
  lip_u: float
  lip_l: float
  hair_style: int    # 0 short, 1 fringe, 2 long, 3 receding, 4 side parting
  hairline: float    # hairline height: 0 top of the head .. 1 the jaw top
  skin: Tuple[float, float, float]
  hair: Tuple[float, float, float]
  iris: Tuple[float, float, float]
  lips: Tuple[float, float, float]
  background: Tuple[float, float, float]
  clothes: Tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Pose:
  """Head pose and gaze; zero is frontal and centred (the lab setting)."""
  yaw: float = 0.0     # radians, pseudo-3D (features shift and the face squashes)
  pitch: float = 0.0   # radians
  roll: float = 0.0    # radians, in-plane rotation
  scale: float = 1.0
  tx: float = 0.0      # shift, fraction of the image side
  ty: float = 0.0
  gaze_x: float = 0.0  # iris shift, fraction of the eye half-width
  gaze_y: float = 0.0


def mix(a, b, t):
  """The colour a fraction t of the way from a to b."""
  return tuple(float(x) * (1 - t) + float(y) * t for x, y in zip(a, b))


def _rgb(c):
  return tuple(float(x) for x in c)


def _palette(pal, u):
  t = u * (len(pal) - 1)
  i = min(int(t), len(pal) - 2)
  return _rgb(pal[i] * (1 - (t - i)) + pal[i + 1] * (t - i))


def skin_colour(u: float):
  """The skin colour at u in [0, 1], light to dark (an identity's, a hand's)."""
  return _palette(_SKINS, u)


def sample_identity(rng: np.random.Generator) -> Identity:
  """Draws one identity; all its randomness comes from `rng`."""
  u = rng.random(30).tolist()
  face_w = 0.265 + 0.05 * u[0]
  face_h = 0.38 + 0.05 * u[1]
  eye_w = face_w * (0.19 + 0.04 * u[5])
  skin = skin_colour(u[18] ** 1.2)
  lips = tuple(0.65 * s * f + 0.35 * c for s, f, c in
               zip(skin, (0.95, 0.62, 0.62), (185, 75, 80)))
  hair = _palette(_HAIRS, u[20]) if u[21] > 0.15 else _rgb(_HAIRS[int(u[22] * 3)])
  bg = tuple(90 + 150 * u[23 + i] for i in range(3))
  bg = mix(bg, (200, 200, 200), 0.4)
  return Identity(
      face_w=face_w, face_h=face_h, forehead=0.27 + 0.04 * u[2],
      jaw=2.0 + 1.5 * u[3], eye_y=0.41 + 0.03 * u[4],
      eye_dx=face_w * (0.38 + 0.06 * u[6]), eye_w=eye_w,
      eye_h=eye_w * (0.4 + 0.1 * u[7]),
      brow_h=face_h * (0.15 + 0.04 * u[8]), brow_arch=face_h * (0.01 + 0.03 * u[9]),
      brow_thick=face_h * (0.045 + 0.03 * u[10]),
      nose_len=face_h * (0.33 + 0.06 * u[11]), nose_w=face_w * (0.14 + 0.05 * u[12]),
      mouth_dy=face_h * (0.17 + 0.05 * u[13]), mouth_w=face_w * (0.3 + 0.08 * u[14]),
      lip_u=face_h * (0.035 + 0.02 * u[15]), lip_l=face_h * (0.045 + 0.025 * u[16]),
      hair_style=int(u[17] * 5) % 5, hairline=0.3 + 0.15 * u[19],
      skin=skin, hair=hair, iris=_palette(_IRISES, u[26]), lips=lips,
      background=bg, clothes=tuple(30 + 200 * x for x in u[27:30]))


def sample_pose(rng: np.random.Generator, domain: str, strength: float = 1.0) -> Pose:
  """Frontal for 'lab'; random pose, scale and shift for 'wild'.

  Wild faces are framed a little tighter on average (like detector crops), so the
  features have more pixels at 48 px.
  """
  if domain == 'lab':
    return Pose()
  u = rng.random(8).tolist()
  s = strength
  return Pose(yaw=s * 0.55 * (2 * u[0] - 1), pitch=s * 0.2 * (2 * u[1] - 1),
              roll=s * math.radians(22) * (2 * u[2] - 1),
              scale=1.1 + s * (0.45 * u[3] - 0.3),
              tx=s * 0.09 * (2 * u[4] - 1), ty=s * 0.08 * (2 * u[5] - 1),
              gaze_x=0.3 * (2 * u[6] - 1), gaze_y=0.15 * (2 * u[7] - 1))
