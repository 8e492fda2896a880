"""A procedural face renderer with known geometry.

Identity + 14 AU intensities give the 68 iBUG landmarks in a canonical frame
(`face_geometry`: lengths are fractions of the image side, face centred, y
down). Every drawn shape is built from those landmarks, so the image and the
landmarks agree. One pose transform (pseudo-3D yaw, pitch, roll, scale, shift)
maps all points to pixels at once, then cv2 draws anti-aliased polygons. A
`Scene` (`face_scene`) adds the in-the-wild nuisances (clutter, light,
occlusion, blur, low resolution, noise) that do not move the landmarks.
`face_params` draws who is rendered and how the head sits (Identity, Pose).
"""
import math
from typing import Optional

import cv2
import numpy as np

from fer_jax.data import labels
from fer_jax.data.synthetic import face_geometry
from fer_jax.data.synthetic import face_params
from fer_jax.data.synthetic import face_scene
from fer_jax.data.synthetic.face_params import Identity
from fer_jax.data.synthetic.face_params import Pose
from fer_jax.data.synthetic.face_scene import Scene

NUM_AUS = len(labels.AUS)


def _catmull_rom(n: int, k: int) -> np.ndarray:
  """(m, n) matrix mapping n control points to a smooth open curve through them."""
  rows = []
  for i in range(n - 1):
    p = [max(i - 1, 0), i, i + 1, min(i + 2, n - 1)]
    for t in np.arange(k) / k:
      w = 0.5 * np.array([-t**3 + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2,
                          -3 * t**3 + 4 * t**2 + t, t**3 - t**2])
      row = np.zeros(n)
      np.add.at(row, p, w)
      rows.append(row)
  last = np.zeros(n)
  last[-1] = 1.0
  rows.append(last)
  return np.array(rows)


# Read-only interpolation tables (computed once, never written).
_CR4 = _catmull_rom(4, 4)    # eyelids
_CR5 = _catmull_rom(5, 3)    # brows, inner lips
_CR7 = _catmull_rom(7, 3)    # outer lips, hairline
_CR17 = _catmull_rom(17, 2)  # jaw
_CR3 = _catmull_rom(3, 4)    # wrinkles, folds
_T16 = np.linspace(0, 2 * np.pi, 16, endpoint=False)
_CIRCLE = np.stack([np.cos(_T16), np.sin(_T16)], -1)
_T12 = np.linspace(0, 2 * np.pi, 12, endpoint=False)
_CIRCLE12 = np.stack([np.cos(_T12), np.sin(_T12)], -1)
_ARC = np.linspace(0, np.pi, 13)[1:-1]
_TOP_C, _TOP_S = np.cos(_ARC), np.sin(_ARC)**0.55       # forehead arc
_CAP_T = np.linspace(-0.2, np.pi + 0.2, 15)
_CAP_C, _CAP_S = np.cos(_CAP_T), np.sign(np.sin(_CAP_T)) * np.abs(np.sin(_CAP_T))**0.55
_LONG_C, _LONG_S = np.cos(np.linspace(0, np.pi, 13)), np.sin(np.linspace(0, np.pi, 13))**0.55
_BROW_THICK = np.array([0.45, 0.75, 0.95, 1.0, 0.9])
# Depth weight of each landmark for yaw/pitch; > 1 marks the nose standing out.
_LM_Z = np.r_[np.ones(27), [1.1, 1.3, 1.5, 1.7], [1.3, 1.4, 1.5, 1.4, 1.3], np.ones(32)]
# Hairline heights (face units) at _HAIRLINE_X, per hair style.
_DIPS = np.array([0.13, 0.03, -0.01, 0.0, -0.01, 0.03, 0.13])
_DIPS_FRINGE = np.array([0.1, 0.02, 0, 0.01, 0, 0.02, 0.1])
_DIPS_SIDE = np.array([0.12, 0.0, -0.05, -0.06, -0.08, -0.02, 0.1])
_HAIRLINE_X = np.array([-0.97, -0.8, -0.45, 0, 0.45, 0.8, 0.97])
_BAGS = (np.array([36, 41, 40]), np.array([45, 46, 47]))
_NOSE_SHADE = np.array([[-0.25, 0], [-0.4, 0], [-0.55, 0], [0.1, 0]])
_NOSE_SHADE_Y = np.array([[0, 1], [0, 0], [0, 0], [0, -2]])
# Wing curve offsets from the alar base, in (nostril half-width, face units).
_WING = np.array([[0, 0], [-0.18, -0.045], [0.15, -0.085]])
# Smooth-curve index chains into the landmarks.
_UPPER_LIDS = (np.array([36, 37, 38, 39]), np.array([42, 43, 44, 45]))
_LOWER_LIDS = (np.array([39, 40, 41, 36]), np.array([45, 46, 47, 42]))
_LIPS_UP = np.arange(48, 55)
_LIPS_LO = np.array([54, 55, 56, 57, 58, 59, 48])
_IN_LO = np.array([64, 65, 66, 67, 60])


def _xy(x, y) -> np.ndarray:
  out = np.empty((len(x), 2))
  out[:, 0] = x
  out[:, 1] = y
  return out


class _Canvas:
  """Collects points in the canonical frame, then maps them all at once."""

  def __init__(self):
    self.pts, self.z, self.n = [], [], 0

  def add(self, pts, z: float = 1.0):
    if not isinstance(pts, np.ndarray):
      pts = np.array(pts, np.float64)
    k = len(pts)
    self.pts.append(pts)
    self.z.append((z, k))
    self.n += k
    return self.n - k, self.n

  def transform(self, idn: Identity, pose: Pose, size: int) -> np.ndarray:
    pts = np.concatenate(self.pts)
    cy = idn.eye_y + 0.5 * (idn.face_h - idn.forehead)
    x = pts[:, 0] - face_geometry.CX
    y = pts[:, 1] - cy
    if pose.yaw or pose.pitch:
      # The head as a half-ellipsoid: points near the middle come towards the camera,
      # the nose (weight > 1) further.
      zs, ks = zip(*self.z)
      zw = np.repeat(zs, ks)
      zw[:68] = _LM_Z
      r = (x / idn.face_w)**2 + 0.4 * (y / (idn.face_h + idn.forehead))**2
      z = np.minimum(zw, 1) * (0.55 * idn.face_w) * np.sqrt(np.clip(1 - r, 0, 1))
      z += np.maximum(zw - 1, 0) * (0.15 * idn.face_w)
      x = x * math.cos(pose.yaw) + z * math.sin(pose.yaw)
      y = y * math.cos(pose.pitch) - z * math.sin(pose.pitch)
    c, s = math.cos(pose.roll) * pose.scale * size, math.sin(pose.roll) * pose.scale * size
    out = np.empty_like(pts)
    out[:, 0] = c * x - s * y + ((face_geometry.CX + pose.tx) * size - 0.5)
    out[:, 1] = s * x + c * y + ((cy + pose.ty) * size - 0.5)
    return out


def _ellipse(cx, cy, rx, ry, circle=_CIRCLE):
  return _xy(cx + rx * circle[:, 0], cy + ry * circle[:, 1])


def _clip_between(pts, upper, lower):
  """Clamps a shape's y between two curves (e.g. the iris between the lids)."""
  xs = np.minimum(np.maximum(pts[:, 0], upper[0, 0]), upper[-1, 0])
  top = np.interp(xs, upper[:, 0], upper[:, 1])
  bot = np.maximum(np.interp(xs, lower[::-1, 0], lower[::-1, 1]), top)
  return _xy(xs, np.minimum(np.maximum(pts[:, 1], top), bot))


def _shade(color, k):
  return tuple(c * (1 - k) for c in color)


def _build(idn: Identity, au: np.ndarray, pose: Pose, scene: Scene):
  """Every shape to draw, in drawing order: (kind, colour, [point spans])."""
  g = face_geometry.geometry(idn, au)
  lm = g['lm']
  a1, a2, a4, a5, a6, a7, a9, a12, a15, a17, a20, a23, a25, a26 = au.tolist()
  U, W, cx, ey = idn.face_h, idn.face_w, face_geometry.CX, idn.eye_y
  skin, hair = idn.skin, idn.hair
  y0, chin, y_top = g['y0'], g['chin'], ey - idn.forehead
  cv = _Canvas()
  cv.add(lm)  # always the first 68 points
  ops = []
  add = lambda kind, col, *shapes, z=1.0: ops.append(  # noqa: E731
      (kind, col, [cv.add(s, z) for s in shapes]))

  # Hair behind the head, neck, clothes, ears, then the face.
  yb = y0 - 0.04 * U
  cap_top = _xy(cx + 1.07 * W * _CAP_C, yb - (yb - y_top + 0.03) * _CAP_S)
  if idn.hair_style == 2:  # long
    back = _xy(cx + 1.22 * W * _LONG_C, y0 - (y0 - y_top + 0.04) * _LONG_S)
    add('fill', hair, np.concatenate([back, [[cx - 1.25 * W, chin + 0.06],
                                            [cx + 1.25 * W, chin + 0.06]]]), z=0.0)
  elif idn.hair_style != 3:  # fills the temples
    add('fill', hair, cap_top, z=0.0)
  nt, yc = chin - 0.12 * U, chin + 0.06 + 0.1 * U
  add('fill', _shade(skin, 0.18), [[cx - 0.5 * W, nt], [cx - 0.52 * W, 1.3],
                                   [cx + 0.52 * W, 1.3], [cx + 0.5 * W, nt]], z=0.0)
  add('fill', idn.clothes,
      [[cx - 0.5 * W, yc - 0.02], [cx - 1.9 * W, yc + 0.1], [cx - 2.0 * W, 1.4],
       [cx + 2.0 * W, 1.4], [cx + 1.9 * W, yc + 0.1], [cx + 0.5 * W, yc - 0.02],
       [cx, yc + 0.06]], z=0.0)
  add('fill', _shade(skin, 0.08),
      *[_ellipse(cx + s * 0.97 * W, ey + 0.07 * U, 0.13 * W, 0.25 * U, _CIRCLE12)
        for s in (-1, 1)], z=0.0)
  top = _xy(cx + W * _TOP_C, y0 - (y0 - y_top) * _TOP_S)
  add('fill', skin, np.concatenate([_CR17 @ lm[:17], top]), z=0.6)

  # Cheeks: AU6 raises them (a redder patch that moves up).
  if a6 > 0.05:
    add('fill', face_params.mix(skin, (215, 95, 95), 0.22 * a6),
        *[_ellipse(cx + s * (idn.eye_dx + 0.25 * idn.eye_w),
                   ey + 0.45 * idn.nose_len - 0.06 * U * a6, 0.95 * idn.eye_w,
                   0.55 * idn.eye_w, _CIRCLE12) for s in (-1, 1)])

  # Hair over the forehead, down to the hairline.
  span = y0 - y_top
  if idn.hair_style == 1:    # fringe: low and flat
    yh, dips = y_top + 0.5 * span, _DIPS_FRINGE
  elif idn.hair_style == 4:  # side parting: the line slopes
    yh, dips = y_top + idn.hairline * span, _DIPS_SIDE
  else:                      # 3: receding
    yh = y_top + (idn.hairline if idn.hair_style != 3 else 0.12) * span
    dips = _DIPS
  line_y = yh + 1.6 * span * dips
  line_y[[0, -1]] = np.maximum(line_y[[0, -1]], yb - 0.08 * U)
  add('fill', hair, np.concatenate([cap_top, _CR7 @ _xy(cx + W * _HAIRLINE_X, line_y)]),
      z=0.5)

  # Wrinkles and folds: lines whose darkness follows the AU intensity.
  k = max(a1, a2)
  if k > 0.1:  # forehead (AU1/AU2)
    half = idn.eye_dx * (0.5 + 0.6 * a2 / (a1 + a2))
    ys = lm[19, 1] - U * np.array([0.06, 0.105])
    add('line', _shade(skin, 0.2 * k),
        *[_CR3 @ [[cx - half, y + 0.012 * U], [cx, y - 0.008 * U * a1],
                  [cx + half, y + 0.012 * U]] for y in ys.tolist()])
  if a4 > 0.1:  # glabella (AU4)
    d, y = 0.22 * (lm[22, 0] - lm[21, 0]), lm[21, 1]
    add('line', _shade(skin, 0.6 * a4),
        [[cx - d, y - 0.02 * U], [cx - d - 0.004, y + 0.05 * U]],
        [[cx + d, y - 0.02 * U], [cx + d + 0.004, y + 0.05 * U]])
  if a9 > 0.1:  # nose bridge (AU9)
    w = 0.6 * idn.nose_w
    add('line', _shade(skin, 0.5 * a9),
        *[[[cx - w, y + 0.006], [cx, y], [cx + w, y + 0.006]]
          for y in (lm[28, 1] - 0.01 * U, lm[28, 1] + 0.025 * U)])
  kn = 0.06 + 0.28 * max(a12, 0.7 * a6, 0.8 * a9, 0.6 * a20)
  if kn > 0.1:  # nasolabial folds
    folds = []
    for s, nb, mc in ((-1, 31, 48), (1, 35, 54)):
      p0 = lm[nb] + (s * 0.45 * idn.nose_w, -0.03 * U)
      p2 = lm[mc] + (s * 0.12 * g['mw'], 0.025 * U)
      folds.append(_CR3 @ [p0, (p0 + p2) / 2 + (s * 0.04 * U, 0), p2])
    add('line', _shade(skin, kn), *folds)
  if a6 + a7 > 0.15:  # crow's feet (AU6/AU7) and the lower-lid bulge (AU6)
    feet = []
    for i, s in ((36, -1), (45, 1)):
      p = lm[i]
      for dy in (-0.3, 0.0, 0.3):
        feet.append([p + (s * 0.25 * idn.eye_w, 0.0),
                     p + (s * 0.55 * idn.eye_w, dy * idn.eye_w)])
    add('line', _shade(skin, 0.45 * a6 + 0.15 * a7), *feet)
    if a6 > 0.15:
      add('line', _shade(skin, 0.4 * a6),
          *[_CR3 @ (lm[idx] + (0, 0.5 * idn.eye_h + 0.01 * U)) for idx in _BAGS])
  if a17 > 0.1:  # chin boss (AU17)
    y, w = (lm[57, 1] + lm[8, 1]) / 2, 0.45 * g['mw']
    add('line', _shade(skin, 0.4 * a17),
        _CR3 @ [[cx - w, y], [cx, y - 0.02 * U], [cx + w, y]])

  # Brows: a centre line with a thickness profile.
  th = idn.brow_thick * 0.6 * _BROW_THICK
  brows = []
  for line, t in ((lm[17:22], th), (lm[22:27], th[::-1])):
    brows.append(np.concatenate([_CR5 @ _xy(line[:, 0], line[:, 1] - t),
                                 (_CR5 @ _xy(line[:, 0], line[:, 1] + t))[::-1]]))
  add('fill', face_params.mix(hair, (20, 15, 12), 0.6), *brows)  # dark: contrast at 48 px

  # Eyes: whites, iris and pupil clipped by the lids, lid lines and creases.
  whites, irises, pupils, uppers, others = [], [], [], [], []
  r = 0.5 * idn.eye_w
  for ui, li in zip(_UPPER_LIDS, _LOWER_LIDS):
    upper, lower = _CR4 @ lm[ui], _CR4 @ lm[li]
    whites.append(np.concatenate([upper, lower[1:-1]]))
    ecx = 0.5 * (lm[ui[0], 0] + lm[ui[3], 0])
    ix = ecx + pose.gaze_x * idn.eye_w
    iy = 0.5 * (lm[ui[0], 1] + lm[ui[3], 1]) + pose.gaze_y * idn.eye_h
    irises.append(_clip_between(_ellipse(ix, iy, r, r), upper, lower))
    pupils.append(_clip_between(_ellipse(ix, iy, 0.45 * r, 0.45 * r, _CIRCLE12),
                                upper, lower))
    uppers.append(upper)
    # The lid crease stays put while AU5 lifts the lid towards it.
    dx = (upper[:, 0] - ecx) / idn.eye_w
    others += [_xy(upper[:, 0], (ey - 1.3 * idn.eye_h) + 0.5 * idn.eye_h * dx * dx), lower]
  add('fill', (238.0, 236.0, 230.0), *whites)
  add('fill', idn.iris, *irises)
  add('fill', (15.0, 12.0, 12.0), *pupils)
  add('line2', (30.0, 22.0, 20.0), *uppers)
  add('line', _shade(skin, 0.12), *others)

  # Nose: a side shade, the wings, nostrils and the base line.
  nw = 0.5 * (lm[35, 0] - lm[31, 0])
  add('line', _shade(skin, 0.08),
      _CR4 @ (lm[[27, 28, 29, 31]] + nw * _NOSE_SHADE + (0, 0.02 * U) * _NOSE_SHADE_Y),
      z=1.4)
  wings = [_CR3 @ (lm[i] + (s * nw, U) * _WING) for i, s in ((31, 1), (35, -1))]
  add('line', _shade(skin, 0.2), *wings, _CR5 @ lm[31:36], z=1.4)
  add('fill', _shade(skin, 0.55),
      *[_ellipse(lm[i, 0], lm[i, 1] - 0.012 * U, 0.2 * nw, 0.085 * nw, _CIRCLE12)
        for i in (32, 34)], z=1.5)

  # Mouth: lips, the inside when open, teeth, the lip line.
  upper, lower = _CR7 @ lm[_LIPS_UP], _CR7 @ lm[_LIPS_LO]
  add('fill', idn.lips, np.concatenate([upper, lower[1:-1]]))
  in_up, in_lo = _CR5 @ lm[60:65], _CR5 @ lm[_IN_LO]
  if g['opening'] > 0.004 * U:
    # A dark mouth cavity: the teeth cover at most its upper part, so an open
    # mouth reads as a dark hole even at 48 px.
    add('fill', (38.0, 10.0, 16.0), np.concatenate([in_up, in_lo[1:-1]]))
    tooth = min(0.035 * U, 0.25 * g['opening'])
    t_bot = _clip_between(in_up + (0, tooth), in_up, in_lo)
    add('fill', (238.0, 234.0, 222.0), np.concatenate([in_up, t_bot[::-1]]))
    if g['opening'] > 0.25 * U:  # lower teeth only in a wide-open mouth
      b_top = _clip_between(in_lo[::-1] - (0, 0.4 * tooth), in_up, in_lo)
      add('fill', (220.0, 215.0, 205.0), np.concatenate([b_top, in_lo]))
  add('line', _shade(idn.lips, 0.45), in_up)

  # Occluders move with the head, so they go through the same transform.
  if scene.occluder:
    q = scene.occluder_params
    if scene.occluder == 1:  # sunglasses
      add('fill', (20 + 40 * q[0],) * 3,
          *[_ellipse(*lm[i:i + 6].mean(0), 1.45 * idn.eye_w, 1.1 * idn.eye_w)
            for i in (36, 42)])
      add('line2', (20.0, 20.0, 20.0), [lm[39] + (0, -0.4 * idn.eye_w),
                                       lm[42] + (0, -0.4 * idn.eye_w)])
    elif scene.occluder == 2:  # a hand over the mouth or a cheek
      s = -1 if q[0] < 0.5 else 1
      hx = cx + s * (0.1 + 0.4 * q[1]) * W
      hy = lm[57, 1] + (q[2] - 0.5) * 0.2 * U
      col = face_params.skin_colour(q[3])
      add('fill', col, _ellipse(hx, hy, 0.42 * W, 0.3 * U))
      add('finger', col, *[[[hx - s * 0.25 * W, hy + (j - 1.5) * 0.09 * U],
                            [hx - s * (0.6 + 0.05 * (j % 3)) * W,
                             hy + (j - 1.5) * 0.09 * U - 0.03 * U]] for j in range(4)])
    else:  # an object (cup, phone, microphone) in front of the lower face
      ox, oy = cx + (q[0] - 0.5) * 1.4 * W, lm[57, 1] + (q[1] - 0.2) * 0.4 * U
      hw, hh = (0.2 + 0.3 * q[2]) * W, (0.2 + 0.4 * q[3]) * U
      add('fill', tuple(30 + 200 * x for x in q[3:6]),
          [[ox - hw, oy - hh], [ox + hw, oy - hh], [ox + hw, oy + hh], [ox - hw, oy + hh]],
          z=0.0)
  return cv, ops


_SHIFT = 4  # cv2 fixed-point bits: sub-pixel precise anti-aliased edges


def _draw(img, ops, pix, size):
  ip = np.rint(pix * (1 << _SHIFT)).astype(np.int32)
  lw = max(1, int(round(size / 110)))
  lw2 = lw + 1 if size >= 128 else lw
  for kind, col, spans in ops:
    polys = [ip[a:b] for a, b in spans]
    if kind == 'fill':
      cv2.fillPoly(img, polys, col, cv2.LINE_AA, _SHIFT)
    elif kind == 'line':
      cv2.polylines(img, polys, False, col, lw, cv2.LINE_AA, _SHIFT)
    elif kind == 'line2':
      cv2.polylines(img, polys, False, col, lw2, cv2.LINE_AA, _SHIFT)
    else:  # 'finger'
      cv2.polylines(img, polys, False, col, max(2, int(0.07 * size)), cv2.LINE_AA,
                    _SHIFT)


def render_face(identity: Identity, au_intensity, pose: Optional[Pose] = None,
                image_size: int = 64, channels: int = 3,
                rng: Optional[np.random.Generator] = None,
                scene: Optional[Scene] = None):
  """Draws one face.

  Args:
    identity: who (`sample_identity`).
    au_intensity: (14,) intensities in [0, 1], in `labels.AUS` order.
    pose: head pose (None: frontal and centred).
    image_size: side of the square image in pixels.
    channels: 3 (RGB) or 1 (gray).
    rng: draws the pixel noise when `scene.noise` > 0 (no noise without it).
    scene: photometric nuisances (`sample_scene`); None: the identity's plain
      lab background.

  Returns:
    image uint8 (S, S, C); landmarks float32 (68, 2), pixel (x, y) with pixel
    centres at integers; eyes float32 (2, 2), the mean of each eye's 6 landmarks,
    the eye on the image's left (36-41) first.
  """
  pose = pose or Pose()
  scene = scene or Scene(background=identity.background)
  au = np.clip(np.asarray(au_intensity, np.float64), 0.0, 1.0)
  if au.shape != (NUM_AUS,):
    raise ValueError(f'au_intensity must have shape ({NUM_AUS},), got {au.shape}')
  if channels not in (1, 3):
    raise ValueError(f'channels must be 1 or 3, got {channels}')
  size = int(image_size)
  cv, ops = _build(identity, au, pose, scene)
  pix = cv.transform(identity, pose, size)
  img = np.empty((size, size, 3), np.uint8)
  img[:] = [int(round(c)) for c in scene.background]
  if len(scene.clutter):
    face_scene.draw_clutter(img, scene.clutter, size)
  _draw(img, ops, pix, size)
  img = face_scene.photometric(img, scene, size, rng)
  if channels == 1:
    img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None]
  lm = pix[:68].astype(np.float32)
  eyes = lm[36:48].reshape(2, 6, 2).mean(1)
  return img, lm, eyes
