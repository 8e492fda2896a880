"""Pictures of predictions: annotated frames and per-track timelines.

`annotate` draws each face's box, track id, label and a small valence-arousal
circumplex on a frame; `plot_timeline` draws one track over time (class
probabilities, valence/arousal) and its path on the circumplex.
"""
from typing import Any, Dict, Sequence

import cv2
import numpy as np

_GREEN, _WHITE, _BLACK, _RED = (80, 200, 80), (255, 255, 255), (0, 0, 0), (60, 60, 230)


def _text(img, s, org, scale):
  """White text with a dark outline, moved left so that it stays in the image."""
  (tw, _), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 3)
  org = (int(max(0, min(org[0], img.shape[1] - tw))), int(org[1]))
  cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _BLACK, 3, cv2.LINE_AA)
  cv2.putText(img, s, org, cv2.FONT_HERSHEY_SIMPLEX, scale, _WHITE, 1, cv2.LINE_AA)


def draw_circumplex(img, centre, radius, valence, arousal, scale=1.0):
  """Valence (x) / arousal (y, up) disc with the face's point (BGR, in place)."""
  cx, cy = centre
  cv2.circle(img, (cx, cy), radius, _BLACK, -1, cv2.LINE_AA)
  cv2.circle(img, (cx, cy), radius, _WHITE, 1, cv2.LINE_AA)
  cv2.line(img, (cx - radius, cy), (cx + radius, cy), (128, 128, 128), 1)
  cv2.line(img, (cx, cy - radius), (cx, cy + radius), (128, 128, 128), 1)
  v, a = float(valence) / scale, float(arousal) / scale
  norm = max(1.0, float(np.hypot(v, a)))  # out-of-range values sit on the rim
  px, py = cx + int(round(v / norm * radius)), cy - int(round(a / norm * radius))
  cv2.circle(img, (px, py), max(2, radius // 8), _RED, -1, cv2.LINE_AA)


def annotate(image_bgr: np.ndarray, rows: Sequence[Dict[str, Any]],
             predictor) -> np.ndarray:
  """A copy of a BGR image with each face's box, label and circumplex."""
  img = image_bgr.copy()
  ih, iw = img.shape[:2]
  scale = max(0.35, min(iw, ih) / 900)
  for r in rows:
    x, y, w, h = r['x'], r['y'], r['w'], r['h']
    cv2.rectangle(img, (x, y), (x + w, y + h), _GREEN, 2)
    lines = [] if r.get('track') is None else [f"#{r['track']}"]
    for o in predictor.outputs:
      if o.kind != 'value' and o.name in r:
        lines.append(f"{r[o.name]} {r[f'{o.name}/{r[o.name]}']:.2f}")
    if predictor.has_va:
      sd = lambda k: (f" (sd {r[k + '_std']:.2f})" if k + '_std' in r else '')  # noqa: E731
      lines.append(f"V {r['valence']:+.2f}{sd('valence')} "
                   f"A {r['arousal']:+.2f}{sd('arousal')}")
    lh = int(28 * scale) + 4
    top = y - 6 - lh * (len(lines) - 1)
    if top < lh:  # no room above: write below the box
      top = y + h + lh
    for k, s in enumerate(lines):
      _text(img, s, (x, top + k * lh), scale)
    if predictor.has_va:
      rad = int(np.clip(h // 4, 12, 60))
      cx = x + w + rad + 4 if x + w + 2 * rad + 4 < iw else max(rad, x - rad - 4)
      cy = int(np.clip(y + rad, rad, max(rad, ih - rad - 1)))
      draw_circumplex(img, (cx, cy), rad, r['valence'], r['arousal'],
                      predictor.va_scale)
  return img


def plot_timeline(track_df, predictor, path: str, title: str = '') -> str:
  """timeline PNG of one track's rows (time_s ascending): each softmax
  output's class probabilities and the values over time, and with valence and
  arousal their trajectory on the circumplex (colour = time)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  t = track_df['time_s'].to_numpy(float)
  panels = [o for o in predictor.outputs if o.kind != 'value']
  values = [o.name for o in predictor.outputs if o.kind == 'value']
  n = len(panels) + bool(values)
  va = predictor.has_va
  fig = plt.figure(figsize=(11 if va else 8, 2.6 * max(n, 1) + 0.6))
  grid = fig.add_gridspec(max(n, 1), 2 if va else 1,
                          width_ratios=[2.2, 1] if va else [1])
  row = 0
  for o in panels:
    ax = fig.add_subplot(grid[row, 0])
    for label in o.labels:
      ax.plot(t, track_df[f'{o.name}/{label}'], lw=1.2, label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(o.name)
    ax.legend(fontsize=7, ncol=4 if len(o.labels) > 8 else 1, loc='upper left',
              bbox_to_anchor=(1.0, 1.0) if not va else (0.0, 1.0))
    row += 1
  if values:
    ax = fig.add_subplot(grid[row, 0])
    for name in values:
      ax.plot(t, track_df[name], lw=1.2, label=name)
    ax.axhline(0, color='gray', lw=0.5)
    ax.set_ylabel('value')
    ax.legend(fontsize=7, loc='upper left')
  fig.axes[-1].set_xlabel('time (s)')
  if va:
    ax = fig.add_subplot(grid[:, 1])
    s = predictor.va_scale
    ax.add_patch(matplotlib.patches.Circle((0, 0), 1.0, fill=False, color='gray'))
    ax.axhline(0, color='gray', lw=0.5)
    ax.axvline(0, color='gray', lw=0.5)
    v = track_df['valence'].to_numpy(float) / s
    a = track_df['arousal'].to_numpy(float) / s
    ax.plot(v, a, color='gray', lw=0.5, alpha=0.6)
    sc = ax.scatter(v, a, c=t, s=8, cmap='viridis')
    fig.colorbar(sc, ax=ax, label='time (s)', shrink=0.7)
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_aspect('equal')
    ax.set_xlabel('valence')
    ax.set_ylabel('arousal')
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path
