"""Cross-dataset evaluation of a tiny trained run (fer_jax.protocols.cross_dataset,
launch/evaluate.py) and the curve plots of launch/plot.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, tiny_config


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  from fer_jax.train.loop import train_and_evaluate
  wd = str(tmp_path_factory.mktemp('run'))
  c = tiny_config(total_steps=4, eval_every_steps=2, **{
      'data.eval_records': 32, 'data.train_records': 64,
      'task.targets': ('valence', 'arousal', 'expression')})
  train_and_evaluate(c, wd)
  return wd


def _rows(wd):
  with open(os.path.join(wd, 'metrics.jsonl')) as f:
    return [json.loads(l) for l in f]


def test_same_data_reproduces_the_loops_evaluation_of_the_best_step(run, tmp_path):
  from fer_jax.protocols import cross_dataset
  res = cross_dataset.evaluate_workdir(run, str(tmp_path), 'best')
  logged = {r['step']: r for r in _rows(run) if 'val/loss' in r}[res['step']]
  for k in ('rmse_mean', 'valence/ccc', 'expression/accuracy', 'loss'):
    assert res[k] == pytest.approx(logged[f'val/{k}'], rel=1e-5, abs=1e-6), k
  assert res['num_samples'] == 32 and res['split'] == 'validation'
  for f in ('results.json', 'scatter.png', 'confusion_matrix.png', 'predictions.npz'):
    assert os.path.getsize(tmp_path / f) > 0
  latest = cross_dataset.evaluate_workdir(run, str(tmp_path / 'l'), 'latest',
                                          plots=False)
  assert latest['step'] == 4


def test_va_scale_maps_predictions_into_the_other_label_range(run, tmp_path):
  from fer_jax.protocols import cross_dataset
  cross_dataset.evaluate_workdir(run, str(tmp_path / 'a'), plots=False)
  res = cross_dataset.evaluate_workdir(run, str(tmp_path / 'b'), va_scale=10,
                                       plots=False)
  assert res['train_va_scale'] == 1.0 and res['eval_va_scale'] == 10.0
  a, b = np.load(tmp_path / 'a' / 'predictions.npz'), np.load(tmp_path / 'b' / 'predictions.npz')
  np.testing.assert_allclose(b['pred/valence'], 10 * a['pred/valence'], rtol=1e-5)
  np.testing.assert_allclose(b['pred/expression'], a['pred/expression'], rtol=1e-6)


def test_other_dataset_via_the_launcher(run, tmp_path):
  out = tmp_path / 'afew'
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  p = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'launch', 'evaluate.py'), f'--workdir={run}',
       '--set=source.preset=afew_va_like', '--split=test', '--set=eval_records=24',
       '--va_scale=10', f'--out_dir={out}'], env=env, capture_output=True, text=True)
  assert p.returncode == 0, p.stderr[-3000:]
  res = json.loads((out / 'results.json').read_text())
  assert res['source']['preset'] == 'afew_va_like' and res['split'] == 'test'
  assert res['num_samples'] == 24 and np.isfinite(res['rmse_mean'])
  assert (out / 'scatter.png').stat().st_size > 0


def test_plot_writes_a_png_for_one_and_several_runs(run, tmp_path):
  fake = tmp_path / 'fake'
  fake.mkdir()
  rows = [{'step': s, 'train/loss': 1.0 / s, 'train/epoch': s / 10,
           'train/lr_scale': 1.0 if s < 5 else 0.1} for s in range(1, 11)]
  rows += [{'step': s, 'val/loss': 1.0 / s, 'val/rmse_mean': 0.5 / s} for s in (5, 10)]
  (fake / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
  from fer_jax.train import curves
  out = tmp_path / 'curves.png'
  drawn = curves.plot_runs([str(fake), run], str(out))
  assert drawn[:3] == ['train/loss', 'val/loss', 'val/rmse_mean']
  assert 'train/lr_scale' in drawn
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  p = subprocess.run([sys.executable, os.path.join(ROOT, 'launch', 'plot.py'),
                      '--workdir', str(fake), '--out', str(tmp_path / 'e.png'),
                      '--x=epoch'], capture_output=True, text=True)
  assert p.returncode == 0, p.stderr
  assert (tmp_path / 'e.png').stat().st_size > 0


@pytest.mark.expensive
def test_wild_trained_model_generalizes_to_lab_better_than_the_reverse(tmp_path):
  """002's generalization result on the synthetic presets: the same net and
  budget trained on the wild set (sfew_like) scores higher on the lab set
  (kdef_like) than the lab-trained net scores on the wild set. Shown on
  expressions, whose AU prototypes every subject shares: the synthetic VA
  mapping is subject-specific by construction (000's premise), which confounds
  a VA cross-dataset check; launch/report.py --paper=002 reports that table."""
  from fer_jax.protocols import cross_dataset
  from fer_jax.train.loop import train_and_evaluate
  acc = {}
  for name, other in (('sfew_like', 'kdef_like'), ('kdef_like', 'sfew_like')):
    c = tiny_config(total_steps=200, eval_every_steps=200, checkpoint_every_steps=200,
                    log_every_steps=100, **{'data.eval_records': 200})
    c.data.source.preset = name
    c.data.image_size = 40
    c.data.crop = 'landmarks'  # 002's landmark-box crop
    c.data.augment.hflip = True
    c.model = dict(name='small_cnn', widths=(16, 32, 64), hidden=64)
    c.task.targets = ('expression',)
    c.batch_size = 32
    c.optim = dict(name='adam', learning_rate=2e-3)
    wd = str(tmp_path / name)
    own = train_and_evaluate(c, wd)['val/expression/accuracy']
    res = cross_dataset.evaluate_workdir(wd, str(tmp_path / f'{name}_on_{other}'),
                                         split='test', plots=False,
                                         data={'source.preset': other})
    acc[name] = (own, res['expression/accuracy'])
  wild_on_lab, lab_on_wild = acc['sfew_like'][1], acc['kdef_like'][1]
  assert wild_on_lab > lab_on_wild + 0.1, acc  # measured 0.60 vs 0.37
