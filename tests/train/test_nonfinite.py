"""Nothing non-finite is ever kept: a NaN training loss stops the run naming
its step with nothing saved from it on, a non-finite state is never saved, a
NaN metric is never the best, and a checkpoint that restores non-finite or
other values than were saved is named as damaged."""
import json
import os

import numpy as np
import pytest

NAN_STEP = 5


def _poisoned(make_train_step):
  """The loop's train step, with the loss and the parameters NaN from
  NAN_STEP on (as a diverging learning rate would make them)."""
  def factory(*args, **kwargs):
    import jax
    import jax.numpy as jnp
    step_fn = make_train_step(*args, **kwargs)

    def train_step(state, batch):
      new, metrics = step_fn(state, batch)
      poison = jnp.where(new.step >= NAN_STEP, jnp.nan, 1.0)
      new = new.replace(params=jax.tree.map(lambda p: p * poison, new.params))
      return new, dict(metrics, loss=metrics['loss'] * poison)
    return train_step
  return factory


# Where the guard meets the NaN of step 5: at the checkpoint of step 6 (no log
# row before step 8), or at the log row of step 6 (no checkpoint before 8).
@pytest.mark.parametrize('log_every,checkpoint_every,saved', [(4, 3, [3]), (2, 4, [4])],
                         ids=['before_a_save', 'at_a_log_row'])
def test_nan_loss_stops_at_its_step_and_saves_nothing_after(
    log_every, checkpoint_every, saved, tmp_path, tiny, monkeypatch):
  from fer_jax.train import loop
  from fer_jax.train.checkpoint import NonFiniteError, saved_steps
  monkeypatch.setattr(loop, 'make_train_step', _poisoned(loop.make_train_step))
  c = tiny(total_steps=8, log_every_steps=log_every,
           checkpoint_every_steps=checkpoint_every, eval_every_steps=2,
           **{'data.eval_records': 32})
  wd = str(tmp_path)
  with pytest.raises(NonFiniteError) as e:
    loop.train_and_evaluate(c, wd)
  message = str(e.value)
  assert '\n' not in message
  assert f'at step {NAN_STEP} of {wd}' in message
  assert f'latest checkpoint: step {saved[-1]}' in message
  assert saved_steps(wd) == saved
  assert all(s < NAN_STEP for s in saved_steps(wd, 'best'))
  assert not os.path.exists(os.path.join(wd, 'results.json'))
  with open(os.path.join(wd, 'metrics.jsonl')) as f:
    rows = [json.loads(l) for l in f]
  assert max(r['step'] for r in rows) < NAN_STEP
  assert all(np.isfinite(v) for r in rows for v in r.values()
             if isinstance(v, float))


def _tree():
  import jax.numpy as jnp
  return {'w': jnp.arange(6, dtype=jnp.float32).reshape(2, 3),
          'step': jnp.asarray(3, jnp.int32)}


def test_a_non_finite_state_is_never_saved(tmp_path):
  import jax.numpy as jnp
  from fer_jax.train.checkpoint import Checkpoints, NonFiniteError, saved_steps
  ckpts = Checkpoints(str(tmp_path), best_metric='val/loss')
  bad = dict(_tree(), w=_tree()['w'].at[1, 2].set(jnp.inf))
  with pytest.raises(NonFiniteError, match='step 7 holds non-finite'):
    ckpts.save(7, bad)
  with pytest.raises(NonFiniteError):
    ckpts.save_best(7, bad, {'val/loss': 1.0})
  ckpts.wait()
  ckpts.close()
  assert saved_steps(str(tmp_path)) == saved_steps(str(tmp_path), 'best') == []


@pytest.mark.parametrize('mode,values', [('min', [2.0, np.nan, 3.0, -np.inf]),
                                         ('max', [2.0, np.nan, 1.0, np.inf])])
def test_a_non_finite_metric_is_never_best(mode, values, tmp_path, capsys):
  from fer_jax.train.checkpoint import Checkpoints, saved_steps
  ckpts = Checkpoints(str(tmp_path), best_metric='val/m', best_mode=mode)
  for step, value in enumerate(values, 1):
    ckpts.save_best(step, _tree(), {'val/m': value})
  ckpts.wait()
  assert ckpts.best_step() == 1
  ckpts.close()
  assert saved_steps(str(tmp_path), 'best') == [1]
  err = capsys.readouterr().err
  assert 'val/m is nan at step 2; not a best checkpoint' in err
  assert 'at step 4; not a best checkpoint' in err


def test_fingerprint_is_the_sum_of_the_bits():
  import jax.numpy as jnp
  from fer_jax.train.checkpoint_integrity import numpy_summary, state_summary
  # 1.0f is 0x3f800000, -1 is 0xffffffff, True is 1, bf16 1.0 is 0x3f80:
  # their sum modulo 2**32 is 0x3f803f80.
  tree = {'a': jnp.ones((), jnp.float32), 'b': jnp.asarray([-1], jnp.int32),
          'c': jnp.asarray(True), 'd': jnp.ones((1,), jnp.bfloat16)}
  assert state_summary(tree) == (0x3f803f80, True)
  assert numpy_summary({k: np.asarray(v) for k, v in tree.items()}) == (0x3f803f80, True)
  assert state_summary(dict(tree, a=jnp.asarray(np.nan, jnp.float32)))[1] is False
  bf16_nan = np.asarray(jnp.full((1,), np.nan, jnp.bfloat16))
  assert numpy_summary({'d': bf16_nan})[1] is False


def _abstract():
  import jax
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _tree())


def test_a_restored_non_finite_state_is_damaged(tmp_path, capsys):
  # A checkpoint written before the save check (plain Orbax, no fingerprint)
  # that holds a NaN: the newest is damaged, the older one is used.
  import glob
  import jax.numpy as jnp
  import orbax.checkpoint as ocp
  from fer_jax.train.checkpoint import Checkpoints, DamagedCheckpointError
  wd = str(tmp_path)
  ckpts = Checkpoints(wd)
  ckpts.save(1, _tree())
  ckpts.latest.save(2, args=ocp.args.StandardSave(
      dict(_tree(), w=_tree()['w'].at[0, 0].set(jnp.nan))))
  ckpts.close()
  latest = os.path.join(wd, 'checkpoints', 'latest')

  ckpts = Checkpoints(wd)
  state = ckpts.restore_latest(_abstract())
  ckpts.close()
  np.testing.assert_array_equal(state['w'], _tree()['w'])
  err = capsys.readouterr().err
  assert f'warning: {latest}/2 holds non-finite values; moved it to {latest}/2.damaged-' in err
  assert len(glob.glob(f'{latest}/2.damaged-*')) == 1

  # Alone, it is an error naming it.
  os.rename(glob.glob(f'{latest}/2.damaged-*')[0], f'{latest}/2')
  os.rename(f'{latest}/1', f'{tmp_path}/one')
  ckpts = Checkpoints(wd)
  with pytest.raises(DamagedCheckpointError,
                     match=f'No checkpoint in {latest} restores .{latest}/2 holds non-finite'):
    ckpts.restore_latest(_abstract())
  ckpts.close()


def test_other_values_than_saved_are_damaged(tmp_path):
  # Finite garbage (flipped bytes that still decompress) restores without an
  # error; the fingerprint recorded at save tells it from the saved state.
  from fer_jax.train.checkpoint import (Checkpoints, DamagedCheckpointError,
                                        load_numpy)
  wd = str(tmp_path)
  ckpts = Checkpoints(wd)
  ckpts.save(1, _tree())
  ckpts.close()
  meta_path = os.path.join(wd, 'checkpoints', 'latest', '1', '_CHECKPOINT_METADATA')
  with open(meta_path) as f:
    meta = json.load(f)
  assert meta['custom_metadata']['fingerprint'] == _bits_sum()
  meta['custom_metadata']['fingerprint'] += 1
  with open(meta_path, 'w') as f:
    json.dump(meta, f)
  with pytest.raises(DamagedCheckpointError, match='restores other values than were saved'):
    load_numpy(wd)
  ckpts = Checkpoints(wd)
  with pytest.raises(DamagedCheckpointError, match='restores other values than were saved'):
    ckpts.restore_latest(_abstract())
  ckpts.close()


def _bits_sum():
  """The fingerprint of _tree(), from the bits of its values."""
  words = np.arange(6, dtype=np.float32).view(np.uint32).astype(np.int64).sum() + 3
  return int(words % 2**32)
