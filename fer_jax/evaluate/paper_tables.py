"""The papers' own tables, filled with our results (launch/report.py writes them).

Each builder takes plain result dicts (what `results.json`,
`kfold_results.json` and the cross-dataset `results.json` hold) and returns
Markdown: one table in the shape of the paper's, the paper's published numbers
beside ours, and the data marked 'synthetic' when it is not the paper's.
"""
from typing import Mapping, Optional

# Published numbers, as printed in ../shared/papers.
# 002, Tables 2-4 (RMSE in each dataset's units: AFEW-VA [-10, 10], SEMAINE [-1, 1]).
PAPER_002 = {
    'afew_va': {
        'Best of [7] (AFEW-VA paper)': dict(arousal=(2.229, 0.45, 0.356),
                                            valence=(2.639, 0.407, 0.29)),
        'resnet152': dict(arousal=(1.513, 0.432, 0.303), valence=(1.556, 0.49, 0.392)),
        'vgg11_bn': dict(arousal=(2.392, 0.377, 0.264), valence=(2.509, 0.434, 0.325)),
    },
    'semaine': {
        'Best of [7] (AFEW-VA paper)': dict(arousal=(1.608, 0.272, 0.245),
                                            valence=(2.087, 0.35, 0.331)),
        'vgg11_bn': dict(arousal=(0.511, 0.336, 0.318), valence=(0.586, 0.240, 0.208)),
        'resnet152': dict(arousal=(0.519, 0.282, 0.269), valence=(0.608, 0.187, 0.161)),
    },
    'cross': {  # (trained on, model) -> tested on the other dataset
        ('afew_va', 'resnet152'): dict(arousal=(0.657, 0.3049, 0.1945),
                                       valence=(0.545, 0.315, 0.253)),
        ('semaine', 'vgg11_bn'): dict(arousal=(2.111, 0.139, 0.108),
                                      valence=(2.016, 0.1155, 0.0925)),
        ('semaine', 'resnet152'): dict(arousal=(2.028, 0.121, 0.112),
                                       valence=(1.898, 0.030, 0.026)),
    },
}
# 001, section 4 text (Figure 3's per-submission bars are not in the text copy).
PAPER_001 = {
    'cascade': dict(validation=0.485, test=0.556),  # best submission (3)
    'direct': dict(validation=None, test=0.378),
    'combined': dict(validation=None, test=None),   # "about 1.5% below cascade"
}
# 004, Table 1 (test accuracy on FER-2013 after the first training).
PAPER_004 = {'mobilenet_v2': 0.75, 'resnet50_v2': 0.43, 'inception_v3': 0.80,
             'ensemble': None}

# Label range of each dataset's files: RMSE is shown in these units, as printed.
VA_UNITS = {'afew_va': 10.0, 'semaine': 1.0}
DIMS = ('arousal', 'valence')


def _fmt(x, digits=3):
  return '–' if x is None else f'{x:.{digits}f}'


def _pm(mean, std, digits=3):
  if mean is None:
    return '–'
  return _fmt(mean, digits) + ('' if std is None else f' ± {std:.{digits}f}')


def va_cells(mean: Mapping[str, float], std: Optional[Mapping[str, float]],
             units: float, prefix: str = 'val/') -> list:
  """RMSE (x units), PCC, ICC, CCC of arousal then valence."""
  cells = []
  for d in DIMS:
    for m in ('rmse', 'pcc', 'icc', 'ccc'):
      k = f'{prefix}{d}/{m}'
      scale = units if m == 'rmse' else 1.0
      v = mean.get(k)
      s = (std or {}).get(k)
      cells.append(_pm(None if v is None else v * scale,
                       None if s is None else s * scale))
  return cells


def _paper_va_cells(row):
  cells = []
  for d in DIMS:
    rmse, pcc, icc = row[d]
    cells += [_fmt(rmse), _fmt(pcc), _fmt(icc), '–']
  return cells


_VA_HEADER = ('| model | data | ' + ' | '.join(
    f'{d[0].upper()} {m}' for d in DIMS for m in ('RMSE', 'PCC', 'ICC', 'CCC'))
    + ' |\n|' + '---|' * 10 + '\n')


def table_002_cv(dataset: str, runs: Mapping[str, dict], synthetic: bool) -> str:
  """Tables 2 (AFEW-VA) / 3 (SEMAINE): k-fold mean ± std per model, paper rows
  beside. `runs`: model name -> kfold_results.json."""
  title = {'afew_va': 'Table 2: AFEW-VA', 'semaine': 'Table 3: SEMAINE'}[dataset]
  units = VA_UNITS[dataset]
  data = 'synthetic' if synthetic else dataset
  out = [f'### 002 {title}, {next(iter(runs.values()))["num_folds"] if runs else "k"}'
         f'-fold CV (RMSE in [-{units:g}, {units:g}] units)\n\n', _VA_HEADER]
  for model, res in runs.items():
    out.append(f'| {model} (ours) | {data} | '
               + ' | '.join(va_cells(res['mean'], res['std'], units)) + ' |\n')
  for model, row in PAPER_002[dataset].items():
    out.append(f'| {model} (paper) | {dataset} | '
               + ' | '.join(_paper_va_cells(row)) + ' |\n')
  return ''.join(out)


def table_002_cross(cross: Mapping[tuple, dict], synthetic: bool) -> str:
  """Table 4: trained on one dataset, tested on the other. `cross`:
  (trained_on, model) -> results.json of the evaluation on the other dataset."""
  out = ['### 002 Table 4: cross-dataset (RMSE in the test dataset\'s units)\n\n',
         _VA_HEADER.replace('| data |', '| trained on -> tested on |')]
  other = {'afew_va': 'semaine', 'semaine': 'afew_va'}
  for (trained, model), res in cross.items():
    tag = ' (synthetic)' if synthetic else ''
    out.append(f'| {model} (ours) | {trained} -> {other[trained]}{tag} | '
               + ' | '.join(va_cells(res, None, VA_UNITS[other[trained]], '')) + ' |\n')
  for (trained, model), row in PAPER_002['cross'].items():
    out.append(f'| {model} (paper) | {trained} -> {other[trained]} | '
               + ' | '.join(_paper_va_cells(row)) + ' |\n')
  return ''.join(out)


def table_001(runs: Mapping[tuple, dict], synthetic: bool) -> str:
  """001: accuracy per method and network on the small set's validation and
  test splits. `runs`: (model, method) -> the final stage's results.json."""
  data = 'synthetic (sfew_like)' if synthetic else 'SFEW 2.0'
  out = ['### 001: accuracy on the small set by fine-tuning scheme\n\n',
         '| network | scheme | data | val acc | test acc | paper val | paper test |\n',
         '|---|---|---|---|---|---|---|\n']
  for (model, method), res in runs.items():
    paper = PAPER_001.get(method, {})
    out.append(f'| {model} | {method} | {data} | '
               f'{_fmt(res.get("val/expression/accuracy"))} | '
               f'{_fmt(res.get("test/expression/accuracy"))} | '
               f'{_fmt(paper.get("validation"))} | {_fmt(paper.get("test"))} |\n')
  return ''.join(out)


def table_004(members: Mapping[str, dict], ensemble: Optional[dict],
              synthetic: bool) -> str:
  """004: test accuracy per network and of the rank-weighted ensemble.
  `members`: model -> results.json (test/expression/accuracy); `ensemble`:
  {'weights': {model: w}, 'test/expression/accuracy': ...}."""
  data = 'synthetic' if synthetic else 'FER-2013 test'
  out = ['### 004 Table 1: test accuracy per model and the weighted ensemble\n\n',
         '| model | data | test acc | weight | paper test acc |\n',
         '|---|---|---|---|---|\n']
  weights = (ensemble or {}).get('weights', {})
  for model, res in members.items():
    out.append(f'| {model} | {data} | {_fmt(res.get("test/expression/accuracy"))} | '
               f'{_fmt(weights.get(model))} | {_fmt(PAPER_004.get(model))} |\n')
  if ensemble:
    out.append(f'| ensemble ({ensemble.get("method", "rank")} weights) | {data} | '
               f'{_fmt(ensemble.get("test/expression/accuracy"))} | 1 | '
               f'{_fmt(PAPER_004["ensemble"])} |\n')
  return ''.join(out)
