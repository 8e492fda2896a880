"""Presets: synthetic datasets shaped like the ones the papers use.

A preset fixes the domain, split sizes (index ranges: records are rendered on the
fly), subjects, stills or video clips, which label groups are annotated, and the
default image size. Look them up with `get_preset(name)` or `PRESETS`.
"""
import dataclasses
from typing import Dict, Optional, Tuple

from fer_jax.data.labels import DOMAINS, EXPRESSIONS
from fer_jax.registry import Registry

PRESETS = Registry('synthetic preset')
SPLITS = ('train', 'validation', 'test')
LABEL_GROUPS = ('va', 'expression', 'aus', 'compound')


@dataclasses.dataclass(frozen=True)
class PresetSpec:
  """One synthetic dataset.

  splits: records per split (for video: clips * frames_per_clip).
  labels: annotated label groups, a subset of LABEL_GROUPS.
  expressions: basic classes that occur (names from EXPRESSIONS).
  class_probs: their frequencies (None: uniform).
  compound_fraction: share of compound-expression records (stills).
  au_combo_fraction: share of records showing a random AU combination (stills).
  disjoint_subjects: each split has its own subjects (else all splits share them).
  wild_strength: scales pose range and nuisance probabilities in the 'wild' domain.
  intensity: range of expression intensities (posed lab sets are intense).
  """
  name: str
  domain: str
  splits: Dict[str, int]
  num_subjects: int
  kind: str = 'stills'
  labels: Tuple[str, ...] = ('expression',)
  image_size: int = 64
  channels: int = 3
  expressions: Tuple[str, ...] = EXPRESSIONS
  class_probs: Optional[Tuple[float, ...]] = None
  compound_fraction: float = 0.0
  au_combo_fraction: float = 0.0
  frames_per_clip: int = 1
  disjoint_subjects: bool = False
  wild_strength: float = 1.0
  intensity: Tuple[float, float] = (0.3, 1.0)
  description: str = ''

  def __post_init__(self):
    assert self.domain in DOMAINS, self.domain
    assert self.kind in ('stills', 'video'), self.kind
    assert set(self.splits) == set(SPLITS), self.splits
    assert set(self.labels) <= set(LABEL_GROUPS), self.labels
    assert set(self.expressions) <= set(EXPRESSIONS), self.expressions
    if self.kind == 'video':
      assert all(n % self.frames_per_clip == 0 for n in self.splits.values()), self

  def clips(self, split: str) -> int:
    return self.splits[split] // self.frames_per_clip


def _register(spec: PresetSpec) -> PresetSpec:
  return PRESETS.register(spec.name)(spec)


def get_preset(name: str) -> PresetSpec:
  return PRESETS.get(name)


_FER2013_PROBS = (0.173, 0.25, 0.169, 0.111, 0.143, 0.015, 0.139)
_AFFECTNET_PROBS = (0.22, 0.3, 0.11, 0.09, 0.07, 0.06, 0.15)
_SFEW_PROBS = (0.16, 0.2, 0.18, 0.1, 0.09, 0.06, 0.21)

_register(PresetSpec(
    name='affectnet_like', domain='wild', num_subjects=2000, wild_strength=0.5,
    splits={'train': 40000, 'validation': 4000, 'test': 4000},
    labels=('va', 'expression'), class_probs=_AFFECTNET_PROBS,
    description='Large in-the-wild set with valence/arousal and 7 expressions '
                '(AffectNet; 000 trains its general VA model on it, 004 its classifiers).'))
_register(PresetSpec(
    name='amigos_like', domain='lab', kind='video', num_subjects=10,
    frames_per_clip=100, splits={'train': 10000, 'validation': 1000, 'test': 1000},
    labels=('va',),
    description='10 subjects x 10 clips x 100 frames of smooth VA trajectories in the '
                'lab (AMIGOS, 000). All protocol data is in train (the personalization '
                'protocol folds per subject); validation/test hold one extra clip per '
                'subject. AUs drive the faces but are not annotated.'))
_register(PresetSpec(
    name='emotionet_like', domain='wild', num_subjects=5000, wild_strength=0.9,
    splits={'train': 22000, 'validation': 2000, 'test': 1000},
    labels=('aus',), compound_fraction=0.3, au_combo_fraction=0.2, intensity=(0.2, 1.0),
    description='AU-only in-the-wild set (EmotioNet, 003): basic and compound '
                'expressions plus random AU combinations, only AUs annotated.'))
_register(PresetSpec(
    name='sfew_like', domain='wild', num_subjects=300,
    splits={'train': 958, 'validation': 436, 'test': 372}, class_probs=_SFEW_PROBS,
    description='Small in-the-wild 7-expression set (SFEW 2.0 / EmotiW, 001 and 003).'))
_register(PresetSpec(
    name='fer2013_like', domain='wild', num_subjects=8000, image_size=48, channels=1,
    wild_strength=0.6, splits={'train': 28709, 'validation': 3589, 'test': 3589},
    class_probs=_FER2013_PROBS,
    description='48x48 gray low-resolution 7-expression set (FER-2013: Training / '
                'PublicTest / PrivateTest; 001, 003, 004).'))
_register(PresetSpec(
    name='compound_like', domain='lab', num_subjects=230, disjoint_subjects=True,
    splits={'train': 3542, 'validation': 770, 'test': 748},
    labels=('expression', 'compound'), compound_fraction=15 / 22, intensity=(0.7, 1.0),
    description='Posed basic + 15 compound expressions (Du et al. 2014; 003 Table 4). '
                'A record holds either a basic class (has_expression) or a compound '
                'class (has_compound).'))
_register(PresetSpec(
    name='afew_va_like', domain='wild', kind='video', num_subjects=240,
    frames_per_clip=50, splits={'train': 24000, 'validation': 3000, 'test': 3000},
    labels=('va',),
    description='In-the-wild clips with per-frame VA (AFEW-VA, 002): 600 clips x 50 '
                'frames, pose and scene fixed per clip with smooth head motion.'))
_register(PresetSpec(
    name='semaine_like', domain='lab', kind='video', num_subjects=20,
    frames_per_clip=100, splits={'train': 8000, 'validation': 1000, 'test': 1000},
    labels=('va',),
    description='Lab recordings with continuous VA (SEMAINE, 002).'))
_register(PresetSpec(
    name='kdef_like', domain='lab', num_subjects=70,
    splits={'train': 686, 'validation': 147, 'test': 147}, intensity=(0.75, 1.0),
    description='Posed frontal 7-expression set, 70 subjects (KDEF, 004).'))
_register(PresetSpec(
    name='ck_like', domain='lab', kind='video', num_subjects=123, frames_per_clip=12,
    disjoint_subjects=True, splits={'train': 4800, 'validation': 720, 'test': 720},
    labels=('expression', 'aus'),
    intensity=(0.7, 1.0),
    description='Posed sequences from neutral to a peak expression, subject-disjoint '
                'splits (CK+). Frames before the midpoint are labelled neutral.'))
