"""The papers' experiment grids: run (or resume) every run, gather results.

Used by launch/report.py, which turns what these return into the papers' tables
(fer_jax/evaluate/paper_tables.py). Every run lives in ROOT/<name> and resumes;
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
"""
import ast
import copy
import json
import os


def _literal(s):
  try:
    return ast.literal_eval(s)
  except (ValueError, SyntaxError):
    return s


def apply_overrides(config, overrides):
  """`config` with dotted KEY=VALUE overrides (also inside every stage)."""
  config.unlock()
  for kv in overrides:
    key, value = kv.split('=', 1)
    node, *path = key.split('.')
    target = config
    for p in [node, *path][:-1]:
      target = target[p]
    target[([node, *path])[-1]] = _literal(value)
  return config


def _read(path):
  with open(path) as f:
    return json.load(f)


def _args(*parts):
  return ','.join(p for p in parts if p)


def _reduced(arg):
  return 'reduced' in arg.split(',')


def run_001(root, arg, overrides, train, models=()):
  from configs.transfer import cascade_001
  from fer_jax.protocols import cross_dataset
  from fer_jax.train.stages import run_stages, stage_configs
  models = models or (('alexnet',) if _reduced(arg) else tuple(cascade_001.MODELS))
  runs = {}
  for model in models:
    for method in cascade_001.METHODS:
      c = apply_overrides(cascade_001.get_config(_args(method, model, arg)), overrides)
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
  from configs.transfer import ulloa_002
  from fer_jax.protocols import cross_dataset, kfold_cv
  models = models or (('vgg11_bn',) if _reduced(arg) else tuple(ulloa_002.MODELS))
  cv, cross = {ds: {} for ds in ulloa_002.DATASETS}, {}
  other = {'afew_va': 'semaine', 'semaine': 'afew_va'}
  for ds in ulloa_002.DATASETS:
    for model in models:
      c = apply_overrides(ulloa_002.get_config(_args(model, ds, arg)), overrides)
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
      target = apply_overrides(target, overrides)
      out = os.path.join(root, 'cross', f'{model}_{ds}_on_{other[ds]}')
      if not os.path.exists(os.path.join(out, 'results.json')):
        cross_dataset.evaluate_workdir(os.path.join(wd, f'fold_{best}'), out, 'best',
                                       'test', target=target)
      cross[(ds, name)] = {**_read(os.path.join(out, 'results.json')), 'fold': best}
  return cv, cross


def run_004(root, arg, overrides, train, method='rank', models=()):
  import numpy as np
  from configs.transfer import zaitouny_004
  from fer_jax.evaluate import metrics
  from fer_jax.protocols import cross_dataset, ensemble
  from fer_jax.train.loop import eval_data_config
  from fer_jax.train.stages import run_stages, stage_configs
  models = models or tuple(zaitouny_004.MODELS)
  members, preds = {}, {}
  for model in models:
    c = apply_overrides(zaitouny_004.get_config(_args(model, arg)), overrides)
    if _reduced(arg):  # the same small net: differently seeded members
      c.seed = c.seed + list(zaitouny_004.MODELS).index(model)
    wd = os.path.join(root, model)
    if train:
      run_stages(c, wd)
    last = stage_configs(c, wd)[-1][1]
    if not os.path.exists(os.path.join(last, 'results.json')):
      continue
    _, variables = cross_dataset.load_variables(last, 'best')
    # The run's own config.json: it holds the training-set statistics
    # (featurewise normalisation) the net was trained with.
    run = cross_dataset.run_config(last)
    section = (run.data.get('test_sources') or {}).get('test')
    test = copy.deepcopy(run)
    test.data = eval_data_config(run.data, section)
    preds[model] = {}
    for key, cfg, split in (('validation', run, run.data.eval_split),
                            ('test', test, (section or {}).get('split', 'test'))):
      p, lab, _ = cross_dataset.predict(cfg, variables, split)
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
