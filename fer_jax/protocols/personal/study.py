"""Paper 000's personalization study from one config: `run_study`, and the
check of every name it looks up before anything is pre-trained or written."""
import copy
import os
import time
from typing import Callable, Optional, Sequence

import jax
import ml_collections
import numpy as np

from fer_jax.data.sources import get_source
from fer_jax.protocols import samplers
from fer_jax.protocols.personal.data import (TARGETS, load_personal_data,
                                             make_folds, study_subjects)
from fer_jax.protocols.personal.features import (cached_features, head_outputs,
                                                 mc_dropout_samples)
from fer_jax.protocols.personal.files import log
from fer_jax.protocols.personal.plan import (CONDITIONS, MC_DROPOUT, build_plan,
                                             selection_orders)
from fer_jax.protocols.personal.pretrain import (net_specs, pretrain,
                                                 pretrain_config)
from fer_jax.protocols.personal.report import (conditions_table, model_rows,
                                               summarize, transfer0_rows,
                                               write_plots, write_results)
from fer_jax.protocols.personal.runner import (STEP_SCHEDULES, Runner,
                                               agreed_done_models)
from fer_jax.train import distributed
from fer_jax.train import loop
from fer_jax.train import memory
from fer_jax.train import optim
from fer_jax.train import workdir as workdir_lib


FOLD_BY = ('clip', 'frames')   # kfold.subject_folds
DTYPES = ('float32', 'bfloat16')


def source_subjects(source) -> Optional[set]:
  """The subjects of a personal source's annotated records, found without
  reading an image (synthetic video, or a real dataset's parsed entries);
  None when that is not possible (then they are checked after loading)."""
  if hasattr(source, 'video_position') and source.video_position(0):
    return {int(source.video_position(i)[0]) for i in range(len(source))}
  entries = getattr(source, 'entries', None)
  if entries is not None:
    return {int(e['subject']) for e in entries
            if e.get('has_va') and 'subject' in e}
  return None


def check_study_config(config, workdir: str):
  """Raises workdir.ConfigError listing every name of the study that does not
  exist (targets, conditions, samplers, fractions, folds, the fine-tuning
  optimisers and schedules, the pre-training configs, the personal dataset,
  split and subjects), before anything is pre-trained or written."""
  problems = []

  def among(field, values, valid):
    bad = [v for v in values if v not in valid]
    if bad:
      problems.append(f'{field}: unknown {", ".join(map(repr, bad))}; valid: '
                      f'{", ".join(valid)}')

  among('targets', tuple(config.targets), TARGETS)
  among('conditions', tuple(config.conditions), CONDITIONS)
  among('samplers', tuple(config.samplers), samplers.SAMPLERS.names())
  among('fold_by', (config.get('fold_by', 'clip'),), FOLD_BY)
  among('pretrain_checkpoint', (config.get('pretrain_checkpoint', 'best'),),
        ('best', 'latest'))
  bad = [f for f in config.fractions if not 0 < f <= 1]
  if bad:
    problems.append(f'fractions: {bad} not in (0, 1]')
  if not isinstance(config.folds, int) or config.folds < 2:
    problems.append(f'folds: {config.folds!r}, must be an integer >= 2')
  for section in ('finetune', 'no_transfer'):
    sec = config[section]
    kw = dict(sec.optim)
    name = kw.pop('name', None)
    kw.pop('learning_rate', None)
    kw.pop('grad_clip_norm', None)
    if name not in optim.OPTIMIZERS:
      problems.append(f'{section}.optim.name: unknown optimizer {name!r}; '
                      f'valid: {", ".join(optim.OPTIMIZERS.names())}')
    else:
      try:
        workdir_lib._bind(optim.OPTIMIZERS.get(name),  # pylint: disable=protected-access
                          f'{section}.optim ({name})', 0.1, **kw)
      except workdir_lib.ConfigError as e:
        problems.append(str(e))
    sched = dict(sec.get('schedule', None) or {'name': 'constant'})
    sched_name = sched.pop('name', None)
    among(f'{section}.schedule.name', (sched_name,), STEP_SCHEDULES)
    if sched_name in STEP_SCHEDULES:
      try:
        workdir_lib._bind(optim.SCHEDULES.get(sched_name),  # pylint: disable=protected-access
                          f'{section}.schedule ({sched_name})', 0.1, 1, 1,
                          **sched)
      except workdir_lib.ConfigError as e:
        problems.append(str(e))
    for k in ('batch_size', 'epochs'):
      if not isinstance(sec[k], int) or sec[k] < 1:
        problems.append(f'{section}.{k}: {sec[k]!r}, must be an integer >= 1')
    dtypes = DTYPES if section == 'finetune' else ('float32',)
    among(f'{section}.dtype', (sec.get('dtype', 'float32'),), dtypes)
  if all(t in TARGETS for t in config.targets):
    root = config.get('pretrain_dir') or os.path.join(workdir, 'pretrain')
    for name, targets in net_specs(config):
      fresh = not os.path.exists(os.path.join(root, name, 'results.json'))
      try:
        workdir_lib.validate_config(pretrain_config(config, targets),
                                    check_files=fresh)
      except workdir_lib.ConfigError as e:
        problems.append(f'pretrain ({name}): {str(e).removeprefix("config: ")}')
        break
  pc = config.personal
  stride = pc.get('frame_stride', 1)
  if not isinstance(stride, int) or stride < 1:
    problems.append(f'personal.frame_stride: {stride!r}, must be an integer >= 1')
  where = f'personal ({pc.get("name")} {dict(pc.get("source", {}))} split ' \
          f'{pc.get("split")!r})'
  try:
    source = get_source(pc, pc.split)
  except (KeyError, ValueError, TypeError) as e:
    problems.append(f'{where}: {workdir_lib._message(e)}')  # pylint: disable=protected-access
    source = None
  have = source_subjects(source) if source is not None else None
  wanted = [int(s) for s in pc.get('subjects', ())]
  if have is not None:
    missing = [s for s in wanted if s not in have]
    if missing or not have:
      problems.append(
          f'personal.subjects: {missing or "none"} not in {where}, which has '
          f'annotated subjects {_ranges(sorted(have)) or "none"}')
  if problems:
    raise workdir_lib.ConfigError('config: ' + '; '.join(problems))


def _ranges(values: Sequence[int]) -> str:
  """'0-9, 12' for [0, 1, ..., 9, 12]."""
  out, start = [], None
  for i, v in enumerate(values):
    if start is None:
      start = v
    if i + 1 == len(values) or values[i + 1] != v + 1:
      out.append(str(start) if start == v else f'{start}-{v}')
      start = None
  return ', '.join(out)


def _study_config_for_check(config):
  """The config minus runtime knobs, which do not change results."""
  c = copy.deepcopy(config)
  with c.unlocked():
    del c['runtime']
  return c


def run_study(config: ml_collections.ConfigDict, workdir: str, *,
              max_chunks: Optional[int] = None,
              on_chunk: Optional[Callable[[dict], None]] = None) -> dict:
  """Runs (or resumes) the whole personalization study of `config` in `workdir`.

  Every name the study looks up is checked first (`check_study_config`), so a
  typo is one error before hours of pre-training. On SIGTERM the study stops
  with `distributed.Preempted` (pre-training: at an agreed step, saved; later:
  before its next chunk, the chunks trained so far saved); running again
  resumes. A damaged chunk or feature file is moved aside with a warning and
  its models trained (its features extracted) again.

  max_chunks: stop (raise StudyInterrupted) once this call has trained that many
    chunks; on_chunk(info) runs after each saved chunk (it may raise). Both
    simulate interruptions; running again resumes.

  Returns:
    {'summary': rows of results.csv, 'models': per-model rows, 'table': str}.
  """
  check_study_config(config, workdir)  # hours before pre-training ends
  os.makedirs(workdir, exist_ok=True)
  loop.check_workdir_config(_study_config_for_check(config), workdir)  # 0 writes
  # SIGTERM: pre-training saves and stops by itself (train_and_evaluate);
  # later, the study stops before its next chunk (`Runner.run`).
  with distributed.Preemption() as preemption:
    return _run_study(config, workdir, preemption, max_chunks, on_chunk)


def _run_study(config, workdir, preemption, max_chunks, on_chunk) -> dict:
  t0 = time.perf_counter()
  nets = pretrain(config, workdir)
  data = load_personal_data(config)
  subjects = study_subjects(config, data)
  folds = make_folds(config, data, subjects)
  rt = config.runtime
  budget = memory.memory_budget(rt.memory_budget_mb * 2**20)
  key = jax.random.key(config.seed)
  feats = [cached_features(config, workdir, n, data) for n in nets]
  outputs = [head_outputs(n, f, rt.feature_batch) for n, f in zip(nets, feats)]
  mc = [None] * len(nets)
  if 'mcdue' in config.samplers:
    mc = [mc_dropout_samples(n, f, jax.random.fold_in(
        jax.random.fold_in(key, MC_DROPOUT), b), config.mcdue.passes,
                             config.mcdue.rate, budget)
          for b, (n, f) in enumerate(zip(nets, feats))]
  orders = selection_orders(config, nets, feats, outputs, mc, data, folds,
                            subjects, key)
  plan = build_plan(config, nets, data, folds, subjects, orders)
  log(config, f'{len(subjects)} subjects x {config.folds} folds, '
      f'{len(data.subject)} frames; {len(plan)} models to train '
      f'({time.perf_counter() - t0:.0f} s so far)')

  # Twin nets: their feature / label blocks are stacked, model i reads block
  # plan.net[i]. A joint net has one block with both targets.
  n = len(data.subject)
  cols = [[TARGETS.index(t) for t in net.targets] for net in nets]
  y = np.concatenate([data.labels[:, c] for c in cols])
  done = agreed_done_models(workdir, plan, nets)
  counter = {'chunks': 0}
  heads = [i for i in range(len(plan)) if plan.kind[i] == 'head']
  fulls = [i for i in range(len(plan)) if plan.kind[i] == 'full']
  Runner(config, workdir, 'head', plan, nets, np.concatenate(feats), y,
         x_block=n, y_block=n).run(heads, done, counter, max_chunks, on_chunk,
                                   preemption)
  # Images as uint8 pixels, looked up on the devices (data.lookup).
  Runner(config, workdir, 'full', plan, nets, data.images, y, x_block=0,
         y_block=n, lookup=data.lookup).run(fulls, done, counter, max_chunks,
                                            on_chunk, preemption)

  t0_rows = (transfer0_rows(nets, outputs, data, folds, subjects, config.folds)
             if 'transfer_0' in config.conditions else [])
  rows = model_rows(plan, done, nets, t0_rows)
  bad = [r for r in rows if not np.isfinite(r['rmse'])]
  if bad:  # kept (a diverged model is a result), but said out loud
    log(config, f'WARNING: {len(bad)} model(s) diverged (RMSE not finite), '
        f'e.g. {bad[0]}')
  summary = summarize(rows)
  if distributed.is_lead():
    write_results(workdir, config, summary, rows)
    write_plots(workdir, summary)
  table = conditions_table(summary)
  log(config, f'\n{table}\n\nResults in {workdir} '
      f'({time.perf_counter() - t0:.0f} s)')
  return {'summary': summary, 'models': rows, 'table': table}
