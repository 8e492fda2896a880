"""The study's results: a row per (model, target) with its RMSE on its test
fold, the summary over folds and subjects, the printed table, and the files
and figures (results.csv, models.csv, results.json, conditions.png as the
paper's Fig. 5, sweep.png as its Fig. 6)."""
import json
import os
from typing import Dict, List

import numpy as np

from fer_jax import atomic
from fer_jax.evaluate import plots
from fer_jax.protocols.personal.data import TARGETS
from fer_jax.protocols.personal.plan import CONDITIONS, Plan

CONDITION_NAMES = {'no_transfer': 'No Transfer', 'transfer_0': 'Transfer 0%',
                   'transfer_100': 'Transfer 100%'}


def _rmse(sse, count):
  return float(np.sqrt(sse / max(count, 1)))


def model_rows(plan: Plan, done: dict, nets, transfer0: List[dict]) -> List[dict]:
  """One row per (model, target): RMSE on its test fold."""
  rows = list(transfer0)
  for i in range(len(plan)):
    r = done[i]
    for p, target in enumerate(nets[plan.net[i]].targets):
      rows.append(dict(target=target, condition=plan.condition[i],
                       sampler=plan.sampler[i], fraction=plan.fraction[i],
                       subject=plan.subject[i], fold=plan.fold[i],
                       n_train=len(plan.train[i]), n_test=len(plan.test[i]),
                       rmse=_rmse(r['sse'][p], r['count']),
                       final_loss=r['loss'], model_id=i))
  return rows


def transfer0_rows(nets, outputs, data, folds, subjects, num_folds) -> List[dict]:
  rows = []
  for b, net in enumerate(nets):
    cols = [TARGETS.index(t) for t in net.targets]
    for s in subjects:
      for k in range(num_folds):
        te = np.flatnonzero((data.subject == s) & (folds == k))
        err = np.square(outputs[b][te] - data.labels[te][:, cols])
        for p, target in enumerate(net.targets):
          rows.append(dict(target=target, condition='transfer_0', sampler='',
                           fraction=0.0, subject=int(s), fold=k, n_train=0,
                           n_test=len(te), rmse=float(np.sqrt(err[:, p].mean())),
                           final_loss=float('nan'), model_id=-1))
  return rows


def summarize(rows: List[dict]) -> List[dict]:
  """RMSE mean over folds per subject, then mean / std / min / max over subjects."""
  groups: Dict[tuple, Dict[int, list]] = {}
  for r in rows:
    g = (r['target'], r['condition'], r['sampler'], r['fraction'])
    groups.setdefault(g, {}).setdefault(r['subject'], []).append(r)
  out = []
  for (target, cond, sampler, fraction), by_subject in groups.items():
    per = np.array([np.mean([r['rmse'] for r in rs]) for rs in by_subject.values()])
    n_train = np.mean([r['n_train'] for rs in by_subject.values() for r in rs])
    out.append(dict(target=target, condition=cond, sampler=sampler,
                    fraction=fraction, n_train=float(n_train),
                    rmse_mean=float(per.mean()), rmse_std=float(per.std()),
                    rmse_min=float(per.min()), rmse_max=float(per.max()),
                    subjects=len(per)))
  key = lambda r: (TARGETS.index(r['target']),  # noqa: E731
                   (CONDITIONS + ('sweep',)).index(r['condition']),
                   r['sampler'], r['fraction'])
  return sorted(out, key=key)


def conditions_table(summary: List[dict]) -> str:
  """The three conditions per target, as printed at the end of a study."""
  lines = [f'{"RMSE (mean ± std over subjects)":34s}' +
           ''.join(f'{CONDITION_NAMES[c]:>18s}' for c in CONDITIONS)]
  for t in TARGETS:
    cells = {r['condition']: r for r in summary
             if r['target'] == t and r['condition'] in CONDITIONS}
    if not cells:
      continue
    lines.append(f'{t:34s}' + ''.join(
        f'{cells[c]["rmse_mean"]:>11.4f} ± {cells[c]["rmse_std"]:.3f}'
        if c in cells else f'{"-":>18s}' for c in CONDITIONS))
  return '\n'.join(lines)



def write_results(workdir, config, summary, rows):
  """results.csv (the summary), models.csv (the model rows), results.json."""
  cols = ['target', 'condition', 'sampler', 'fraction', 'n_train', 'rmse_mean',
          'rmse_std', 'rmse_min', 'rmse_max', 'subjects']
  atomic.write_csv(os.path.join(workdir, 'results.csv'), summary, cols)
  atomic.write_csv(os.path.join(workdir, 'models.csv'), rows,
                   ['target', 'condition', 'sampler', 'fraction', 'subject',
                    'fold', 'n_train', 'n_test', 'rmse', 'final_loss',
                    'model_id'])
  conds = {t: {c: {k: r[k] for k in ('rmse_mean', 'rmse_std')}
               for r in summary if r['target'] == t
               for c in [r['condition']] if c in CONDITIONS}
           for t in TARGETS}
  doc = {'conditions': {t: v for t, v in conds.items() if v}, 'rows': summary,
         'config': json.loads(config.to_json_best_effort())}
  atomic.write_json(os.path.join(workdir, 'results.json'), doc, indent=1)


def write_plots(workdir, summary):
  """conditions.png (Fig. 5) and, with a sweep, sweep.png (Fig. 6)."""
  targets = [t for t in TARGETS if any(r['target'] == t for r in summary)]
  plots.plot_conditions(summary, os.path.join(workdir, 'conditions.png'),
                        targets, {c: CONDITION_NAMES[c] for c in CONDITIONS})
  if any(r['condition'] == 'sweep' for r in summary):
    plots.plot_sweep(summary, os.path.join(workdir, 'sweep.png'), targets,
                     reference=('transfer_100', CONDITION_NAMES['transfer_100']))
