"""002 (Ulloa Rodriguez): joint valence + arousal regression, 5-fold CV.

  python launch/train.py --config=configs/transfer/ulloa_002.py:resnet152,afew_va,real \
      --config.data.source.manual_dir=/data/AFEW-VA \
      --config.init.torchvision=resnet152.pth --workdir=/tmp/u002_r152_afew
  python launch/report.py --paper=002 --workdir=/tmp/u002   # every run + tables

Arguments (comma-separated):
  vgg11_bn (default) | resnet152   the fine-tuned ImageNet network
  afew_va (default) | semaine      the dataset (AFEW-VA in the wild, SEMAINE lab)
  real                             the distributor's files (fer_jax/data/adapters)
                                   instead of the synthetic afew_va_like /
                                   semaine_like presets
  reduced                          small_cnn at 48 px, a few hundred steps, 2 folds:
                                   the CPU version of the protocol

As the thesis trains them: 224x224 RGB landmark-box crops (68 points),
normalised with mean 0.5 / std 0.5; two linear outputs (valence, arousal), MSE;
SGD lr 1e-3 momentum 0.9; VGG11-BN batch 20 for 190 epochs, ResNet152 batch 50
for 100 epochs (the thesis stopped "at convergence" and reports these epoch
counts); 5-fold cross-validation with whole clips in one fold
(`config.kfold`, run by launch/train.py); RMSE, PCC, ICC (eq. 5.3) and CCC per
dimension. launch/report.py adds the cross-dataset table (train on one dataset,
test on the other; the thesis' Table 4).

Label units: the adapters and the synthetic presets give VA in [-1, 1]
(AFEW-VA's integers in [-10, 10] are divided by 10); RMSE is reported in each
dataset's own units by launch/report.py (x10 for AFEW-VA), as in the thesis.

Departures: the thesis evaluates on each fold's validation part only; we do the
same (no separate test split is reported for the CV tables). The thesis gives no
augmentation; we use none. ImageNet weights come from `config.init.torchvision`
(a torchvision state dict on disk; without it the net starts from random).
"""
import ml_collections

from configs import common

MODELS = {
    'vgg11_bn': dict(batch_size=20, num_epochs=190),
    'resnet152': dict(batch_size=50, num_epochs=100),
}
# name -> (synthetic preset, real adapter, label range of the distributor's files)
DATASETS = {
    'afew_va': ('afew_va_like', 'afew_va', 10.0),
    'semaine': ('semaine_like', 'semaine', 1.0),
}


def data_section(dataset: str, real: bool) -> ml_collections.ConfigDict:
  """The part of config.data naming where the frames come from."""
  preset, adapter, _ = DATASETS[dataset]
  d = ml_collections.ConfigDict()
  if real:
    d.name = adapter
    d.source = ml_collections.ConfigDict({'manual_dir': ''})
  else:
    d.name = 'synthetic'
    d.source = ml_collections.ConfigDict({'preset': preset, 'seed': 0})
  return d


def get_config(arg: str = ''):
  arg = common.parse_arg(arg, model=tuple(MODELS), dataset=tuple(DATASETS),
                         real=False, reduced=False)
  model, dataset, real, reduced = arg.model, arg.dataset, arg.real, arg.reduced
  c = common.base_config()
  c.paper = '002'
  c.model = dict(name=model)
  c.data.update(data_section(dataset, real))
  size = 48 if reduced else 224
  common.set_pp(c, f'crop_landmarks({size})|rgb|resize({size})|'
                   'mean_std(0.5, 0.5)')
  c.task = dict(name='affect', targets=('valence', 'arousal'))
  c.batch_size = MODELS[model]['batch_size']
  c.num_epochs = MODELS[model]['num_epochs']
  c.optim = dict(name='sgd', learning_rate=1e-3, momentum=0.9, nesterov=False)
  c.init.head = 'reinit'  # ImageNet's 1000 classes -> 2 regression outputs
  c.best_metric, c.best_mode = 'val/rmse_mean', 'min'
  # Whole clips go to one fold: frames of a clip are near-duplicates.
  # `folds`: which folds to run (default all), e.g. (0,) for a quick look.
  c.kfold = ml_collections.ConfigDict({'num_folds': 5, 'group_by': 'clip',
                                       'folds': ()})
  c.eval_every_steps = c.checkpoint_every_steps = 2000
  if reduced:
    c.model = dict(name='small_cnn', widths=(16, 32, 64), hidden=128)
    c.data.train_records = 3000
    c.data.eval_records = 600
    c.batch_size = 32
    c.num_epochs = 0
    c.total_steps = 400
    c.optim = dict(name='adam', learning_rate=2e-3)
    c.schedule = dict(name='cosine', warmup_steps=20)
    c.kfold.num_folds = 2
    c.progress = False
    c.log_every_steps = 50
    c.eval_every_steps = c.checkpoint_every_steps = 200
  return c
