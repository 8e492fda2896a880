"""k-fold CV: grouped, balanced fold assignment and a tiny 2-fold run."""
import json
import os

import numpy as np
import pytest

from fer_jax.protocols import kfold_cv
from tests.conftest import tiny_config


def test_assign_folds_keeps_groups_whole_and_balances_sizes():
  groups = np.repeat(np.arange(10), [5, 1, 4, 2, 3, 3, 2, 4, 1, 5])
  folds = kfold_cv.assign_folds(groups, 3, seed=1)
  for g in np.unique(groups):
    assert len(set(folds[groups == g])) == 1
  sizes = np.bincount(folds, minlength=3)
  assert sizes.sum() == 30 and sizes.max() - sizes.min() <= 1
  np.testing.assert_array_equal(folds, kfold_cv.assign_folds(groups, 3, seed=1))
  with pytest.raises(ValueError, match='num_folds'):
    kfold_cv.assign_folds(np.zeros(5), 2)


def test_kfold_source_splits_by_clip_with_no_clip_on_both_sides():
  c = tiny_config(**{'data.source.preset': 'ck_like', 'task.targets': ('expression',)})
  train_clips, val_clips, total = set(), set(), 0
  for k in range(2):
    fc = kfold_cv.fold_config(c, k, 2, group_by='auto', records=48)
    from fer_jax.data.sources import get_source
    tr, va = get_source(fc.data, 'train'), get_source(fc.data, 'validation')
    assert len(tr) + len(va) == 48
    tc = {int(tr[i]['clip']) for i in range(len(tr))}
    vc = {int(va[i]['clip']) for i in range(len(va))}
    assert not tc & vc and len(vc) >= 1
    val_clips |= vc
    total += len(va)
  assert total == 48 and len(val_clips) == 4  # 48 frames of 12-frame clips


def test_two_fold_run_writes_mean_and_spread(tmp_path):
  c = tiny_config(total_steps=2, eval_every_steps=2, checkpoint_every_steps=2)
  out = kfold_cv.run_kfold(c, str(tmp_path), num_folds=2, records=40)
  assert out['group_by'] == 'subject' and sum(out['fold_sizes']) == 40
  assert [r['fold'] for r in out['per_fold']] == [0, 1]
  vals = [r['val/rmse_mean'] for r in out['per_fold']]
  assert out['mean']['val/rmse_mean'] == pytest.approx(np.mean(vals))
  assert out['std']['val/rmse_mean'] == pytest.approx(np.std(vals, ddof=1))
  assert json.load(open(tmp_path / 'kfold_results.json'))['num_folds'] == 2
  assert os.path.exists(tmp_path / 'fold_1' / 'results.json')
