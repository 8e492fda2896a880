"""Canonical label spaces shared by every dataset in fer_jax.

Every source (synthetic or real) yields records in these label spaces; adapters of
real datasets map their own orders into them with explicit tables. The union
label space of multi-task learning (groups, slices, targets) is defined here too.
"""
from typing import Any, Dict, Sequence, Tuple

import numpy as np

# The 7 basic expressions, in fer_jax's canonical order (AffectNet's order).
EXPRESSIONS = ('neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger')

# Facial action units the synthetic renderer animates (FACS numbers).
AUS = (1, 2, 4, 5, 6, 7, 9, 12, 15, 17, 20, 23, 25, 26)
AU_NAMES = tuple(f'AU{n}' for n in AUS)

# Compound expressions of Du, Tao & Martinez (PNAS 2014), the 15 non-basic ones.
COMPOUND_EXPRESSIONS = (
    'happily_surprised', 'happily_disgusted', 'sadly_fearful', 'sadly_angry',
    'sadly_surprised', 'sadly_disgusted', 'fearfully_angry',
    'fearfully_surprised', 'fearfully_disgusted', 'angrily_surprised',
    'angrily_disgusted', 'disgustedly_surprised', 'appalled', 'hatred', 'awed',
)

DOMAINS = ('lab', 'wild')

# Value stored in an integer label field that the dataset does not annotate.
MISSING = -1

# The 8-class expression space (AffectNet basic8, FER+ and CK+ with contempt):
# the canonical 7, then contempt at index 7. A source that may yield contempt
# declares these names as its `expression_names`; a task trained on it needs 8
# expression outputs.
CONTEMPT = 'contempt'
EXPRESSIONS_WITH_CONTEMPT = EXPRESSIONS + (CONTEMPT,)

# Value of one entry of a record's `aus` / `au_intensity` vector that its
# dataset does not annotate (an AU the dataset does not code, or a per-image
# "not coded" value such as EmotioNet's 999). It marks the AU unknown, to be
# masked out of losses and metrics; it is never a negative (absent) label. A
# known AU is 0 or 1 in `aus` and an intensity in [0, 1] in `au_intensity`.
AU_MISSING = -1.0


def au_known(aus):
  """Per-AU mask (numpy or jax array, any leading shape): True where annotated."""
  return aus >= 0


# ---------------------------------------------------------------- union labels
# Multi-task learning (003) trains one sigmoid per label over the union of the
# label groups of its datasets: 7 expressions, 14 AUs, 15 compounds.

# Label groups with one sigmoid output per label, in union order.
GROUPS = ('expression', 'aus', 'compound')
GROUP_NAMES = {'expression': EXPRESSIONS, 'aus': AU_NAMES,
               'compound': COMPOUND_EXPRESSIONS}
# The two groups whose classes are mutually exclusive within one dataset (a
# compound_like record is either one basic or one compound class).
_EXCLUSIVE = ('expression', 'compound')

# Task targets -> the label group of the records that carries them.
TARGET_GROUPS = {'valence': 'va', 'arousal': 'va', 'expression': 'expression',
                 'aus': 'aus', 'compound': 'compound'}


def label_space(groups: Sequence[str]) -> Tuple[str, ...]:
  """The groups of `groups` with sigmoid outputs, in canonical union order."""
  unknown = set(groups) - set(GROUPS) - {'va'}
  if unknown:
    raise KeyError(f'Unknown label group(s) {sorted(unknown)}; valid: {GROUPS}')
  return tuple(g for g in GROUPS if g in groups)


def num_labels(groups: Sequence[str]) -> int:
  return sum(len(GROUP_NAMES[g]) for g in label_space(groups))


def group_slices(groups: Sequence[str]) -> Dict[str, slice]:
  """Where each group sits on the union label axis."""
  out, start = {}, 0
  for g in label_space(groups):
    out[g] = slice(start, start + len(GROUP_NAMES[g]))
    start += len(GROUP_NAMES[g])
  return out


def label_names(groups: Sequence[str]) -> Tuple[str, ...]:
  return tuple(f'{g}/{n}' for g in label_space(groups) for n in GROUP_NAMES[g])


def union_targets(fields: Dict[str, Any], groups: Sequence[str],
                  dataset_groups: Sequence[str] | None = None, xp=np):
  """(labels [..., L], label_mask [..., L]) from the canonical label fields.

  Works on one record or a batch (any leading shape), with numpy or jax.numpy
  (`xp`). An entry is known when the record carries its group (`has_*`); with
  `dataset_groups` (the groups its dataset annotates) also when the dataset
  annotates both exclusive groups and the record has the other one: a basic
  expression is then a known negative for every compound class, and vice versa.
  """
  ys, ms = [], []
  for g in label_space(groups):
    n = len(GROUP_NAMES[g])
    has = xp.asarray(fields.get(f'has_{g}', False)).astype(bool)
    if dataset_groups is not None:
      if g not in dataset_groups:
        has = xp.zeros_like(has)
      elif g in _EXCLUSIVE and set(_EXCLUSIVE) <= set(dataset_groups):
        other = _EXCLUSIVE[1 - _EXCLUSIVE.index(g)]
        has = has | xp.asarray(fields.get(f'has_{other}', False)).astype(bool)
    if g == 'aus':  # an AU the dataset does not code is -1 (AU_MISSING): unknown
      aus = xp.asarray(fields['aus']).astype(np.float32)
      y = xp.maximum(aus, 0.0)
      m = has[..., None] & au_known(aus)
    else:  # one-hot; MISSING (-1) gives all zeros
      y = (xp.asarray(fields[g])[..., None] == xp.arange(n)).astype(np.float32)
      m = xp.broadcast_to(has[..., None], y.shape)
    ys.append(y)
    ms.append(m)
  return xp.concatenate(ys, -1), xp.concatenate(ms, -1)
