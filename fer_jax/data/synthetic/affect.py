"""The affect model: expressions and valence/arousal -> AU intensities, per subject.

Expressions are FACS prototypes (AU sets) scaled by an intensity. Valence/arousal
add a subject-specific part g_subject(v, a): each subject has its own gain, resting
face and set of AUs that carry arousal, so a model fitted to one subject's mapping
leaves an error on another's that a personal model can remove.
"""
import dataclasses
from typing import Dict, Sequence, Tuple

import numpy as np

from fer_jax.data import labels

NUM_AUS = len(labels.AUS)
AU_THRESHOLD = 0.25  # intensity from which an AU counts as present (`aus` labels)
_A = {n: i for i, n in enumerate(labels.AUS)}

# FACS prototypes of the basic expressions (EMFACS-style; disgust uses 9+15+17
# because AU16 is not rendered).
BASIC_PROTOTYPES: Dict[str, Tuple[int, ...]] = {
    'neutral': (),
    'happy': (6, 12),
    'sad': (1, 4, 15),
    'surprise': (1, 2, 5, 26),
    'fear': (1, 2, 4, 5, 7, 20, 26),
    'disgust': (9, 15, 17),
    'anger': (4, 5, 7, 23),
}

# Du, Tao & Martinez (PNAS 2014), Table 1: (AUs seen in most subjects, AUs seen in
# some). Only our 14 AUs are kept; AU10 (upper-lip raiser, not rendered) is written
# as AU9, whose rendering also lifts the upper lip, at a lower weight.
COMPOUND_PROTOTYPES: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    'happily_surprised': ((1, 2, 12, 25), (5, 26)),
    'happily_disgusted': ((10, 12, 25), (4, 6, 9)),
    'sadly_fearful': ((1, 4, 20, 25), (2, 5, 6, 15)),
    'sadly_angry': ((4, 15), (6, 7, 17)),
    'sadly_surprised': ((1, 4, 25, 26), (2, 6)),
    'sadly_disgusted': ((4, 10), (1, 6, 9, 15, 17, 25)),
    'fearfully_angry': ((4, 20, 25), (5, 7, 10)),
    'fearfully_surprised': ((1, 2, 5, 20, 25), (4, 10, 26)),
    'fearfully_disgusted': ((1, 4, 10, 20, 25), (2, 5, 6, 9, 15)),
    'angrily_surprised': ((4, 25, 26), (5, 7, 10)),
    'angrily_disgusted': ((4, 10, 17), (7, 9)),
    'disgustedly_surprised': ((1, 2, 5, 10), (4, 9, 17, 26)),
    'appalled': ((4, 9, 10), (6, 7, 15, 17)),
    'hatred': ((4, 10), (7, 9, 17)),
    'awed': ((1, 2, 5, 25), (4, 20, 26)),
}
_SECONDARY_WEIGHT = 0.5
_AU10_AS_AU9 = 0.6

# Circumplex locations (valence, arousal).
CIRCUMPLEX: Dict[str, Tuple[float, float]] = {
    'neutral': (0.0, 0.0), 'happy': (0.8, 0.3), 'sad': (-0.6, -0.4),
    'surprise': (0.2, 0.85), 'fear': (-0.6, 0.8), 'disgust': (-0.7, 0.3),
    'anger': (-0.6, 0.7),
}
# Compounds sit between their components; the last three are Du et al.'s variants
# of angrily disgusted (appalled, hatred) and fearfully surprised (awed).
_COMPOUND_PARTS = {
    'happily_surprised': ('happy', 'surprise'), 'happily_disgusted': ('happy', 'disgust'),
    'sadly_fearful': ('sad', 'fear'), 'sadly_angry': ('sad', 'anger'),
    'sadly_surprised': ('sad', 'surprise'), 'sadly_disgusted': ('sad', 'disgust'),
    'fearfully_angry': ('fear', 'anger'), 'fearfully_surprised': ('fear', 'surprise'),
    'fearfully_disgusted': ('fear', 'disgust'),
    'angrily_surprised': ('anger', 'surprise'),
    'angrily_disgusted': ('anger', 'disgust'),
    'disgustedly_surprised': ('disgust', 'surprise'), 'appalled': ('disgust', 'anger'),
    'hatred': ('anger', 'disgust'), 'awed': ('surprise', 'happy'),
}


def _au_vector(weights: Dict[int, float]) -> np.ndarray:
  v = np.zeros(NUM_AUS)
  for n, w in weights.items():
    v[_A[n]] = max(v[_A[n]], w)
  return v


def _compound_row(primary, secondary) -> np.ndarray:
  w = {}
  for group, weight in ((secondary, _SECONDARY_WEIGHT), (primary, 1.0)):
    for n in group:
      au, x = (9, weight * _AU10_AS_AU9) if n == 10 else (n, weight)
      w[au] = max(w.get(au, 0.0), x)
  return _au_vector(w)


def _frozen(a):
  a = np.asarray(a, np.float64)
  a.flags.writeable = False
  return a


# (7, 14) and (15, 14) AU tables in labels.EXPRESSIONS / COMPOUND_EXPRESSIONS order.
EXPRESSION_AUS = _frozen([_au_vector({n: 1.0 for n in BASIC_PROTOTYPES[e]})
                          for e in labels.EXPRESSIONS])
COMPOUND_AUS = _frozen([_compound_row(*COMPOUND_PROTOTYPES[c])
                        for c in labels.COMPOUND_EXPRESSIONS])
EXPRESSION_VA = _frozen([CIRCUMPLEX[e] for e in labels.EXPRESSIONS])
COMPOUND_VA = _frozen([np.mean([CIRCUMPLEX[p] for p in _COMPOUND_PARTS[c]], 0)
                       for c in labels.COMPOUND_EXPRESSIONS])

# Ways of showing valence and arousal; each subject draws one of each.
POSITIVE_STYLES = ({6: 0.6, 12: 0.8}, {12: 0.9, 25: 0.35}, {6: 0.8, 12: 0.5})
NEGATIVE_STYLES = ({4: 0.7, 15: 0.35}, {15: 0.8, 17: 0.5}, {1: 0.5, 4: 0.45, 15: 0.45})
AROUSAL_STYLES = ({5: 0.8, 26: 0.55}, {1: 0.8, 2: 0.8}, {25: 0.8, 20: 0.6},
                  {7: 0.7, 23: 0.6})
# Everyone's share of arousal: wider eyes and parted lips (AU5, AU25), on top of
# the subject's own arousal AUs, so a general model can read some arousal and a
# personal one reads the rest.
SHARED_AROUSAL = {5: 0.5, 25: 0.45}
RESTING_FACES = ({}, {12: 0.2}, {4: 0.2}, {15: 0.2}, {1: 0.15, 2: 0.15}, {23: 0.2},
                 {6: 0.15})


@dataclasses.dataclass(frozen=True)
class SubjectStyle:
  """How one subject shows affect."""
  gain: float            # expressiveness of posed/felt expressions
  gain_v: float
  gain_a: float
  arousal_shift: float   # arousal at which the subject's arousal AUs start
  rest: np.ndarray       # (14,) resting face
  positive: np.ndarray   # (14,) AUs of positive valence
  negative: np.ndarray   # (14,) AUs of negative valence
  arousal: np.ndarray    # (14,) AUs of high arousal
  styles: Tuple[int, int, int, int]  # (positive, negative, arousal, rest) choices


def sample_style(rng: np.random.Generator) -> SubjectStyle:
  u = rng.random(12).tolist()
  pick = lambda table, x: int(x * len(table)) % len(table)  # noqa: E731
  s = (pick(POSITIVE_STYLES, u[0]), pick(NEGATIVE_STYLES, u[1]),
       pick(AROUSAL_STYLES, u[2]), pick(RESTING_FACES, u[3]))
  rest = _au_vector(RESTING_FACES[s[3]]) + 0.04 * u[4] * (rng.random(NUM_AUS) < 0.3)
  return SubjectStyle(
      gain=0.6 + 0.6 * u[5], gain_v=0.6 + 0.7 * u[6], gain_a=0.6 + 0.7 * u[7],
      arousal_shift=0.5 * (u[8] - 0.5), rest=rest,
      positive=_au_vector(POSITIVE_STYLES[s[0]]),
      negative=_au_vector(NEGATIVE_STYLES[s[1]]),
      arousal=_au_vector(AROUSAL_STYLES[s[2]]), styles=s)


def va_to_aus(style: SubjectStyle, valence: float, arousal: float) -> np.ndarray:
  """g_subject(v, a): the AU intensities this subject shows for (v, a), no rest/noise."""
  v = float(valence)
  a = min(max((float(arousal) - style.arousal_shift + 1.0) / 2.0, 0.0), 1.0)
  return (style.gain_v * (max(v, 0.0) * style.positive + max(-v, 0.0) * style.negative)
          + style.gain_a * a * style.arousal
          + (max(float(arousal), 0.0) * _au_vector(SHARED_AROUSAL)))


def affect_aus(style: SubjectStyle, prototype: np.ndarray, intensity: float,
               valence: float, arousal: float, rng: np.random.Generator,
               va_weight: float = 0.5, noise: float = 0.05) -> np.ndarray:
  """AU intensities: rest + gain * intensity * prototype + va_weight * g(v, a) + noise."""
  au = (style.rest + style.gain * intensity * prototype
        + va_weight * va_to_aus(style, valence, arousal)
        + noise * rng.standard_normal(NUM_AUS))
  return np.clip(au, 0.0, 1.0)


def expression_va(location: Sequence[float], intensity: float,
                  rng: np.random.Generator, spread: float = 0.15):
  """(valence, arousal) near a circumplex location, further out when intense."""
  v, a = (0.55 + 0.45 * intensity) * np.asarray(location) + spread * rng.standard_normal(2)
  return float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1))


def clip_trajectory(rng: np.random.Generator):
  """Parameters of one clip's smooth VA trajectory (see `trajectory_at`)."""
  return dict(mean=0.5 * (2 * rng.random(2) - 1),
              amp=(0.12 + 0.3 * rng.random((2, 3))) / np.arange(1, 4),
              freq=(0.4 + 0.8 * rng.random((2, 3))) * np.arange(1, 4),
              phase=2 * np.pi * rng.random((2, 3)))


def trajectory_at(params, t: float):
  """(valence, arousal) at clip time t in [0, 1]: a mean plus 3 low-frequency sines."""
  va = params['mean'] + np.sum(
      params['amp'] * np.sin(2 * np.pi * params['freq'] * t + params['phase']), -1)
  va = np.clip(va, -1, 1)
  return float(va[0]), float(va[1])


def au_occurrence(au_intensity: np.ndarray) -> np.ndarray:
  return (np.asarray(au_intensity) >= AU_THRESHOLD).astype(np.float32)
