"""One round of `propose`: which frames of the participant's video to label next.

The study's samplers (fer_jax/protocols/samplers.py, paper 000 section 3.4)
order the pool; this module only decides the pool, the inputs and the spacing:

  * pool: the faces of one track (`frames.Features.of_track`), less every
    frame listed in an earlier round, answered or not (to_label.csv's
    contract: a frame is proposed once), less the frames within the gap of
    one of those;
  * round 1 defaults to 'gsx' (features only, no label needed); later rounds
    to 'igs'. 'igs' and 'mcdue' choose with what was learnt from the labels
    so far, so they need a labelled frame; 'gsy' and 'random' run any time;
  * the outputs f(x) of 'gsy' / 'igs' and the dropout passes of 'mcdue'
    (T=50, p=0.5 as in the paper) come from the personal model that `fit`
    wrote (SUBJECT_DIR/model, its valence and arousal outputs) when it was
    fitted on this base, else from the base model's head, on the cached
    features (`protocols.personal.features.head_outputs` /
    `mc_dropout_samples`);
  * spacing: walking the sampler's order, a frame closer than `gap_s` seconds
    (default 1 s: round(gap_s * fps) frames) to an accepted frame is passed
    over, so no two proposed frames are near-duplicate neighbours. For the
    greedy rules that frame still counts as covered (it was the greedy pick
    and its distances entered the min), which is what a neighbour of a
    chosen frame is.

The round is written by `labeling.write_round`: the full frame, the face crop
(as the base model cuts it), a clip of `clip_s` seconds around the frame at
about `clip_fps`, and the columns sampler, rank, track, box.
"""
import dataclasses
import os
from typing import Any, Callable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from fer_jax import labeling
from fer_jax.predict import crops as face_crops
from fer_jax.participant import personal_model as fit_lib
from fer_jax.participant import frames as frames_lib
from fer_jax.participant.frames import ProposeError
from fer_jax.protocols import samplers
from fer_jax.protocols.personal import features as study_features
from fer_jax.protocols.personal.pretrain import Net
from fer_jax.train import trained

SAMPLER_NAMES = ('gsx', 'gsy', 'igs', 'mcdue', 'random')
NEEDS_LABELS = ('igs', 'mcdue')
GAP_S = 1.0
CLIP_S, CLIP_FPS = 2.0, 8.0
MC_PASSES, MC_RATE = 50, 0.5  # the paper's T and p
MC_BUDGET = 1 << 28           # bytes of activations per MC-dropout batch


@dataclasses.dataclass(frozen=True)
class Proposal:
  number: int
  dir: str
  sampler: str
  frames: tuple        # video frame indices, in the order the page shows them
  gap_frames: int
  pool: int            # frames the sampler could choose from


def gap_frames(gap_s: float, fps: float) -> int:
  """The minimum distance, in frames, between two proposed frames."""
  return max(1, int(round(gap_s * fps)))


def _near(frame: int, others: np.ndarray, gap: int) -> bool:
  return bool(others.size) and bool(np.any(np.abs(others - frame) < gap))


def spaced(order: Sequence[int], frame: np.ndarray, taken: Sequence[int],
           gap: int, k: int) -> List[int]:
  """The first k pool positions of `order` whose frame is at least `gap`
  frames from every frame in `taken` and from every earlier accepted one."""
  blocked = [int(f) for f in taken]
  out = []
  for i in order:
    i = int(i)
    if i < 0 or _near(int(frame[i]), np.asarray(blocked), gap):
      continue
    out.append(i)
    blocked.append(int(frame[i]))
    if len(out) == k:
      break
  return out


def scoring_net(subject_dir: str, base) -> Tuple[Any, Optional[tuple], str]:
  """(net, output columns or None, what it is) whose head scores the frames
  for gsy / igs / mcdue: the personal model of `fit` when one was fitted on
  this base's features, else the base model's own head."""
  info = fit_lib.load_fit(subject_dir)
  if info is None or (info.get('features_fingerprint')
                      != frames_lib.base_fingerprint(base)):
    what = 'the base model\'s head (no personal model fitted on it yet)'
    return base.net, None, what
  head = fit_lib.head_of(base)
  run = trained.load_run(os.path.join(subject_dir, fit_lib.MODEL_DIR), 'latest')
  net = Net('personal', (), None, head.model, {'params': run.variables['params']})
  return net, head.columns, (f'the personal model (fitted on '
                             f'{info["labels"]} labels)')


def _inputs(name: str, base, feats: np.ndarray, key, subject_dir: str,
            log) -> dict:
  """The sampler's keyword arguments besides k and valid."""
  flat = feats.reshape(len(feats), -1)
  batch = base.predictor.batch_size
  if name == 'gsx':
    return dict(features=flat)
  if name == 'random':
    return dict(key=key, features=flat)
  net, cols, what = scoring_net(subject_dir, base)
  log(f'{name}: scored by {what}'
      + (f', MC dropout T={MC_PASSES}, p={MC_RATE}' if name == 'mcdue' else ''))
  cut = (lambda a: a) if cols is None else (lambda a: a[..., list(cols)])
  if name == 'mcdue':
    return dict(pred_samples=cut(study_features.mc_dropout_samples(
        net, feats, key, MC_PASSES, MC_RATE, MC_BUDGET)))
  out = cut(study_features.head_outputs(net, feats, batch))
  return dict(features=flat, outputs=out)


def choose(name: str, inputs: dict, frame: np.ndarray, valid: np.ndarray,
           taken: Sequence[int], gap: int, k: int) -> List[int]:
  """k spaced pool positions in the sampler's order (fewer if the pool runs
  out). The order is computed for a prefix and lengthened only when spacing
  passed over too many: the samplers' prefixes are consistent."""
  n_valid = int(valid.sum())
  m = min(n_valid, max(4 * k, 64))
  while True:
    order = samplers.select(name, k=m, valid=valid, **inputs)
    out = spaced(order, frame, taken, gap, k)
    if len(out) == k or m == n_valid:
      return out
    m = min(n_valid, 4 * m)


def _clip(f: int, fps: float, num_frames: int, clip_s: float, clip_fps: float):
  """(frame indices of the clip around f, index of f in it, the clip's fps)."""
  step = max(1, int(round(fps / clip_fps)))
  half = int(round(clip_s / 2 * fps / step))
  idx = [f + j * step for j in range(-half, half + 1)
         if 0 <= f + j * step < num_frames]
  return idx, idx.index(f), fps / step


def propose(subject_dir: str, base: str, k: int = 20,
            sampler: Optional[str] = None, video: Optional[str] = None,
            frames_dir: Optional[str] = None, track: Optional[int] = None,
            gap_s: float = GAP_S, seed: int = 0, clip_s: float = CLIP_S,
            clip_fps: float = CLIP_FPS, detect_every: Optional[int] = None,
            log: Callable[[str], None] = print) -> Proposal:
  """Writes SUBJECT_DIR/round_N (N = the next round) with k proposed frames."""
  import jax  # pylint: disable=g-import-not-at-top
  if k < 1:
    raise ProposeError(f'k must be >= 1, got {k}')
  if gap_s < 0:
    raise ProposeError(f'the gap must be >= 0 s, got {gap_s}')
  if sampler is not None and sampler not in SAMPLER_NAMES:
    raise ProposeError(f'unknown sampler {sampler!r}; valid: '
                       f'{", ".join(SAMPLER_NAMES)}')
  if os.path.exists(subject_dir) and not os.path.isdir(subject_dir):
    raise NotADirectoryError(f'{subject_dir} is not a folder')
  source = frames_lib.FrameSource(video, frames_dir)
  base_model = frames_lib.load_base(base)
  os.makedirs(subject_dir, exist_ok=True)

  numbers = labeling.rounds(subject_dir)
  answered = labeling.latest_answers(labeling.read_answers(subject_dir))
  proposed = set(answered)
  for n in numbers:
    listed = labeling.read_round(subject_dir, n).index()
    proposed |= set(listed)
    open_ = [f for f in listed if f not in answered]
    if open_:
      log(f'round {n}: {len(open_)} frame(s) not answered yet; they stay in '
          f'round {n} and are not proposed again')
  labelled = [a for a in answered.values() if a.status == 'labelled']
  name = sampler or ('gsx' if not numbers else 'igs')
  if name in NEEDS_LABELS and not labelled:
    raise ProposeError(f'sampler {name} chooses with the labels so far and '
                       'there is none yet: label a round first (round 1 uses '
                       'gsx, which needs no label)')

  kw = {} if detect_every is None else dict(detect_every=detect_every)
  cache = frames_lib.cached_features(subject_dir, base_model, source, log=log,
                                     **kw)
  feats = cache.of_track(track, source.path)
  gap = gap_frames(gap_s, cache.fps)
  taken = np.asarray(sorted(proposed), np.int64)
  valid = np.array([not _near(int(f), taken, gap) for f in feats.frame], bool)
  if not valid.any():
    raise ProposeError(f'no frame left to propose in {source.path}: every '
                       f'frame of the track is proposed already or within '
                       f'{gap} frames of one')
  number = (numbers[-1] if numbers else 0) + 1
  key = jax.random.fold_in(jax.random.key(seed), number)
  inputs = _inputs(name, base_model, feats.features, key, subject_dir,
                   log)
  picked = choose(name, inputs, feats.frame, valid, taken, gap, k)
  if len(picked) < k:
    log(f'only {len(picked)} frame(s) of the {int(valid.sum())} left are '
        f'{gap} frames apart: proposing {len(picked)}, not {k}')

  items = _items(source, base_model, feats, picked, name, cache.num_frames,
                 clip_s, clip_fps)
  clip_rate = _clip(0, cache.fps, cache.num_frames, clip_s, clip_fps)[2]
  rdir = labeling.write_round(subject_dir, number, items,
                              base_model.expressions, clip_rate)
  chosen = tuple(int(feats.frame[i]) for i in picked)
  log(f'round {number}: {len(chosen)} frame(s) by {name} (pool '
      f'{int(valid.sum())}, gap {gap} frames) -> {rdir}/to_label.csv')
  return Proposal(number, rdir, name, chosen, gap, int(valid.sum()))


def _items(source, base_model, feats, picked, name, num_frames, clip_s,
           clip_fps) -> List[dict]:
  fps = feats.fps
  clips = {int(feats.frame[i]): _clip(int(feats.frame[i]), fps, num_frames,
                                      clip_s, clip_fps) for i in picked}
  images = source.read({j for idx, _, _ in clips.values() for j in idx})
  items = []
  for rank, i in enumerate(picked, start=1):
    f = int(feats.frame[i])
    bgr = images[f]
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    face = face_crops.crop_faces(rgb, feats.box[i][None], base_model.predictor.crop,
                                 cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    idx, at, _ = clips[f]
    items.append(dict(
        frame=f, time_s=float(feats.time_s[i]), image=bgr,
        crop=np.ascontiguousarray(face.crops[0][..., ::-1]),
        clip=[images[j] for j in idx], clip_index=at,
        sampler=name, rank=str(rank), track=str(int(feats.track[i])),
        box=' '.join(str(int(v)) for v in feats.box[i])))
  return items
