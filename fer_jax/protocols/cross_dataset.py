"""Evaluates a trained run on another dataset or split (cross-dataset tests).

The run's own config (its `config.json`) rebuilds the model and preprocessing:
image size, channels, normalisation stay those the network was trained with.
Only what names the data to read changes (`data.name`, `data.source`,
`data.crop`, the split, `eval_records`), and the task's `va_scale`.

Label ranges: the network regresses VA in units of its training `va_scale`
(targets are divided by it), so evaluating with the other dataset's `va_scale`
maps predictions into that dataset's range; e.g. a model trained on [-1, 1]
labels evaluated on AFEW-VA with va_scale=10 predicts in [-10, 10] and is
scored against AFEW-VA's own labels.
"""
import copy
import os
from typing import Dict, Optional, Tuple

import ml_collections
import numpy as np

from fer_jax import atomic

# Keys of config.data that name the data rather than how the model sees it.
DATA_KEYS = ('name', 'source', 'crop', 'eval_records')


def eval_config(config, data: Optional[dict] = None, va_scale: Optional[float] = None,
                target: Optional[ml_collections.ConfigDict] = None):
  """The run's config with the data of `target` (another experiment config)
  and/or the `data` overrides (dotted keys under config.data) applied."""
  c = copy.deepcopy(config)
  c.unlock()
  if target is not None:
    for k in DATA_KEYS:
      if k in target.data:
        c.data[k] = copy.deepcopy(target.data[k])
    c.data.eval_split = target.data.eval_split
    c.task.va_scale = target.task.get('va_scale', 1.0)
  for key, value in (data or {}).items():
    node, *path = ['data', *key.split('.')]
    node = c[node]
    for p in path[:-1]:
      node = node[p]
    node[path[-1]] = value
  if va_scale is not None:
    c.task.va_scale = float(va_scale)
  return c


def predict(run, split: str, config=None) -> Tuple[Dict, Dict, float]:
  """(predictions, labels, mean loss) of a trained run (`trained.load_run`) on
  a split of `config`'s data (default: the run's own), padding removed.

  `config` is the run's config with other data (`eval_config`): the model is
  the run's, the task (its `va_scale`) and the data are the config's.
  """
  from fer_jax.data import pipeline
  from fer_jax.data.sources import get_source
  from fer_jax.evaluate.evaluator import Evaluator
  from fer_jax.face import points
  from fer_jax.tasks import get_task
  from fer_jax.train.step import make_predict_fn
  config = run.config if config is None else config
  task = get_task(**config.task)
  source = pipeline.limit(get_source(config.data, split),
                          config.data.get('eval_records', 0))
  prep = pipeline.preprocess_from_config(config.data, name=f'{config.data.name}/{split}',
                                         detector=points.find_points)
  out = Evaluator(make_predict_fn(run.model, task), source, prep,
                  config.get('eval_batch_size', config.batch_size),
                  num_threads=config.data.num_threads).run(run.variables)
  return out.pred, out.labels, out.loss


def evaluate_workdir(workdir: str, out_dir: str, which: str = 'best',
                     split: Optional[str] = None, data: Optional[dict] = None,
                     va_scale: Optional[float] = None, target=None,
                     plots: bool = True) -> dict:
  """Scores a run's checkpoint on (another) dataset; writes out_dir/results.json
  (and scatter.png for VA, confusion_matrix.png for expressions)."""
  from fer_jax.tasks import get_task
  from fer_jax.train.logging import write_json
  from fer_jax.train.trained import load_run
  run = load_run(workdir, which)
  train_config = run.config
  config = eval_config(train_config, data, va_scale, target)
  split = split or config.data.eval_split
  pred, lab, loss = predict(run, split, config)
  task = get_task(**config.task)
  results = {'workdir': os.path.abspath(workdir), 'checkpoint': which, 'step': run.step,
             'dataset': config.data.name, 'source': config.data.source.to_dict()
             if isinstance(config.data.source, ml_collections.ConfigDict)
             else config.data.source, 'split': split, 'num_samples': len(lab['mask']),
             'train_va_scale': train_config.task.get('va_scale', 1.0),
             'eval_va_scale': config.task.get('va_scale', 1.0),
             'loss': loss, **task.report(pred, lab)}
  os.makedirs(out_dir, exist_ok=True)
  write_json(os.path.join(out_dir, 'results.json'), results)
  atomic.savez(os.path.join(out_dir, 'predictions.npz'),
               **{f'pred/{k}': v for k, v in pred.items()},
               **{f'label/{k}': v for k, v in lab.items()})
  if plots:
    _plots(task, pred, lab, results, out_dir)
  return results


def _plots(task, pred, lab, results, out_dir):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  reg = task.regression_targets
  if reg:
    m = lab['has_va'].astype(bool)
    fig, axes = plt.subplots(1, len(reg), figsize=(4 * len(reg), 4), squeeze=False)
    s = task.va_scale
    for ax, t in zip(axes[0], reg):
      ax.scatter(lab[t][m], pred[t][m], s=4, alpha=0.4)
      ax.plot([-s, s], [-s, s], 'k--', lw=1)
      ax.set(xlim=(-s, s), ylim=(-s, s), xlabel=f'true {t}', ylabel=f'predicted {t}',
             title=f"{t}: CCC {results.get(f'{t}/ccc', float('nan')):.3f}, "
                   f"RMSE {results.get(f'{t}/rmse', float('nan')):.3f}")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'scatter.png'), dpi=100)
    plt.close(fig)
  if 'expression/confusion_matrix' in results:
    from fer_jax.data import labels as label_names
    conf = np.asarray(results['expression/confusion_matrix'], np.float64)
    norm = conf / np.maximum(conf.sum(1, keepdims=True), 1)
    names = label_names.EXPRESSIONS
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    for i in range(len(names)):
      for j in range(len(names)):
        ax.text(j, i, f'{int(conf[i, j])}', ha='center', va='center', fontsize=7,
                color='white' if norm[i, j] > 0.5 else 'black')
    ax.set_xticks(range(len(names)), names, rotation=45, ha='right')
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel='predicted', ylabel='true',
           title=f"accuracy {results['expression/accuracy']:.3f}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, 'confusion_matrix.png'), dpi=100)
    plt.close(fig)
