"""003's comparison: single-task vs classical multi-task vs SJMT, one table.

  python launch/compare_multitask.py --workdir=/tmp/mt            # reduced, CPU
  python launch/compare_multitask.py --workdir=/tmp/mt --arg=paper  # 003 scale

Trains configs/multitask/{single_expression,classical,sjmt}.py (each in
workdir/<kind>, resumable; with `config.pretrain` set, first pre-trains on
fer2013_like in workdir/pretrain and starts each run from those features), then
reports for every run: expression accuracy and per-class accuracy (003 eq. 3) on
the expression set; per-AU F1 on the AU set; per-AU F1 of the predicted AUs of
expression-only images against the AUs that generated them (synthetic
`all_labels=True`); and 003's Fig. 2 / Table 3 (mean AU score per predicted
expression: text table + heat map PNG). Writes workdir/comparison.{md,json}.
"""
import os

import numpy as np
from absl import flags, logging

from fer_jax import atomic
from fer_jax import cli

flags.DEFINE_string('workdir', None, 'Root of the runs and the comparison table.')
flags.DEFINE_string('arg', '', "Config argument: '', 'paper', 'paper,resnet110'...")
flags.DEFINE_list('kinds', ['single_expression', 'classical', 'sjmt'], 'Runs '
                  '(also single_aus; single_compound and sjmt_compound: 003 Table 4).')
flags.DEFINE_integer('total_steps', 0, '> 0 overrides every run (and pretrain).')
flags.DEFINE_integer('report_records', 0, '> 0: report on the first N records.')
flags.DEFINE_boolean('pretrain', True, 'Run config.pretrain first when it is set.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS

KINDS = ('single_expression', 'single_aus', 'classical', 'sjmt',
         'single_compound', 'sjmt_compound')  # the last two: 003 Table 4


def make_config(kind, arg='', total_steps=0):
  from configs.multitask import common
  c = common.get(kind, arg)
  c.progress = False
  if total_steps:
    c.total_steps = total_steps
    c.eval_every_steps = c.checkpoint_every_steps = total_steps
    if c.schedule.get('warmup_steps'):
      c.schedule.warmup_steps = min(c.schedule.warmup_steps, total_steps // 10)
    if c.pretrain:
      c.pretrain.total_steps = total_steps
      c.pretrain.eval_every_steps = c.pretrain.checkpoint_every_steps = total_steps
  return c


def warm_start(config, workdir, pretrain_dir):
  """Writes a step-0 checkpoint of `config` holding the pre-trained features and
  a fresh head, so `train_and_evaluate` starts from it (no-op on resume)."""
  import jax
  from fer_jax.models import partition
  from fer_jax.train import checkpoint as ckpt_lib
  from fer_jax.train.loop import Trainer
  from fer_jax.train.state import variables_of
  from fer_jax.train.trained import load_run
  ckpts = ckpt_lib.Checkpoints(workdir)
  if ckpts.latest_step() is None:
    t = Trainer(config, workdir)
    pre = load_run(pretrain_dir, 'latest').variables
    old = {'params': pre['params'], 'batch_stats': pre.get('batch_stats', {})}
    new = partition.reinit_head(old, variables_of(t.state))
    state = t.state.replace(params=new['params'],
                            batch_stats=new.get('batch_stats', t.state.batch_stats))
    state = state.replace(opt_state=t.tx.init(state.params))
    ckpts.save(0, jax.device_put(state, jax.tree.map(lambda x: x.sharding, t.state)),
               force=True)
  ckpts.wait()
  ckpts.close()


def train(kind, arg, root, total_steps=0, pretrain=True):
  from fer_jax.train.loop import train_and_evaluate
  c = make_config(kind, arg, total_steps)
  wd = os.path.join(root, kind)
  if pretrain and c.pretrain:
    pre_wd = os.path.join(root, 'pretrain')
    if not os.path.exists(os.path.join(pre_wd, 'results.json')):
      train_and_evaluate(c.pretrain, pre_wd)
    warm_start(c, wd, pre_wd)
  return c, train_and_evaluate(c, wd)


def report_run(config, workdir, records=0):
  """Extra reports of a finished run (see module doc); writes PNG + table."""
  from fer_jax.data import pipeline
  from fer_jax.data.synthetic import SyntheticSource
  from fer_jax.evaluate import metrics, multitask_report as mr
  from fer_jax.train import checkpoint as ckpt_lib
  from fer_jax.train.loop import Trainer
  t = Trainer(config, workdir)
  ckpts = ckpt_lib.Checkpoints(workdir)
  state = ckpts.restore_latest(ckpt_lib.abstract_like(t.state))
  ckpts.close()
  size, ch = config.data.image_size, config.data.channels
  src = lambda preset, **kw: pipeline.limit(SyntheticSource(  # noqa: E731
      preset, 'validation', size, ch, **kw), records)
  out = {}
  if 'compound' in pred_groups(t):  # 003 Table 4: accuracy per compound class
    pred, lab = mr.predict_source(t, state, src('compound_like'))
    rep = mr.group_report(pred, lab, ('compound',))
    out.update({f'cmp_set/{k}': v for k, v in rep.items()})
    return out
  pred, lab = mr.predict_source(t, state, src('sfew_like'))
  out.update({f'expr_set/{k}': v for k, v in t.task.report(pred, lab).items()})
  if 'aus' in pred:
    pred, lab = mr.predict_source(t, state, src('emotionet_like'))
    out.update({f'au_set/{k}': v for k, v in t.task.report(pred, lab).items()
                if k.startswith('aus/')})
    # AUs of expression-only images vs the AUs that generated them.
    pred, lab = mr.predict_source(t, state, src('sfew_like', all_labels=True))
    y = lab['aus'] >= 0.5
    f1 = np.asarray(metrics.f1_per_class(pred['aus'] >= 0.5, y))
    chance = np.asarray(metrics.f1_per_class(np.ones_like(y), y))  # all-positive
    out['expr_set/au_gt/f1_mean'] = float(f1.mean())
    out['expr_set/au_gt/f1_all_positive_mean'] = float(chance.mean())
    table, counts = mr.au_by_expression(pred['expression'], pred['aus'])
    text = mr.au_table_text(table, counts)
    with open(os.path.join(workdir, 'au_by_expression.txt'), 'w') as f:
      f.write(text + '\n')
    mr.plot_au_heatmap(table, os.path.join(workdir, 'au_by_expression.png'),
                       title=f'{os.path.basename(workdir)}: mean AU score by '
                             'predicted expression')
    out['au_by_expression'] = np.nan_to_num(table).round(4).tolist()
  return out


def pred_groups(trainer):
  """The label groups a trained run predicts."""
  task = trainer.task
  return tuple(getattr(task, 'groups', None) or getattr(task, 'targets', ()))


COLUMNS = (('expression acc', 'expr_set/expression/accuracy'),
           ('expr per-class acc (eq.3)', 'expr_set/expression/per_class_accuracy_mean'),
           ('expr mean recall', 'expr_set/expression/mean_recall'),
           ('AU F1 (AU set)', 'au_set/aus/f1_mean'),
           ('AU acc eq.3 (AU set)', 'au_set/aus/accuracy_mean'),
           ('AU F1 vs truth (expr set)', 'expr_set/au_gt/f1_mean'),
           ('  all-positive F1', 'expr_set/au_gt/f1_all_positive_mean'),
           ('compound acc', 'cmp_set/compound/accuracy'),
           ('compound mean recall (Table 4)', 'cmp_set/compound/mean_recall'))


def table(rows):
  head = '| run | ' + ' | '.join(c for c, _ in COLUMNS) + ' |'
  lines = [head, '|' + '---|' * (len(COLUMNS) + 1)]
  for kind, r in rows.items():
    cells = [f'{r[k]:.4f}' if isinstance(r.get(k), float) else '-' for _, k in COLUMNS]
    lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  rows = {}
  for kind in FLAGS.kinds:  # every name and config before the first run starts
    if kind not in KINDS:
      raise cli.UsageError(f'--kinds: unknown kind {kind!r}; valid: {", ".join(KINDS)}')
  from fer_jax.train.workdir import validate_config
  for kind in FLAGS.kinds:
    try:
      c = make_config(kind, FLAGS.arg, FLAGS.total_steps)
    except ValueError as e:  # the config's own check of --arg
      raise cli.UsageError(f'--arg={FLAGS.arg!r}: {e}') from None
    validate_config(c, check_files=False)
    if c.pretrain:
      validate_config(c.pretrain, check_files=False)
  for kind in FLAGS.kinds:
    config, _ = train(kind, FLAGS.arg, FLAGS.workdir, FLAGS.total_steps,
                      FLAGS.pretrain)
    rows[kind] = report_run(config, os.path.join(FLAGS.workdir, kind),
                            FLAGS.report_records)
  md = table(rows)
  with open(os.path.join(FLAGS.workdir, 'comparison.md'), 'w') as f:
    f.write(md + '\n')
  atomic.write_json(os.path.join(FLAGS.workdir, 'comparison.json'), rows,
                    indent=1, default=float)
  print(md)
  for kind in rows:
    p = os.path.join(FLAGS.workdir, kind, 'au_by_expression.txt')
    if os.path.exists(p):
      print(f'\n{kind}: mean AU score by predicted expression (003 Table 3)')
      print(open(p).read())


if __name__ == '__main__':
  cli.run(main)
