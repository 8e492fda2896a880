"""004 (Zaitouny et al.): transfer with freeze-then-unfreeze, one of three nets.

  python launch/train.py --config=configs/transfer/zaitouny_004.py:mobilenet_v2 \
      --workdir=/tmp/z004_mnv2 --config.init.torchvision=mobilenet_v2.pth

Arguments (comma-separated): the model, mobilenet_v2 (default), inception_v3 or
resnet50_v2; `reduced` (small_cnn at 48 px, a few hundred steps, CPU).

Two stages, as the paper trains them:
  frozen    the ImageNet base frozen, the paper's added head (average pool,
            flatten, 3 x [Dense, Dropout, BatchNorm], softmax over 7) trained
            with Adam 1e-4, batch 32, up to 100 epochs; ReduceLROnPlateau
            (factor 0.1) and early stopping on the validation loss, best
            checkpoint by validation loss;
  unfreeze  the last 56 layers of the base unfrozen, Adam 1e-5, 25 epochs,
            best checkpoint only.
Augmentation: rotation +-45 deg, horizontal flips, 20% shifts; gray input
(their second part). Test on the FER-2013-like test split
(`data.test_splits` of the evaluation preset; for real data run
launch/evaluate.py on the fer2013 adapter). The three nets' workdirs combine
with fer_jax/protocols/ensemble.py (rank weights w_i = R(A_i) / sum R).

Departures: Keras' featurewise centring / std normalisation (statistics of the
training set) is a fixed mean/std normalisation here (mean 0.5, std 0.25 of
[0, 1] pixels); training is on AffectNet-like data alone, not KDEF +
AffectNet (one-dataset training; the grain mixture serves the multi-task label
space, not this task yet); no class balancing (the synthetic classes are
drawn with AffectNet's frequencies).
"""
from configs import common

MODELS = dict(mobilenet_v2=224, inception_v3=299, resnet50_v2=224)


def get_config(arg: str = ''):
  args = [a for a in arg.split(',') if a]
  model = next((a for a in args if a in MODELS), 'mobilenet_v2')
  unknown = set(args) - set(MODELS) - {'reduced'}
  if unknown:
    raise ValueError(f'Unknown arguments {sorted(unknown)}; valid: '
                     f'{sorted(MODELS)} and reduced.')
  reduced = 'reduced' in args

  c = common.base_config()
  c.model = dict(name=model, head='zaitouny', dropout=0.5)
  if model == 'inception_v3':
    c.model.aux_logits = False
  c.data.source = dict(preset='affectnet_like')
  c.data.image_size = MODELS[model]
  c.data.channels = 1
  c.data.normalize = 'mean_std'
  c.data.mean, c.data.std = 0.5, 0.25
  c.data.augment = dict(hflip=True, rotation=45.0, shift=0.2, pad_crop=0)
  c.data.test_splits = ('test',)
  c.task.targets = ('expression',)
  c.batch_size = 32
  c.optim = dict(name='adam', learning_rate=1e-4)
  c.best_metric, c.best_mode = 'val/loss', 'min'
  c.callbacks = dict(
      early_stopping=dict(patience=5, restore_best=True),
      reduce_on_plateau=dict(factor=0.1, patience=3, min_lr=1e-6))
  frozen = dict(name='frozen', trainable='head', num_epochs=100)
  unfreeze = {'name': 'unfreeze', 'trainable': 'last:56', 'num_epochs': 25,
              'optim.learning_rate': 1e-5, 'callbacks': {}}
  if reduced:
    c.model = dict(name='small_cnn', widths=(16, 32, 64), hidden=128,
                   dropout=0.5)
    c.data.image_size = 48
    c.data.train_records, c.data.eval_records = 4000, 400
    c.progress = False
    c.log_every_steps = c.eval_every_steps = c.checkpoint_every_steps = 25
    c.callbacks.early_stopping.patience = 3
    c.callbacks.reduce_on_plateau.patience = 2
    # The small net is not pre-trained: its "base" learns in a first stage.
    c.stages = (dict(name='base', trainable='all', num_epochs=2,
                     **{'optim.learning_rate': 2e-3}),
                dict(frozen, num_epochs=2),
                dict(unfreeze, trainable='last:2', num_epochs=1))
  else:
    c.stages = (frozen, unfreeze)
  return c
