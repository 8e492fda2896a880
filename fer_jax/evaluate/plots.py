"""Figures of a study's summary rows (dicts with target, condition, sampler,
fraction, rmse_mean, rmse_std), as paper 000 draws them: bars per condition
(its Fig. 5) and RMSE against the training-set size per sampler (its Fig. 6)."""
from typing import Dict, Optional, Sequence, Tuple


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def plot_conditions(summary, path, targets: Sequence[str],
                    conditions: Dict[str, str]):
  """RMSE of each condition per target: bars, std over subjects as error.

  conditions: {condition: legend label}, in the order of the bars.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  width = 0.8 / len(conditions)
  centre = (len(conditions) - 1) / 2
  for j, (c, label) in enumerate(conditions.items()):
    vals = [[r for r in summary if r['target'] == t and r['condition'] == c]
            for t in targets]
    xs = [i + (j - centre) * width for i, v in enumerate(vals) if v]
    if xs:
      ax.bar(xs, [v[0]['rmse_mean'] for v in vals if v], width,
             yerr=[v[0]['rmse_std'] for v in vals if v], capsize=3,
             label=label)
  ax.set_xticks(range(len(targets)), targets)
  ax.set_ylabel('RMSE (mean over subjects)')
  ax.set_title('Transfer-learning conditions')
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_sweep(summary, path, targets: Sequence[str],
               reference: Optional[Tuple[str, str]] = None):
  """RMSE vs training-set size (rows of condition 'sweep'), one line per
  sampler and one panel per target; reference: (condition, label) drawn as a
  dashed horizontal line."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 4),
                           squeeze=False)
  for ax, t in zip(axes[0], targets):
    sweep = [r for r in summary if r['target'] == t and r['condition'] == 'sweep']
    for s in sorted({r['sampler'] for r in sweep}):
      rs = sorted((r for r in sweep if r['sampler'] == s),
                  key=lambda r: r['fraction'])
      ax.plot([100 * r['fraction'] for r in rs], [r['rmse_mean'] for r in rs],
              marker='o', ms=3, label=s)
    full = [r for r in summary if reference and r['target'] == t
            and r['condition'] == reference[0]]
    if full:
      ax.axhline(full[0]['rmse_mean'], ls='--', color='k', label=reference[1])
    ax.set_xlabel('training set size (% of the training fold)')
    ax.set_ylabel('RMSE (mean over subjects)')
    ax.set_title(t)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
