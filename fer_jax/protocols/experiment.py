"""One config's run, whatever its shape: k-fold cross-validation (a config with
`kfold.num_folds` > 1), stages in turn (`stages`), or one training.

    results, path = experiment.run(config, workdir)   # resumes where it stopped
    print('\n'.join(experiment.scalar_lines(results)))

Every shape validates its config(s) before any data is read or anything is
written, and resumes from the newest checkpoint when run again.
"""
import os
from typing import Dict, List, Tuple

from fer_jax.protocols import kfold_cv
from fer_jax.train import loop
from fer_jax.train import stages
from fer_jax.train.workdir import validate_config


def run(config, workdir: str) -> Tuple[Dict[str, object], str]:
  """Trains and evaluates; returns the results and the file that holds them
  all (the mean over folds for k-fold; `<stage>/<metric>` for stages)."""
  if kfold_cv.num_folds(config) > 1:  # validates before the folds
    results = kfold_cv.run_from_config(config, workdir)['mean']
    return results, os.path.join(workdir, 'kfold_results.json')
  if config.get('stages'):
    by_stage = stages.run_stages(config, workdir)  # validates every stage
    results = {f'{name}/{k}': v for name, r in by_stage.items()
               for k, v in r.items()}
  else:
    validate_config(config, check_files=False)  # before any data is read
    results = loop.train_and_evaluate(config, workdir)
  return results, os.path.join(workdir, 'results.json')


def scalar_lines(results: Dict[str, object]) -> List[str]:
  """`key  value` for the scalar results, sorted (the confusion matrix and
  the rest stay in the results file)."""
  scalars = {k: v for k, v in results.items() if isinstance(v, (int, float))}
  width = max((len(k) for k in scalars), default=0)
  return [f'{k:<{width}}  {v:.4f}' if isinstance(v, float) else
          f'{k:<{width}}  {v}' for k, v in sorted(scalars.items())]
