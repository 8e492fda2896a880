"""The 68 iBUG landmarks of a face: identity + 14 AU intensities, canonical frame.

Lengths are fractions of the image side, the face centred (x = CX), y down.
Each AU moves the landmarks as FACS describes it (brows, lids, nose, mouth,
jaw); the renderer (`face`) builds every drawn shape from these points, so the
image and the landmarks agree.

Landmark order (iBUG 68): jaw 0-16, brows 17-26 (17 and 26 outer ends), nose 27-35
(30 tip), eyes 36-47 (36-41 the eye on the image's left), mouth 48-67 (48/54 outer
corners, 62/66 inner lip centres).
"""
import numpy as np

from fer_jax.data.synthetic.face_params import Identity

CX = 0.5  # the canonical face is centred horizontally

_JAW_T = np.linspace(0, np.pi, 17)
_JAW_C, _JAW_S = np.cos(_JAW_T), np.sin(_JAW_T)
_JAW_SIGN, _JAW_ABS_C = np.sign(_JAW_C), np.abs(_JAW_C)
_JAW_W = _JAW_S**3          # how much each jaw point follows the chin
_JAW_CHIN = _JAW_S**11      # AU17 acts on the chin only
_EYE_X = np.array([-1, -0.32, 0.32, 1, 0.32, -0.32] * 2)
_EYE_SIDE = np.repeat([-1.0, 1.0], 6)
_EYE_UP = np.array([0, 1, 1, 0, 0, 0] * 2, np.float64)
_EYE_LO = np.array([0, 0, 0, 0, 1, 1] * 2, np.float64)
# Corners sit a little below the eye line, the outer ones higher than the inner.
_EYE_CY = np.array([-0.07, 0, 0, 0.05, 0, 0, 0.05, 0, 0, -0.07, 0, 0])
_NOSE_X = np.array([-1, -0.5, 0, 0.5, 1.0])
_NOSE_Y = np.array([0.012, 0.035, 0.045, 0.035, 0.012])
_LIN4 = np.linspace(0, 1, 4)
_BROW_T = np.linspace(0, 1, 5)                       # outer -> inner
_BROW_ARCH = np.array([0.35, 0.85, 1.0, 0.85, 0.55])
# Outer lip profile (x in units of the half-width, thickness weight), 48..54, 54..48.
_UP_X = np.array([-1.0, -0.62, -0.28, 0.0, 0.28, 0.62, 1.0])
_UP_W = np.array([0.0, 0.75, 1.0, 0.82, 1.0, 0.75, 0.0])
_LO_X = np.array([1.0, 0.62, 0.28, 0.0, -0.28, -0.62, -1.0])
_LO_W = np.array([0.0, 0.7, 0.95, 1.0, 0.95, 0.7, 0.0])
_IN_UP_X = np.array([-0.88, -0.45, 0.0, 0.45, 0.88])  # 60..64
_IN_LO_X = np.array([0.88, 0.45, 0.0, -0.45, -0.88])  # 64, 65, 66, 67, 60


def landmarks(identity: Identity, au) -> np.ndarray:
  """The 68 iBUG landmarks (canonical frame, (x, y) fractions) for these AUs."""
  return geometry(identity, np.clip(np.asarray(au, np.float64), 0, 1))['lm']


def _mouth_tables():
  """Per-point coefficients of the 20 mouth landmarks (48..67) on the mouth scalars."""
  mx = np.r_[_UP_X, _LO_X[1:6], _IN_UP_X, _IN_LO_X[1:4]]
  op = np.clip(1 - (mx / 0.88)**2, 0, 1)**0.6  # the lips part most in the middle
  z7, z5, z3 = np.zeros(7), np.zeros(5), np.zeros(3)
  lo_w = _LO_W[1:6]
  return dict(
      x=mx, x2=mx**2,
      tu=np.r_[-_UP_W, z5, z5, z3], tl=np.r_[z7, lo_w, z5, z3],
      o_up=np.r_[-0.8 * op[:7], z5, -op[12:17], z3],
      o_lo=np.r_[z7, op[7:12] * lo_w**0.3, z5, op[17:]],
      lift=np.r_[z7, -op[7:12] * lo_w**0.3, z5, -0.6 * op[17:]])


_MOUTH = _mouth_tables()
_BROW_IN = 0.1 + 0.9 * _BROW_T**1.5      # AU1 acts on the inner end
_BROW_OUT = 0.1 + 0.9 * (1 - _BROW_T)**1.5  # AU2 on the outer end
_BROW_LOW = 0.45 + 0.55 * _BROW_T**1.5   # AU4 lowers all, the inner end most
_BROW_WI = _BROW_T**1.5


def geometry(idn: Identity, au: np.ndarray) -> dict:
  """Landmarks ('lm') plus the few extra quantities the drawing needs: the lips'
  opening, the mouth half-width 'mw', the jaw's top 'y0' and the chin."""
  a1, a2, a4, a5, a6, a7, a9, a12, a15, a17, a20, a23, a25, a26 = au.tolist()
  U, W, cx, ey = idn.face_h, idn.face_w, CX, idn.eye_y
  lm = np.empty((68, 2))

  # Jaw: a superellipse from the eye line down to the chin; AU26 drops the jaw,
  # AU17 lifts the chin.
  y0, chin = ey + 0.02, ey + U
  e = 2.0 / idn.jaw
  lm[:17, 0] = cx - W * _JAW_SIGN * _JAW_ABS_C**e * (1 - 0.05 * a26 * _JAW_W)
  lm[:17, 1] = (y0 + (chin - y0) * _JAW_S**e + 0.2 * U * a26 * _JAW_W
                - 0.035 * U * a17 * _JAW_CHIN)

  # Brows, outer -> inner: AU1 lifts the inner ends, AU2 the outer ends, AU4 pulls
  # them down and together, AU9 lowers the inner ends a little. Amplitudes are
  # large enough to move the brows a pixel or two at 48 px.
  by = ((ey - idn.brow_h) - idn.brow_arch * _BROW_ARCH - (0.15 * U * a1) * _BROW_IN
        - (0.15 * U * a2) * _BROW_OUT + (0.09 * U * a4) * _BROW_LOW
        + (0.02 * U * a9) * _BROW_WI)
  x_in = idn.eye_dx - idn.eye_w * 0.95 - 0.07 * U * a4
  x_out = idn.eye_dx + idn.eye_w * 1.4 - 0.02 * U * a4
  bx = x_out + (x_in - x_out) * _BROW_T
  lm[17:22, 0] = cx - bx
  lm[17:22, 1] = by
  lm[22:27, 0] = cx + bx[::-1]
  lm[22:27, 1] = by[::-1]

  # Eyes: AU5 raises the upper lid, AU7 tightens both lids, AU6 pushes the lower lid
  # up from below, AU4 lowers the upper lid a little. AU5 at full intensity bares
  # the white above the iris (the lid clears the iris top).
  up = idn.eye_h * max(1 + 1.3 * a5 - 0.5 * a7 - 0.15 * a6 - 0.2 * a4, 0.15)
  lo = 0.75 * idn.eye_h * max(1 + 0.35 * a5 - 0.6 * a7 - 0.65 * a6, 0.08)
  lm[36:48, 0] = (cx + idn.eye_dx * _EYE_SIDE) + idn.eye_w * _EYE_X
  lm[36:48, 1] = (ey + idn.eye_h * _EYE_CY) - up * _EYE_UP + lo * _EYE_LO

  # Nose: AU9 pulls the nostrils and the tip up and flares the wings.
  y27, yt = ey - 0.3 * idn.brow_h, ey + idn.nose_len - 0.02 * U * a9
  lm[27:31, 0] = cx
  lm[27:31, 1] = y27 + (yt - y27) * _LIN4
  nw = idn.nose_w * (1 + 0.18 * a9)
  lm[31:36, 0] = cx + nw * _NOSE_X
  lm[31:36, 1] = (ey + idn.nose_len - 0.05 * U * a9) + U * _NOSE_Y

  # Mouth. Corners: AU12 up and out, AU15 down, AU20 out, AU23/AU26 in; the lip line
  # bends towards the corners. AU23 thins the lips, AU25 parts them, AU26 opens the
  # mouth with the jaw, AU17 pushes the lower lip up.
  mw = idn.mouth_w * (1 + 0.22 * a12 + 0.38 * a20 - 0.04 * a15 - 0.16 * a23
                      - 0.14 * a26 - 0.05 * a17)
  dyc = U * (-0.085 * a12 + 0.075 * a15 + 0.012 * a20 + 0.02 * a17)
  ym = ey + idn.nose_len + idn.mouth_dy - U * (0.04 * a9 + 0.02 * a17)
  thin = 1 - 0.25 * a12 - 0.3 * a20 - 0.75 * a23
  tu = idn.lip_u * max(thin, 0.25) * (1 - 0.3 * a9)
  tl = idn.lip_l * max(thin + 0.25 * a17, 0.25)
  # An open jaw drops the lower lip by ~a tenth of the face height (clear at 48 px).
  part = 0.11 * U * a25 + 0.05 * U * a26
  o_up, o_lo = 0.35 * part, 0.65 * part + 0.2 * U * a26
  m = _MOUTH
  lm[48:68, 0] = cx + mw * m['x']
  lm[48:68, 1] = (ym + dyc * m['x2'] + tu * m['tu'] + tl * m['tl'] + o_up * m['o_up']
                  + o_lo * m['o_lo'] + (0.025 * U * a17) * m['lift'])
  lm[65:68, 1] = np.maximum(lm[65:68, 1], lm[63:60:-1, 1])
  return dict(lm=lm, opening=o_up + o_lo, mw=mw, y0=y0, chin=chin)
