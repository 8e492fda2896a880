"""Loss and metric curves of one or several runs, from their metrics.jsonl.

One panel per metric, side by side; every run is one line in each panel
(labelled by its workdir's name). The x axis is the step (or the epoch with
x='epoch', from the train rows' `train/epoch`).
"""
import os

from fer_jax.train.logging import read_metrics

# Shown by default when a run logged them, in this order.
DEFAULT_METRICS = (
    'train/loss', 'val/loss', 'val/rmse_mean', 'val/valence/ccc',
    'val/arousal/ccc', 'val/expression/accuracy', 'val/expression/mean_recall',
    'val/aus/f1_mean', 'train/lr_scale')


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')  # headless: files only
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def curves(rows, metric, x='step'):
  """(xs, ys) of one scalar metric; x='epoch' maps steps via train/epoch."""
  per_step = {}
  if x == 'epoch':
    ratio = [r['train/epoch'] / r['step'] for r in rows
             if 'train/epoch' in r and r['step']]
    if not ratio:
      raise ValueError('--x=epoch needs train/epoch in metrics.jsonl')
    per_step = ratio[0]
  pts = [(r['step'], r[metric]) for r in rows
         if isinstance(r.get(metric), (int, float)) and r[metric] is not None]
  xs = [s * per_step if x == 'epoch' else s for s, _ in pts]
  return xs, [v for _, v in pts]


def plot_runs(workdirs, out, metrics=None, x='step', max_cols=4):
  """Writes the figure to `out`; returns the metrics drawn."""
  runs = {_label(w, workdirs): read_metrics(w) for w in workdirs}
  if not metrics:
    have = set().union(*(set(r) for rows in runs.values() for r in rows))
    metrics = [m for m in DEFAULT_METRICS if m in have]
    if 'train/lr_scale' in metrics and all(
        len(set(curves(rows, 'train/lr_scale')[1])) <= 1 for rows in runs.values()):
      metrics.remove('train/lr_scale')  # a flat 1.0 says nothing
  if not metrics:
    raise ValueError(f'None of {DEFAULT_METRICS} in {workdirs}; pass --metrics.')
  plt = _pyplot()
  cols = min(len(metrics), max_cols)
  rows_ = -(-len(metrics) // cols)
  fig, axes = plt.subplots(rows_, cols, figsize=(4 * cols, 3.2 * rows_),
                           squeeze=False)
  axes = axes.reshape(-1)
  for ax in axes[len(metrics):]:
    ax.axis('off')
  colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
  for ax, m in zip(axes, metrics):
    for i, (label, rows) in enumerate(runs.items()):
      xs, ys = curves(rows, m, x)
      if xs:  # one colour per run in every panel
        ax.plot(xs, ys, marker='.' if m.startswith('val/') else None,
                color=colors[i % len(colors)], label=label)
    ax.set_title(m)
    ax.set_xlabel(x)
    ax.grid(alpha=0.3)
  handles = [plt.Line2D([], [], color=colors[i % len(colors)], label=l)
             for i, l in enumerate(runs)]
  axes[0].legend(handles=handles, fontsize='small')
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  fig.savefig(out, dpi=100)
  plt.close(fig)
  return metrics


def _label(workdir, all_workdirs):
  names = [os.path.basename(os.path.normpath(w)) for w in all_workdirs]
  name = os.path.basename(os.path.normpath(workdir))
  return name if names.count(name) == 1 else os.path.normpath(workdir)
