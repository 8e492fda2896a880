"""The papers' tables (fer_jax/evaluate/paper_tables.py) from hand-made results."""
import json

import ml_collections
import pytest

from fer_jax.evaluate import paper_tables as pt


def _row(md, start):
  rows = [l for l in md.splitlines() if l.startswith(start)]
  assert len(rows) == 1, (start, md)
  return [c.strip() for c in rows[0].strip('|').split('|')]


def test_002_cv_table_scales_rmse_to_the_dataset_units_and_keeps_paper_rows():
  mean = {f'val/{d}/{m}': v for d, vals in
          (('arousal', (0.15, 0.4, 0.3, 0.25)), ('valence', (0.2, 0.5, 0.35, 0.3)))
          for m, v in zip(('rmse', 'pcc', 'icc', 'ccc'), vals)}
  std = {k: 0.01 for k in mean}
  res = {'num_folds': 5, 'mean': mean, 'std': std}
  md = pt.table_002_cv('afew_va', {'resnet152': res}, synthetic=True)
  ours = _row(md, '| resnet152 (ours)')
  # AFEW-VA RMSE in [-10, 10] units: 0.15 -> 1.5 (std 0.01 -> 0.1).
  assert ours[1] == 'synthetic'
  assert ours[2:6] == ['1.500 ± 0.100', '0.400 ± 0.010', '0.300 ± 0.010',
                       '0.250 ± 0.010']
  assert ours[6] == '2.000 ± 0.100'
  paper = _row(md, '| resnet152 (paper)')
  assert paper[2:5] == ['1.513', '0.432', '0.303'] and paper[6:9] == ['1.556', '0.490',
                                                                      '0.392']
  md = pt.table_002_cv('semaine', {'vgg11_bn': res}, synthetic=False)
  assert _row(md, '| vgg11_bn (ours)')[2] == '0.150 ± 0.010'  # SEMAINE: [-1, 1]


def test_002_cross_table_uses_the_test_dataset_units():
  res = {f'{d}/{m}': 0.1 for d in pt.DIMS for m in ('rmse', 'pcc', 'icc', 'ccc')}
  md = pt.table_002_cross({('semaine', 'vgg11_bn'): res,
                           ('afew_va', 'vgg11_bn'): res}, synthetic=True)
  assert _row(md, '| vgg11_bn (ours) | semaine -> afew_va')[2] == '1.000'
  assert _row(md, '| vgg11_bn (ours) | afew_va -> semaine')[2] == '0.100'
  assert _row(md, '| resnet152 (paper) | afew_va -> semaine')[2] == '0.657'


def test_001_and_004_tables():
  md = pt.table_001({('alexnet', 'cascade'): {'val/expression/accuracy': 0.5,
                                              'test/expression/accuracy': 0.6}}, True)
  assert _row(md, '| alexnet | cascade')[3:] == ['0.500', '0.600', '0.485', '0.556']
  md = pt.table_004({'mobilenet_v2': {'test/expression/accuracy': 0.7}},
                    {'method': 'rank', 'weights': {'mobilenet_v2': 1.0},
                     'test/expression/accuracy': 0.72}, synthetic=True)
  assert _row(md, '| mobilenet_v2')[2:] == ['0.700', '1.000', '0.750']
  assert _row(md, '| ensemble (rank weights)')[2] == '0.720'


def test_report_overrides_reach_nested_keys():
  from launch import paper_runs as report
  c = ml_collections.ConfigDict({'total_steps': 1, 'data': {'train_records': 0,
                                                           'name': 'x'}})
  report.apply_overrides(c, ['total_steps=7', 'data.train_records=100',
                             'data.name=afew_va'])
  assert c.total_steps == 7 and c.data.train_records == 100
  assert c.data.name == 'afew_va'


def test_report_writes_the_tables_of_the_runs_it_finds(tmp_path, monkeypatch):
  from launch import paper_runs
  members = {'mobilenet_v2': {'val/expression/accuracy': 0.6,
                              'test/expression/accuracy': 0.7}}
  ens = {'method': 'rank', 'weights': {'mobilenet_v2': 1.0},
         'test/expression/accuracy': 0.72}
  seen = []
  monkeypatch.setattr(paper_runs, 'run_004',
                      lambda *a: seen.append(a) or (members, ens))
  md, path = paper_runs.report('004', str(tmp_path), 'reduced', ['seed=3'],
                               train=False, models=('mobilenet_v2',))
  assert seen == [(str(tmp_path), 'reduced', ['seed=3'], False, 'rank',
                   ('mobilenet_v2',))]
  assert md == pt.table_004(members, ens, synthetic=True)
  assert open(path).read() == md
  assert json.load(open(tmp_path / 'report_004.json')) == {
      'members': members, 'ensemble': ens}
  with pytest.raises(ValueError, match='003'):
    paper_runs.report('003', str(tmp_path), '', [])
