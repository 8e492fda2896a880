"""The papers' experiment grids: run (or resume) every run, gather results.

`report` runs one paper's grid and writes what it returns as the paper's tables
(fer_jax/evaluate/paper_tables.py); launch/report.py is its command. Every run lives in ROOT/<name> and resumes;
finished runs are read, not retrained; `train=False` only reads.

  run_001  configs/transfer/cascade_001.py: every scheme (cascade_001.METHODS) x
           network; accuracy of the last stage's best checkpoint on the small
           set's validation and test splits.
  run_002  configs/transfer/ulloa_002.py: k-fold CV of each network on afew_va
           and semaine, then each dataset's best-fold model on the other
           dataset's test split (002's Table 4).
  run_004  configs/transfer/zaitouny_004.py: the three networks (all stages),
           accuracy on the validation split and on the test source (004: the
           FER-2013-like test split, `data.test_sources.test`), and their weighted-average ensemble
           (weights from the validation accuracy: 'rank', 'fit' or 'uniform').

`overrides` are launch/report.py's `--set` strings, [RUN:]KEY=VALUE: KEY as
fer_jax/train/stages.py's `apply_overrides` reads it (every stage, or
stages.<i|name>.KEY), RUN one of a run's names (network, dataset, method).
`check_runs` refuses one that reaches no run and validates every run's config
before the first one trains.
"""
import copy
import json
import os

from configs import common
from configs.transfer import cascade_001, ulloa_002, zaitouny_004


def parse_sets(sets):
  """[(selector or '', KEY, VALUE text)] of `--set` strings 'KEY=VALUE' or
  'SELECTOR:KEY=VALUE' (the runs one of whose names is SELECTOR: a network,
  a dataset, a method)."""
  from fer_jax.train.workdir import ConfigError
  out = []
  for kv in sets:
    key, eq, value = kv.partition('=')
    if not eq or not key:
      raise ConfigError(f'--set={kv!r}: expected KEY=VALUE or RUN:KEY=VALUE')
    sel, colon, key = key.rpartition(':')
    out.append((sel if colon else '', key, value))
  return out


def check_selectors(sets, names):
  """ConfigError for a `--set` whose selector is none of the runs' `names`."""
  from fer_jax.train.workdir import ConfigError
  for sel, key, _ in parse_sets(sets):
    if sel and sel not in names:
      raise ConfigError(f'--set={sel}:{key}=...: {sel!r} names no run of this '
                        f'report (runs are named by: {", ".join(sorted(set(names)))})')


def apply_overrides(config, overrides, names=(), reached=None):
  """`config` (changed in place and returned) with the `--set` overrides that
  reach a run named by `names`, applied as `fer_jax.train.stages.apply_overrides`
  does: to every stage, or one (`stages.<i|name>.KEY`). A grid's runs differ
  (001's direct scheme has no 'fer' stage), so an override that reaches no field
  of this run is skipped here; `check_runs` refuses one that reaches no run.
  reached: {KEY: True, or the error of a run it did not reach}, filled in."""
  from fer_jax.train.stages import Unreached
  from fer_jax.train.stages import apply_overrides as apply
  chosen = {}
  for sel, key, value in parse_sets(overrides):
    if not sel or sel in names:
      chosen.pop(key, None)
      chosen[key] = value
  for key, value in chosen.items():
    try:
      new = apply(config, {key: value})
    except Unreached as e:
      if reached is not None and reached.get(key) is not True:
        reached[key] = e
      continue
    if reached is not None:
      reached[key] = True
    config.unlock()
    for k in new.keys():
      config[k] = new[k]
  return config


def check_runs(runs, overrides, validate=True):
  """runs: {run name: (config, names)}. Refuses a `--set` that reaches no run,
  then (validate) every run's config, each stage, before the first one
  trains: a typo in the last run costs seconds, not the grid."""
  from fer_jax.train.stages import stage_configs
  from fer_jax.train.workdir import ConfigError, validate_config
  reached = {}
  configs = {name: apply_overrides(copy.deepcopy(c), overrides, names, reached)
             for name, (c, names) in runs.items()}
  for key, r in reached.items():
    if r is not True:
      raise ConfigError(f'--set {key}: reaches no run of this report ({r})')
  for name, c in configs.items() if validate else ():
    for stage, _, s in (stage_configs(c, '') if c.get('stages') else [('', 0, c)]):
      try:
        validate_config(s, check_files=False)
      except ConfigError as e:
        where = f'{name} stage {stage!r}' if stage else name
        raise ConfigError(f'{where}: {e}') from None


def _read(path):
  with open(path) as f:
    return json.load(f)


def _args(*parts):
  return ','.join(p for p in parts if p)


def _reduced(arg):
  """The `reduced` of the configs' argument, read as they read it
  (`configs.common.parse_arg`: `reduced`, `reduced=true`, `reduced=0`...)."""
  own = [t for t in (arg or '').split(',') if t.split('=')[0].strip() == 'reduced']
  return common.parse_arg(','.join(own), reduced=False).reduced


def run_001(root, arg, overrides, train, models=()):
  from fer_jax.protocols import cross_dataset
  from fer_jax.train.stages import run_stages, stage_configs
  models = models or (('alexnet',) if _reduced(arg) else tuple(cascade_001.MODELS))
  check_selectors(overrides, models + cascade_001.METHODS)
  check_runs({f'{m}_{k}': (cascade_001.get_config(_args(k, m, arg)), (m, k))
              for m in models for k in cascade_001.METHODS}, overrides, train)
  runs = {}
  for model in models:
    for method in cascade_001.METHODS:
      c = apply_overrides(cascade_001.get_config(_args(method, model, arg)), overrides,
                          (model, method))
      wd = os.path.join(root, f'{model}_{method}')
      if train:
        run_stages(c, wd)
      last = stage_configs(c, wd)[-1][1]
      res = {}
      for split, key in (('validation', 'val'), ('test', 'test')):
        out = os.path.join(last, 'eval', f'report_{split}')
        path = os.path.join(out, 'results.json')
        if not os.path.exists(path) and os.path.exists(os.path.join(last, 'results.json')):
          cross_dataset.evaluate_workdir(last, out, 'best', split, plots=False)
        if os.path.exists(path):
          r = _read(path)
          res[f'{key}/expression/accuracy'] = r.get('expression/accuracy')
      runs[(c.model.name if _reduced(arg) else model, method)] = res
  return runs


def run_002(root, arg, overrides, train, models=()):
  from fer_jax.protocols import cross_dataset, kfold_cv
  models = models or (('vgg11_bn',) if _reduced(arg) else tuple(ulloa_002.MODELS))
  cv, cross = {ds: {} for ds in ulloa_002.DATASETS}, {}
  other = {'afew_va': 'semaine', 'semaine': 'afew_va'}
  check_selectors(overrides, models + tuple(ulloa_002.DATASETS))
  check_runs({f'{m}_{d}': (ulloa_002.get_config(_args(m, d, arg)), (m, d))
              for d in ulloa_002.DATASETS for m in models}, overrides, train)
  for ds in ulloa_002.DATASETS:
    for model in models:
      c = apply_overrides(ulloa_002.get_config(_args(model, ds, arg)), overrides,
                          (model, ds))
      wd = os.path.join(root, f'{model}_{ds}')
      path = os.path.join(wd, 'kfold_results.json')
      if train and not os.path.exists(path):
        kfold_cv.run_from_config(c, wd)
      if not os.path.exists(path):
        continue
      res = _read(path)
      name = c.model.name if _reduced(arg) else model
      cv[ds][name] = res
      # The thesis tests its best model on the other dataset: the best fold here.
      best = min(res['per_fold'], key=lambda r: r['val/rmse_mean'])['fold']
      # The whole test split unless --set says otherwise: the reduced config's
      # cap (600 records) holds 6 clips of the lab set, and a PCC over so few
      # clips is mostly chance (measured: wild->lab arousal PCC 0.01 on 6
      # clips, 0.44 on the 10 of the whole split).
      target = ulloa_002.get_config(_args(model, other[ds], arg))
      target.data.eval_records = 0
      target = apply_overrides(target, overrides, (model, other[ds]))
      out = os.path.join(root, 'cross', f'{model}_{ds}_on_{other[ds]}')
      if not os.path.exists(os.path.join(out, 'results.json')):
        cross_dataset.evaluate_workdir(os.path.join(wd, f'fold_{best}'), out, 'best',
                                       'test', target=target)
      cross[(ds, name)] = {**_read(os.path.join(out, 'results.json')), 'fold': best}
  return cv, cross


def run_004(root, arg, overrides, train, method='rank', models=()):
  from fer_jax.evaluate import metrics
  from fer_jax.protocols import cross_dataset, ensemble
  from fer_jax.train.loop import eval_data_config
  from fer_jax.train.stages import run_stages, stage_configs
  from fer_jax.train.trained import load_run
  models = models or tuple(zaitouny_004.MODELS)
  check_selectors(overrides, models)
  check_runs({m: (zaitouny_004.get_config(_args(m, arg)), (m,)) for m in models},
             overrides, train)
  members, preds = {}, {}
  for model in models:
    c = apply_overrides(zaitouny_004.get_config(_args(model, arg)), overrides, (model,))
    if _reduced(arg):  # the same small net: differently seeded members
      c.seed = c.seed + list(zaitouny_004.MODELS).index(model)
    wd = os.path.join(root, model)
    if train:
      run_stages(c, wd)
    last = stage_configs(c, wd)[-1][1]
    if not os.path.exists(os.path.join(last, 'results.json')):
      continue
    # The run's own config.json: it holds the training-set statistics
    # (featurewise normalisation) the net was trained with.
    run = load_run(last, 'best')
    section = (run.config.data.get('test_sources') or {}).get('test')
    test = copy.deepcopy(run.config)
    test.data = eval_data_config(run.config.data, section)
    preds[model] = {}
    for key, cfg, split in (('validation', run.config, run.config.data.eval_split),
                            ('test', test, (section or {}).get('split', 'test'))):
      p, lab, _ = cross_dataset.predict(run, split, cfg)
      preds[model][key] = (p['expression'], lab['expression'])
    members[model] = {f'{k}/expression/accuracy': float(metrics.accuracy(*preds[model][s]))
                      for k, s in (('val', 'validation'), ('test', 'test'))}
  ens = None
  if len(members) > 1:
    names = list(members)
    val = [{'expression': preds[m]['validation'][0]} for m in names]
    labels = {'expression': preds[names[0]]['validation'][1]}
    w = ensemble.weights_for(method, val, labels,
                             scores=[members[m]['val/expression/accuracy'] for m in names])
    test = ensemble.combine([{'expression': preds[m]['test'][0]} for m in names], w)
    ens = {'method': method, 'weights': dict(zip(names, map(float, w))),
           'test/expression/accuracy': float(metrics.accuracy(
               test['expression'], preds[names[0]]['test'][1]))}
  return members, ens


def report(paper, root, arg, overrides, train=True, models=(), ensemble='rank'):
  """Runs (or reads) one paper's grid and writes ROOT/report_<paper>.md and
  .json; returns (the markdown tables, the path of the .md)."""
  from fer_jax import atomic
  from fer_jax.evaluate import paper_tables as pt
  from fer_jax.train.logging import write_json
  synthetic = 'real' not in arg.split(',')
  os.makedirs(root, exist_ok=True)
  if paper == '001':
    runs = run_001(root, arg, overrides, train, models)
    md = pt.table_001(runs, synthetic)
    js = {f'{m}/{s}': r for (m, s), r in runs.items()}
  elif paper == '002':
    cv, cross = run_002(root, arg, overrides, train, models)
    md = '\n'.join([pt.table_002_cv(ds, cv[ds], synthetic) for ds in cv if cv[ds]]
                   + [pt.table_002_cross(cross, synthetic)])
    js = {'cv': {ds: {m: r['mean'] for m, r in v.items()} for ds, v in cv.items()},
          'cross': {f'{d}/{m}': r for (d, m), r in cross.items()}}
  elif paper == '004':
    members, ens = run_004(root, arg, overrides, train, ensemble, models)
    md = pt.table_004(members, ens, synthetic)
    js = {'members': members, 'ensemble': ens}
  else:
    raise ValueError(f'no experiment grid for paper {paper!r}; valid: 001, 002, 004')
  path = os.path.join(root, f'report_{paper}.md')
  atomic.write_text(path, md)
  write_json(os.path.join(root, f'report_{paper}.json'), js)
  return md, path
