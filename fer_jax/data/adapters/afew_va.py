"""AFEW-VA: per-clip folders of frames with a <clip>.json of valence/arousal.

Layout (clips may sit one level down, e.g. 01/001/): <clip>/<clip>.json with
{"actor": ..., "frames": {"00000": {"valence": v, "arousal": a, "landmarks":
[[x, y] x 68]}, ...}} and frames <clip>/<frame key>.png. valence/arousal are
integers in [-10, 10], scaled to [-1, 1] (/10). There are no official splits:
clips are split (fractions of train/validation/test, seed) so a clip never
spans two splits; split='all' gives every clip. subject = the actor's index
among the sorted actor names; clip = the clip id.
"""
import json
import os

from fer_jax.data.adapters import base

LAYOUT = ('  <manual_dir>/[<group>/]<clip>/<clip>.json  (clip = 001..600)\n'
          '  <manual_dir>/[<group>/]<clip>/00000.png, 00001.png, ...')


def find_clips(manual_dir):
  clips = {}
  for root, _, files in os.walk(manual_dir):
    name = os.path.basename(root)
    if f'{name}.json' in files and name.isdigit():
      clips[name] = root
  return dict(sorted(clips.items()))


def afew_va(split: str, manual_dir: str, image_size=None, channels: int = 3,
            fractions=(0.8, 0.1, 0.1), seed: int = 0, skip_bad: bool = False):
  """AFEW-VA frames as records (see module doc)."""
  if not os.path.isdir(manual_dir):
    raise base.missing_layout('afew_va', manual_dir, '.', LAYOUT)
  clips = find_clips(manual_dir)
  if not clips:
    raise base.missing_layout('afew_va', manual_dir, '<clip>/<clip>.json', LAYOUT)
  col = base.Collector(skip_bad)
  parsed = {}
  for name, d in clips.items():
    path = os.path.join(d, f'{name}.json')
    try:
      with open(path) as f:
        parsed[name] = json.load(f)
      if not isinstance(parsed[name].get('frames'), dict):
        raise ValueError('no "frames" object')
    except (ValueError, OSError) as e:
      parsed.pop(name, None)
      col.bad(path, f'unreadable clip json ({e})')
  actors = sorted({str(p.get('actor', '')) for p in parsed.values()})
  keep = base.subject_split(list(parsed), split, fractions, seed)
  for name in sorted(keep):
    data, d = parsed[name], clips[name]
    path = os.path.join(d, f'{name}.json')
    for key in sorted(data['frames']):
      where = f'{path}: frame {key!r}'
      fr = data['frames'][key]
      try:
        v, a = float(fr['valence']), float(fr['arousal'])
        if not (-10 <= v <= 10 and -10 <= a <= 10):
          raise ValueError(f'valence/arousal ({v}, {a}) outside [-10, 10]')
        lm = fr.get('landmarks')
        lm = base.parse_landmarks(lm, where) if lm is not None else None
      except (KeyError, TypeError, ValueError) as e:
        col.bad(where, str(e).split(': ', 1)[-1] if isinstance(e, ValueError)
                else f'missing or malformed field {e}')
        continue
      image = os.path.join(d, f'{key}.png')
      if not os.path.isfile(image):
        col.bad(where, f'frame image {image} not found')
        continue
      col.add(where=where, image=image, valence=v / 10, arousal=a / 10, has_va=True,
              landmarks=lm, subject=actors.index(str(data.get('actor', ''))),
              clip=int(name), frame=int(key) if key.isdigit() else 0)
  if skip_bad:
    base.check_images(col, channels)
  return base.AdapterSource('afew_va', split, col, domain='wild',
                            image_size=image_size, channels=channels)
