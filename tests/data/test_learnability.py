"""The embedded wild preset is learnable: a small CNN trained briefly beats the
predict-the-mean baseline on valence and arousal and chance on expressions."""
import numpy as np
import pytest

from tests.conftest import tiny_config


@pytest.mark.expensive
@pytest.mark.slow
def test_small_cnn_learns_the_wild_affectnet_like_preset(tmp_path):
  from fer_jax.data.sources import get_source
  from fer_jax.train.loop import train_and_evaluate
  c = tiny_config()
  c.data.image_size = 48
  c.data.eval_records = 1000
  c.model = dict(name='small_cnn', widths=(16, 32, 64), hidden=64)
  c.batch_size = 32
  c.total_steps = 1000
  c.log_every_steps = 100
  c.eval_every_steps = c.checkpoint_every_steps = 1000
  c.task.targets = ('valence', 'arousal', 'expression')
  c.optim = dict(name='adam', learning_rate=2e-3)
  c.schedule = dict(name='cosine', warmup_steps=50)
  res = train_and_evaluate(c, str(tmp_path))

  val = get_source(c.data, 'validation')
  recs = [val[i] for i in range(1000)]
  baseline = {k: float(np.std([r[k] for r in recs])) for k in ('valence', 'arousal')}
  counts = np.bincount([r['expression'] for r in recs], minlength=7)
  majority = counts.max() / counts.sum()
  assert res['val/valence/rmse'] < 0.75 * baseline['valence'], (res, baseline)
  assert res['val/arousal/rmse'] < 0.85 * baseline['arousal'], (res, baseline)
  assert res['val/expression/accuracy'] > max(majority + 0.15, 3 / 7), (res, majority)
