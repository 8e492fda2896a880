"""What every real-dataset adapter shares: entries, records, errors, splits.

An adapter parses a dataset's own files once (at construction) into a list of
entries, each a small dict: where it came from ('file:line'), the image (a path,
or pixels for csv datasets), its labels already in fer_jax's label spaces, and
optionally 68 landmarks and a face box. `AdapterSource[i]` then reads and
resizes image i and returns a record with every key of `RECORD_KEYS`, fixed
shapes, like the synthetic source.

Conventions for real data:
  * Landmarks or eyes a dataset does not give are NaN-filled (never zeros: a
    zero point is a valid pixel; NaN cannot be mistaken for one). Eyes are the
    means of the 68-point eye contours (iBUG 36-41 -> eyes[0], 42-47 -> eyes[1]),
    so eyes[0] is the eye on the image's left, as `crops.align_by_eyes` wants.
  * Missing labels are 0 (float) or MISSING (int) with has_* False.
  * Bad input (missing file, malformed row, out-of-range label, corrupt image)
    raises `AdapterError` naming the file and line; with `skip_bad=True` the
    entry is dropped and its reason appended to `source.skipped`. Entries left
    out by policy (contempt, non-faces, no majority...) are counted in
    `source.dropped`, never reported as bad.
  * AUs: `aus` (occurrence 0/1) and `au_intensity` ([0, 1]) are in the
    project's AU order (`labels.AUS`); an AU the dataset does not code, or does
    not code for this record, is `labels.AU_MISSING` (-1) in both: unknown, to
    be masked (`labels.au_known`), never a negative. AUs the dataset codes but
    the project lacks are dropped and noted in `source.notes`.
  * A source declares `labels` (its label groups, as the synthetic sources do,
    for mixtures) and `expression_names` (`labels.EXPRESSIONS`, or
    `labels.EXPRESSIONS_WITH_CONTEMPT` when it may yield contempt = 7).
  * Video datasets give `VideoFrame(path, index)` images, read by
    `adapters.video` (OpenCV). `AdapterError`, `LayoutError` and `VideoFrame`
    live in `adapters.shared`, which both import.
"""
import collections
import os
import zlib
from typing import Any, Dict, List, Mapping, Optional, Sequence

import cv2
import numpy as np

from fer_jax.data import crops, labels
from fer_jax.data.adapters import video
from fer_jax.data.adapters.shared import AdapterError, LayoutError, VideoFrame
from fer_jax.data.synthetic.source import RECORD_KEYS

SPLITS = ('train', 'validation', 'test')
NUM_AUS = len(labels.AUS)
# Index of contempt when a config asks to keep it: after the canonical 7.
CONTEMPT = len(labels.EXPRESSIONS)


def missing_layout(dataset: str, manual_dir: str, missing: str, layout: str):
  return LayoutError(
      f'{dataset}: expected {missing!r} under manual_dir={manual_dir!r}, not '
      f'found. Expected layout (as distributed):\n{layout}')


class Collector:
  """Collects entries, routing bad ones to an error or to `skipped`."""

  def __init__(self, skip_bad: bool):
    self.skip_bad = skip_bad
    self.entries: List[Dict[str, Any]] = []
    self.skipped: List[str] = []
    self.dropped = collections.Counter()
    self.notes: List[str] = []

  def bad(self, where: str, reason: str):
    if not self.skip_bad:
      raise AdapterError(f'{where}: {reason} (pass skip_bad=True to skip and count '
                         'bad entries)')
    self.skipped.append(f'{where}: {reason}')

  def drop(self, reason: str):
    self.dropped[reason] += 1

  def note(self, text: str):
    if text not in self.notes:
      self.notes.append(text)

  def add(self, **entry):
    self.entries.append(entry)


def read_image(path: str, channels: int) -> np.ndarray:
  """HxWxC uint8 (RGB or gray) of an image file; AdapterError if unreadable."""
  try:
    buf = np.fromfile(path, np.uint8)
  except OSError as e:
    raise AdapterError(f'{path}: cannot read image ({e})') from None
  flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
  img = cv2.imdecode(buf, flag) if buf.size else None
  if img is None:
    raise AdapterError(f'{path}: corrupt or unsupported image file')
  return img[..., None] if img.ndim == 2 else img[..., ::-1].copy()


def au_vectors(values: Mapping[int, float], intensities: Optional[Mapping[int, float]]
               = None):
  """(aus, au_intensity), each (NUM_AUS,) float32 in `labels.AUS` order.

  values: FACS AU number -> occurrence (0 or 1) for the AUs this record codes;
  intensities: AU number -> intensity in [0, 1] (default: the occurrence).
  Project AUs absent from `values` are `labels.AU_MISSING` in both vectors;
  AUs the project lacks are ignored (the adapter notes them once).
  """
  intensities = values if intensities is None else intensities
  aus = np.full(NUM_AUS, labels.AU_MISSING, np.float32)
  inten = np.full(NUM_AUS, labels.AU_MISSING, np.float32)
  for k, au in enumerate(labels.AUS):
    if au in values:
      aus[k] = values[au]
      inten[k] = intensities.get(au, labels.AU_MISSING)
  return aus, inten


def au_note(dataset: str, dataset_aus: Sequence[int]) -> List[str]:
  """The notes on how a dataset's AU set maps onto the project's."""
  lacking = [a for a in dataset_aus if a not in labels.AUS]
  unknown = [a for a in labels.AUS if a not in dataset_aus]
  notes = []
  if lacking:
    notes.append(f'{dataset} AUs {lacking} are not in the project AU space '
                 f'(labels.AUS); dropped')
  if unknown:
    notes.append(f'project AUs {unknown} are not coded by {dataset}; their '
                 'labels are AU_MISSING (masked)')
  return notes


def eyes_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
  lm = np.asarray(landmarks, np.float32)
  if lm.shape != (68, 2):
    return np.full((2, 2), np.nan, np.float32)
  return np.stack([lm[36:42].mean(0), lm[42:48].mean(0)]).astype(np.float32)


def parse_landmarks(values, where: str) -> np.ndarray:
  """(68, 2) float32 from 136 interleaved x, y values (or 68 pairs)."""
  lm = np.asarray(values, np.float64).reshape(-1)
  if lm.size != 136 or not np.all(np.isfinite(lm)):
    raise ValueError(f'{where}: expected 68 finite (x, y) landmarks, got {lm.size} '
                     'values')
  return lm.reshape(68, 2).astype(np.float32)


def nan_landmarks() -> np.ndarray:
  return np.full((68, 2), np.nan, np.float32)


def subject_split(subjects: Sequence, split: str, fractions: Sequence[float],
                  seed: int) -> set:
  """The subjects of `split` when a dataset has no official split.

  Unique subjects are sorted, shuffled with `seed` and cut by `fractions`
  (train, validation, test), so no subject is in two splits. 'all' = every one.
  """
  uniq = sorted(set(subjects))
  if split == 'all':
    return set(uniq)
  if split not in SPLITS:
    raise ValueError(f'Unknown split {split!r}; valid: {", ".join(SPLITS)}, all')
  if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
    raise ValueError(f'fractions must be 3 non-negative numbers, got {fractions}')
  order = np.random.default_rng(seed).permutation(len(uniq))
  cuts = np.round(np.cumsum(fractions) / sum(fractions) * len(uniq)).astype(int)
  lo = 0 if split == 'train' else cuts[SPLITS.index(split) - 1]
  hi = cuts[SPLITS.index(split)]
  return {uniq[j] for j in order[lo:hi]}


def check_split(split: str, valid=SPLITS):
  if split not in valid:
    raise ValueError(f'Unknown split {split!r}; valid: {", ".join(valid)}')


def stable_id(name: str) -> int:
  """A non-negative int32 id of a string (for subjects named by strings)."""
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


class AdapterSource:
  """Random-access source over parsed entries (grain's `__len__`/`__getitem__`).

  Entry keys: where (str), image (path or HxWxC uint8 array), and optionally
  expression, valence, arousal (has_va), aus, au_intensity, landmarks (68, 2),
  box (x0, y0, x1, y1) to crop, subject, clip, frame.
  image_size: None keeps each image's own size (then TFDS needs them all equal);
    an int crops the box (or the whole image) and stretches it to a square of
    that side, landmarks and eyes moved with the pixels.
  channels: 1 (gray) or 3 (RGB); images are read/converted to it.
  """

  def __init__(self, name: str, split: str, collector: Collector, *, domain: str,
               image_size: Optional[int], channels: int,
               groups: Optional[Sequence[str]] = None,
               expression_names: Sequence[str] = labels.EXPRESSIONS):
    if channels not in (1, 3):
      raise ValueError(f'channels must be 1 or 3, got {channels}')
    self.name, self.split = name, split
    self.entries = collector.entries
    self.skipped = collector.skipped
    self.dropped = dict(collector.dropped)
    self.notes = list(collector.notes)
    # Label groups (as the synthetic sources' `.labels`, read by mixtures);
    # by default the groups the entries carry.
    self.labels = tuple(groups) if groups is not None else _groups(self.entries)
    self.expression_names = tuple(expression_names)
    self.domain = labels.DOMAINS.index(domain)
    self.image_size = None if image_size is None else int(image_size)
    self.channels = int(channels)

  def __len__(self) -> int:
    return len(self.entries)

  def __repr__(self):
    return (f'{type(self).__name__}({self.name!r}, {self.split!r}, n={len(self)}, '
            f'skipped={len(self.skipped)}, dropped={self.dropped})')

  def _image(self, entry) -> np.ndarray:
    img = entry['image']
    if isinstance(img, str):
      return read_image(img, self.channels)
    if isinstance(img, VideoFrame):
      return video.read_frame(img, self.channels)
    img = crops.as_hwc(img)
    if img.shape[-1] != self.channels:
      code = cv2.COLOR_GRAY2RGB if self.channels == 3 else cv2.COLOR_RGB2GRAY
      img = crops.restore_channels(cv2.cvtColor(img, code), self.channels)
    return img

  def __getitem__(self, index) -> Dict[str, Any]:
    i = int(index)
    if not 0 <= i < len(self):
      raise IndexError(f'index {i} out of range for {self!r}')
    e = self.entries[i]
    image = self._image(e)
    lm = e.get('landmarks')
    lm = nan_landmarks() if lm is None else np.asarray(lm, np.float32)
    box = e.get('box')
    if self.image_size is not None or box is not None:
      h, w = image.shape[:2]
      box = box if box is not None else (0, 0, w, h)
      size = self.image_size or (max(1, round(box[3] - box[1])),
                                 max(1, round(box[2] - box[0])))
      image, lm = crops.crop_box(image, box, size, lm, border='nearest')
    has_va = bool(e.get('has_va', False))
    expression = int(e.get('expression', labels.MISSING))
    aus = e.get('aus')
    record = {
        'image': np.ascontiguousarray(image, np.uint8),
        'valence': np.float32(e['valence'] if has_va else 0.0),
        'arousal': np.float32(e['arousal'] if has_va else 0.0),
        'expression': np.int32(expression),
        'compound': np.int32(labels.MISSING),
        'aus': np.asarray(aus if aus is not None else np.zeros(NUM_AUS), np.float32),
        'au_intensity': np.asarray(e.get('au_intensity', np.zeros(NUM_AUS)),
                                   np.float32),
        'landmarks': lm.astype(np.float32),
        'eyes': eyes_from_landmarks(lm),
        'subject': np.int32(e.get('subject', labels.MISSING)),
        'domain': np.int32(self.domain),
        'clip': np.int32(e.get('clip', labels.MISSING)),
        'frame': np.int32(e.get('frame', 0)),
        'index': np.int32(i),
        'has_va': np.bool_(has_va),
        'has_expression': np.bool_(expression >= 0),
        'has_aus': np.bool_(aus is not None),
        'has_compound': np.bool_(False),
    }
    assert tuple(record) == RECORD_KEYS
    return record


def _groups(entries) -> tuple:
  found = set()
  for e in entries:
    if e.get('has_va'):
      found.add('va')
    if e.get('expression', labels.MISSING) >= 0:
      found.add('expression')
    if e.get('aus') is not None:
      found.add('aus')
  return tuple(g for g in ('va', 'expression', 'aus') if g in found)


def check_images(collector: Collector, channels: int):
  """With skip_bad, decodes every image once so corrupt ones are skipped now
  (not found mid-epoch); costs one decode pass over the split. Video frames
  are not decoded here (their videos are probed when the adapter is built)."""
  keep = []
  for e in collector.entries:
    if isinstance(e['image'], str):
      try:
        read_image(e['image'], channels)
      except AdapterError as err:
        collector.bad(e['where'], str(err))
        continue
    keep.append(e)
  collector.entries = keep


def unreadable_images(source) -> List[str]:
  """'path: reason' of each entry of `source` whose image file does not
  decode (one decode pass; video frames are not decoded: their videos are
  probed when the adapter is built). launch/prepare.py runs it before writing,
  so a corrupt file is refused with its path before anything is built."""
  bad = []
  for e in getattr(source, 'entries', ()):
    if isinstance(e['image'], str):
      try:
        read_image(e['image'], source.channels)
      except AdapterError as err:
        bad.append(str(err))  # names the file
  return bad


def require(path: str, dataset: str, manual_dir: str, layout: str) -> str:
  if not os.path.exists(path):
    raise missing_layout(dataset, manual_dir, os.path.relpath(path, manual_dir),
                         layout)
  return path
