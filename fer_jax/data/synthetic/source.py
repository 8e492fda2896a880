"""Random-access sources over the presets: record i is rendered when asked for.

Each record is a pure function of (preset, split, seed, index, image_size, channels):
its randomness comes from PRNG streams keyed by those values, never from shared
state, so grain workers, restarts and machines all see the same data. A subject's
identity and affect style are keyed by (seed, preset, subject) only, so they are the
same in every split; records of different splits come from different streams (and,
for video, different clips).
"""
import dataclasses
import math
import operator
import zlib
from typing import Any, Dict, Sequence

import numpy as np

from fer_jax.data import labels
from fer_jax.data.synthetic import affect
from fer_jax.data.synthetic import face
from fer_jax.data.synthetic import face_params
from fer_jax.data.synthetic import face_scene
from fer_jax.data.synthetic.presets import SPLITS, PresetSpec, get_preset

# Stream tags, so the PRNG keys of subjects, clips and records never coincide.
_SUBJECT, _CLIP, _RECORD = 1, 2, 3

RECORD_KEYS = ('image', 'valence', 'arousal', 'expression', 'compound', 'aus',
               'au_intensity', 'landmarks', 'eyes', 'subject', 'domain', 'clip',
               'frame', 'index', 'has_va', 'has_expression', 'has_aus',
               'has_compound')


def _key(name: str) -> int:
  return zlib.crc32(name.encode())  # stable across processes, unlike hash()


def subject_profile(spec: PresetSpec, seed: int, subject: int):
  """(identity, affect style) of one subject of a preset."""
  rng = np.random.default_rng([seed, _key(spec.name), _SUBJECT, subject])
  return face_params.sample_identity(rng), affect.sample_style(rng)


def _subject_range(spec: PresetSpec, split: str):
  """Subjects [lo, hi) that may appear in `split`."""
  if not spec.disjoint_subjects:
    return 0, spec.num_subjects
  total = sum(spec.splits.values())
  bounds = [0]
  for s in SPLITS:
    bounds.append(bounds[-1] + max(1, round(spec.num_subjects * spec.splits[s] / total)))
  bounds[-1] = spec.num_subjects  # the last split takes the rounding rest
  i = SPLITS.index(split)
  return bounds[i], bounds[i + 1]


def _expression_class(spec: PresetSpec, u: float, peaks_only: bool = False) -> int:
  """Class index (into labels.EXPRESSIONS) drawn by inverse CDF from u in [0, 1)."""
  names, probs = spec.expressions, spec.class_probs or (1.0,) * len(spec.expressions)
  if peaks_only:  # a sequence's apex is never neutral
    names, probs = zip(*[(n, p) for n, p in zip(names, probs) if n != 'neutral'])
  c = np.cumsum(probs)
  k = min(int(np.searchsorted(c, u * c[-1], 'right')), len(names) - 1)
  return labels.EXPRESSIONS.index(names[k])


def _stills_content(spec, style, rng):
  """(expression, compound, AU intensities, valence, arousal) of one still."""
  u = rng.random(4)
  lo, hi = spec.intensity
  intensity = lo + (hi - lo) * u[1]
  expression = compound = labels.MISSING
  if u[0] < spec.compound_fraction:
    compound = min(int(u[2] * len(labels.COMPOUND_EXPRESSIONS)),
                   len(labels.COMPOUND_EXPRESSIONS) - 1)
    proto, loc = affect.COMPOUND_AUS[compound], affect.COMPOUND_VA[compound]
  elif u[0] < spec.compound_fraction + spec.au_combo_fraction:
    proto = (rng.random(affect.NUM_AUS) < 2.5 / affect.NUM_AUS) * rng.random(
        affect.NUM_AUS)
    loc = (0.0, 0.0)
  else:
    expression = _expression_class(spec, u[3])
    proto, loc = affect.EXPRESSION_AUS[expression], affect.EXPRESSION_VA[expression]
  v, a = affect.expression_va(loc, intensity, rng)
  au = affect.affect_aus(style, proto, intensity, v, a, rng)
  return expression, compound, au, v, a


def _video_content(spec, style, clip_rng, frame, rng):
  t = frame / max(spec.frames_per_clip - 1, 1)
  expression = labels.MISSING
  if 'expression' in spec.labels:  # a posed sequence, neutral -> peak
    lo, hi = spec.intensity
    u = clip_rng.random(2)
    peak = _expression_class(spec, u[0], peaks_only=True)
    ramp = (lo + (hi - lo) * u[1]) * t**1.3
    v, a = affect.expression_va(affect.EXPRESSION_VA[peak], ramp, clip_rng, spread=0.1)
    v, a = v * t, a * t
    au = affect.affect_aus(style, affect.EXPRESSION_AUS[peak], ramp, v, a, rng,
                           noise=0.03)
    expression = peak if t >= 0.5 else labels.EXPRESSIONS.index('neutral')
  else:  # continuous affect: AUs follow the subject's own g(v, a)
    v, a = affect.trajectory_at(affect.clip_trajectory(clip_rng), t)
    au = affect.affect_aus(style, np.zeros(affect.NUM_AUS), 0.0, v, a, rng,
                           va_weight=1.0, noise=0.04)
  return expression, labels.MISSING, au, v, a


def _clip_pose(base: face_params.Pose, clip_rng, t: float) -> face_params.Pose:
  """Smooth head motion around the clip's pose."""
  u = clip_rng.random(6)
  w = lambda i: math.sin(2 * math.pi * ((0.5 + u[i]) * t + u[i + 3]))  # noqa: E731
  return dataclasses.replace(base, yaw=base.yaw + 0.12 * w(0),
                             roll=base.roll + 0.06 * w(1), tx=base.tx + 0.02 * w(2))


def _video_position(spec: PresetSpec, split: str, index: int):
  """(subject, clip, frame) of record `index` of a video preset."""
  lo, hi = _subject_range(spec, split)
  local_clip, frame = divmod(index, spec.frames_per_clip)
  clip = sum(spec.clips(s) for s in SPLITS[:SPLITS.index(split)]) + local_clip
  subject = lo + (clip if not spec.disjoint_subjects else local_clip) % (hi - lo)
  return subject, clip, frame


def make_record(spec: PresetSpec, split: str, index: int, image_size: int,
                channels: int, seed: int = 0, all_labels: bool = False
                ) -> Dict[str, Any]:
  """Renders record `index` of a preset split (see SyntheticSource)."""
  pkey = _key(spec.name)
  split_id = SPLITS.index(split)
  rng = np.random.default_rng([seed, pkey, _RECORD, split_id, index])
  lo, hi = _subject_range(spec, split)
  wild = spec.domain == 'wild'
  if spec.kind == 'video':
    subject, clip, frame = _video_position(spec, split, index)
    identity, style = subject_profile(spec, seed, subject)
    clip_rng = np.random.default_rng([seed, pkey, _CLIP, clip])
    pose = scene = None
    if wild:
      pose = face_params.sample_pose(clip_rng, 'wild', spec.wild_strength)
      scene = face_scene.sample_scene(clip_rng, 'wild', identity, spec.wild_strength)
      pose = _clip_pose(pose, clip_rng, frame / spec.frames_per_clip)
    expression, compound, au, v, a = _video_content(spec, style, clip_rng, frame, rng)
  else:
    clip, frame = labels.MISSING, 0
    subject = lo + min(int(rng.random() * (hi - lo)), hi - lo - 1)
    identity, style = subject_profile(spec, seed, subject)
    expression, compound, au, v, a = _stills_content(spec, style, rng)
    pose = scene = None
    if wild:
      pose = face_params.sample_pose(rng, 'wild', spec.wild_strength)
      scene = face_scene.sample_scene(rng, 'wild', identity, spec.wild_strength)
  image, landmarks, eyes = face.render_face(identity, au, pose, image_size, channels,
                                            rng, scene)

  has = lambda group: all_labels or group in spec.labels  # noqa: E731
  has_va, has_aus = has('va'), has('aus')
  has_expression = has('expression') and expression >= 0
  has_compound = has('compound') and compound >= 0
  au = au.astype(np.float32)
  return {
      'image': image,
      'valence': np.float32(v if has_va else 0.0),
      'arousal': np.float32(a if has_va else 0.0),
      'expression': np.int32(expression if has_expression else labels.MISSING),
      'compound': np.int32(compound if has_compound else labels.MISSING),
      'aus': affect.au_occurrence(au) if has_aus else np.zeros_like(au),
      'au_intensity': au if has_aus else np.zeros_like(au),
      'landmarks': landmarks,
      'eyes': eyes,
      'subject': np.int32(subject),
      'domain': np.int32(labels.DOMAINS.index(spec.domain)),
      'clip': np.int32(clip),
      'frame': np.int32(frame),
      'index': np.int32(index),
      'has_va': np.bool_(has_va),
      'has_expression': np.bool_(has_expression),
      'has_aus': np.bool_(has_aus),
      'has_compound': np.bool_(has_compound),
  }


class SyntheticSource:
  """A preset split as a grain random-access source (`__len__`, `__getitem__`).

  Args:
    preset: a name in `PRESETS` (e.g. 'affectnet_like').
    split: 'train', 'validation' or 'test'.
    image_size, channels: override the preset's defaults (1 gray or 3 RGB).
    seed: the whole dataset is a pure function of it.
    all_labels: also fill the label groups the preset does not annotate (ground
      truth for analysis; the has_* flags then say True for them).
  """

  def __init__(self, preset: str, split: str = 'train', image_size=None,
               channels=None, seed: int = 0, all_labels: bool = False):
    self.spec = get_preset(preset)
    if split not in self.spec.splits:
      raise ValueError(f'Unknown split {split!r} of synthetic preset {preset!r}; '
                       f'valid splits: {", ".join(SPLITS)}')
    self.split = split
    self.image_size = int(image_size or self.spec.image_size)
    self.channels = int(channels or self.spec.channels)
    if self.channels not in (1, 3):
      raise ValueError(f'channels must be 1 or 3, got {self.channels}')
    self.seed = int(seed)
    self.all_labels = bool(all_labels)
    self.labels = self.spec.labels

  def __len__(self) -> int:
    return self.spec.splits[self.split]

  def __getitem__(self, index) -> Dict[str, Any]:
    i = operator.index(index)
    if not 0 <= i < len(self):
      raise IndexError(f'index {i} out of range for {self!r} of length {len(self)}')
    return make_record(self.spec, self.split, i, self.image_size, self.channels,
                       self.seed, self.all_labels)

  def video_position(self, index: int):
    """(subject, clip, frame) of a video record without rendering it (None
    for stills), so a protocol can pick frames before paying for them."""
    if self.spec.kind != 'video':
      return None
    return _video_position(self.spec, self.split, operator.index(index))

  def __repr__(self):
    return (f'SyntheticSource({self.spec.name!r}, {self.split!r}, '
            f'image_size={self.image_size}, channels={self.channels}, seed={self.seed})')


def render_batch(source: SyntheticSource, indices: Sequence[int]) -> Dict[str, np.ndarray]:
  """Records `indices` of a source stacked along a new leading axis."""
  records = [source[i] for i in indices]
  return {k: np.stack([r[k] for r in records]) for k in RECORD_KEYS}
