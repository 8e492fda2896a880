"""The workflow end to end on a subject with known answers: the learning curve.

An embedded `amigos_like` subject rendered as a video (`video.render_subject`,
with its per-frame truth.csv) goes through the three steps in rounds, with an
oracle labeller that answers every proposed frame from the truth:

    propose (round 1: gsx, or random for 'random'; later rounds: the sampler)
      -> the oracle answers -> fit -> propose the next round ...

After each round the personal model that `fit` saved predicts every frame of
the participant's track that is not labelled, and so does the general model
(the base's own head, when it has a valence/arousal output). One subject
folder per sampler; the features are extracted once and copied into each
(their cache does not depend on the folder).
"""
import dataclasses
import os
import shutil
from typing import Callable, Dict, List, Sequence

import numpy as np

from fer_jax import atomic
from fer_jax import labeling
from fer_jax.participant import personal_model as fit_lib
from fer_jax.participant import frames as frames_lib
from fer_jax.participant.propose import propose
from fer_jax.participant import video as video_lib

SAMPLERS = ('random', 'gsx', 'igs', 'mcdue')
SIZES = (10, 20, 40, 80)
COLUMNS = ('sampler', 'labels', 'model', 'valence_rmse', 'arousal_rmse',
           'valence_ccc', 'arousal_ccc', 'test_frames')


def oracle(subject_dir: str, number: int, truth: Dict[str, np.ndarray]
           ) -> List[labeling.Answer]:
  """Answers every frame of round `number` from the truth, as the page would
  (appended to labels.csv)."""
  frames = [f.frame for f in labeling.read_round(subject_dir, number).frames]
  answers = [labeling.Answer(f, number, 'labelled',
                             float(np.clip(truth['valence'][f], -1, 1)),
                             float(np.clip(truth['arousal'][f], -1, 1)),
                             saved_at=labeling.now())
             for f in frames]
  labeling.append_answers(subject_dir, answers)
  return answers


def _first_sampler(sampler: str) -> str:
  return 'random' if sampler == 'random' else 'gsx'


@dataclasses.dataclass
class Curve:
  rows: List[dict]         # COLUMNS
  folders: Dict[str, str]  # sampler -> its subject folder


def learning_curve(out_dir: str, video: str, truth_csv: str, base: str,
                   samplers: Sequence[str] = SAMPLERS,
                   sizes: Sequence[int] = SIZES, gap_s: float = 0.3,
                   folds: int = fit_lib.FOLDS,
                   recipe: fit_lib.Recipe = fit_lib.Recipe(), seed: int = 0,
                   log: Callable[[str], None] = print) -> Curve:
  """Runs the rounds of every sampler; one row per (sampler, labels, model)."""
  if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
    raise ValueError(f'sizes must increase from >= 1, got {tuple(sizes)}')
  truth = video_lib.read_truth(truth_csv)
  quiet = lambda _: None  # noqa: E731
  source = frames_lib.FrameSource(video)
  base_model = frames_lib.load_base(base)
  shared = os.path.join(out_dir, 'features')
  os.makedirs(shared, exist_ok=True)
  feats = frames_lib.cached_features(shared, base_model, source, log=log)
  track = feats.of_track(None, video)
  y_all = np.stack([truth['valence'][track.frame],
                    truth['arousal'][track.frame]], 1).astype(np.float32)
  head = fit_lib.head_of(base_model, seed)
  general = fit_lib.general_predictions(head, track.features)
  rows, folders = [], {}
  for sampler in samplers:
    subject = os.path.join(out_dir, sampler)
    shutil.rmtree(subject, ignore_errors=True)
    os.makedirs(subject)
    shutil.copy(os.path.join(shared, frames_lib.FEATURES_FILE), subject)
    folders[sampler] = subject
    have = 0
    for i, size in enumerate(sizes):
      name = _first_sampler(sampler) if i == 0 else sampler
      prop = propose(subject, base, size - have, name, video=video,
                                 gap_s=gap_s, seed=seed, log=quiet)
      oracle(subject, prop.number, truth)
      res = fit_lib.fit(subject, base, video=video, folds=folds, recipe=recipe,
                        seed=seed, log=quiet)
      have = res.labels
      test = ~np.isin(track.frame, res.labelled.frame)
      personal = fit_lib.predict_heads(
          head, _stacked(res.params), track.features[test])[0]
      preds = {'personal': personal}
      if general is not None:
        preds['general'] = general[test]
      for model, pred in preds.items():
        s = fit_lib.scores(pred, y_all[test])
        rows.append(dict(sampler=sampler, labels=have, model=model,
                         valence_rmse=s['valence']['rmse'],
                         arousal_rmse=s['arousal']['rmse'],
                         valence_ccc=s['valence']['ccc'],
                         arousal_ccc=s['arousal']['ccc'],
                         test_frames=int(test.sum())))
      log(f'{sampler:>7} {have:>3} labels (round {prop.number}, {name}): '
          + '  '.join(f'{r["model"]} V {r["valence_rmse"]:.4f} '
                      f'A {r["arousal_rmse"]:.4f}'
                      for r in rows[-len(preds):]))
  return Curve(rows, folders)


def save(result: Curve, out_dir: str):
  """Writes out_dir/curve.csv (COLUMNS) and curve.png; returns their paths."""
  csv_path = os.path.join(out_dir, 'curve.csv')
  png_path = os.path.join(out_dir, 'curve.png')
  atomic.write_csv(csv_path, result.rows, COLUMNS)
  plot(result.rows, png_path)
  return csv_path, png_path


def _stacked(params):
  import jax  # pylint: disable=g-import-not-at-top
  return jax.tree.map(lambda a: np.asarray(a)[None], params)


def table(rows: Sequence[dict]) -> str:
  """RMSE (valence, arousal) per sampler and number of labels, beside the
  general model on the same test frames."""
  sizes = sorted({r['labels'] for r in rows})
  samplers = list(dict.fromkeys(r['sampler'] for r in rows))
  head = f'{"RMSE valence / arousal":<24}' + ''.join(
      f'{str(n) + " labels":>18}' for n in sizes)
  lines = [head]
  cell = {(r['sampler'], r['labels'], r['model']): r for r in rows}
  for model in ('personal', 'general'):
    for s in samplers:
      got = [cell.get((s, n, model)) for n in sizes]
      if not any(got):
        continue
      label = f'{s} ({model})' if model == 'personal' else f'general, {s} test'
      lines.append(f'{label:<24}' + ''.join(
          f'{r["valence_rmse"]:>9.4f}/{r["arousal_rmse"]:<8.4f}' if r
          else f'{"":>18}' for r in got))
  return '\n'.join(lines)


def plot(rows: Sequence[dict], path: str):
  """RMSE vs labelled frames, one line per sampler, the general model dashed."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
  samplers = list(dict.fromkeys(r['sampler'] for r in rows))
  for ax, t in zip(axes, fit_lib.TARGETS):
    for s in samplers:
      pts = sorted((r['labels'], r[f'{t}_rmse']) for r in rows
                   if r['sampler'] == s and r['model'] == 'personal')
      ax.plot(*zip(*pts), marker='o', label=s)
    gen = [r[f'{t}_rmse'] for r in rows if r['model'] == 'general']
    if gen:
      ax.axhline(float(np.mean(gen)), color='k', ls='--', label='general')
    ax.set_xscale('log', base=2)
    ax.set_xlabel('labelled frames')
    ax.set_title(f'{t} RMSE on the unlabelled frames')
  axes[0].set_ylabel('RMSE')
  axes[0].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
