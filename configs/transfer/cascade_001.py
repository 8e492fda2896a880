"""001 (Ng et al. 2015): cascade fine-tuning ImageNet -> FER-2013 -> EmotiW.

  python launch/train.py --config=configs/transfer/cascade_001.py:cascade,alexnet \
      --workdir=/tmp/cascade

Arguments (comma-separated, any order):
  method  cascade  FER-2013 (FER28: train / PublicTest) then SFEW, the whole
                   net carried on, classifier included (default; stages
                   0_fer and 1_sfew)
          direct   SFEW only, from the ImageNet start
          combined their FER32+EmotiW: one stage on FER-2013 train +
                   PublicTest + SFEW train mixed (grain mixture, weights
                   'size': the plain concatenation; FER-2013 unaligned, SFEW
                   eye-aligned), validated on SFEW (stage 'combined')
  model   alexnet (Caffe AlexNet with LRN, 227x227; default) or vgg_cnn_m
          (VGG-CNN-M-2048, 224x224)
  data    synthetic (fer2013_like -> sfew_like; default) or real (the fer2013
          and sfew adapters; give --config.data.source.manual_dir and the
          stage's 'data.source' via --config.stages, or edit REAL below; SFEW
          has no landmarks: the eye-aligned crop takes the face detector's
          eyes, fer_jax/face/detect.py, and a face without two eyes is a bad
          record)
  reduced small_cnn on 48x48 gray crops, a few hundred steps: the CPU variant
          the tests run
  caffe   Caffe's input values (0-255 pixels minus the ImageNet mean:
          mean_std(0.45, 0.00392), 0.00392 = 1/255) in place of the [0, 1]
          min-max stretch; with the Caffe ImageNet weights below

The paper's recipe: SGD momentum 0.9, weight decay 5e-4, lr 1e-3 divided by 10
every 10 epochs; EmotiW faces eye-aligned (0.62 / 0.9 / 1.35 x eye distance),
gray, 256x256, min-max stretched; FER-2013 not aligned (48x48 upsampled). The
network input is the model's (227 / 224): we resize the 256 crop to it, where
Caffe took random / centre crops of 227 from 256 (not done here). The paper
gives no epoch count: 30 per stage (three lr drops). ImageNet weights (the
paper's): --config.init.caffe=bvlc_alexnet.caffemodel (alexnet) or
VGG_CNN_M_2048.caffemodel (vgg_cnn_m) with --config.init.head=reinit (a new
fc8; fc6/fc7 load); Caffe's nets saw 0-255 pixels minus the ImageNet mean, so
also give the argument `caffe`.
Or --config.init.torchvision (no LRN: model 'alexnet'), or a random start.
"""
import copy

from configs import common

SYNTHETIC = dict(fer=dict(name='synthetic', source=dict(preset='fer2013_like')),
                 small=dict(name='synthetic', source=dict(preset='sfew_like')))
REAL = dict(fer=dict(name='fer2013', source=dict(manual_dir='')),
            small=dict(name='sfew', source=dict(manual_dir='')))
MODELS = dict(alexnet=('alexnet_lrn', 227), vgg_cnn_m=('vgg_cnn_m_2048', 224))
METHODS = ('cascade', 'direct', 'combined')
# Preprocessing (fer_jax/data/pp.py): FER-2013 unaligned (48 px upsampled),
# SFEW eye-aligned; both gray, flipped, min-max stretched to [0, 1].
FER_PP = 'gray|resize({size})|flip_lr|{values}'
SFEW_PP = 'crop_eyes({size})|gray|resize({size})|flip_lr|{values}'


def _data(section, pp):
  return {'data.name': section['name'], 'data.source': dict(section['source']),
          **common.pp_fields(pp)}


def get_config(arg: str = ''):
  arg = common.parse_arg(arg, method=METHODS, model=tuple(MODELS),
                         data=('synthetic', 'real'), reduced=False,
                         caffe=False)
  method, model, reduced = arg.method, arg.model, arg.reduced
  values = 'mean_std(0.45, 0.00392)' if arg.caffe else 'minmax'
  real = arg.data == 'real'
  sets = REAL if real else SYNTHETIC

  c = common.base_config()
  name, size = MODELS[model]
  c.model = dict(name=name, head='classification', dropout=0.5)
  c.task.name = 'affect'
  c.task.targets = ('expression',)
  c.batch_size = 64
  c.num_epochs = 30
  c.optim = dict(name='sgd', learning_rate=1e-3, momentum=0.9,
                 weight_decay=5e-4)
  c.schedule = dict(name='step', every_epochs=10, factor=0.1)
  epochs = dict(num_epochs=30)
  if reduced:
    size = 48
    c.model = dict(name='small_cnn', widths=(16, 32, 64), hidden=128)
    c.batch_size = 32
    c.optim = dict(name='sgd', learning_rate=1e-2, momentum=0.9,
                   weight_decay=5e-4)
    c.schedule = dict(name='constant')
    c.log_every_steps = 50
    c.eval_every_steps = c.checkpoint_every_steps = 150
    c.progress = False
    c.data.eval_records = 400
  common.set_pp(c, FER_PP.format(size=size, values=values))
  fer = {**_data(sets['fer'], FER_PP.format(size=size, values=values)), **epochs}
  small = {**_data(sets['small'], SFEW_PP.format(size=size, values=values)),
           **epochs}
  if reduced:  # 1 epoch of FER-2013-like (897 steps) at 1e-2, then 8 of
    # SFEW-like (240) at the paper's fine-tuning lr, in both methods.
    fer.update({'num_epochs': 1})
    small.update({'num_epochs': 8, 'optim.learning_rate': 1e-3})
  if method == 'cascade':
    # FER-2013 and SFEW share the 7 classes, so the SFEW stage continues the
    # FER-2013 net, classifier included (the paper's FER-only models already
    # classify SFEW faces; only the ImageNet start needs a new fc8).
    c.stages = (dict(name='fer', **fer), dict(name='sfew', **small))
  elif method == 'combined':  # FER32 + EmotiW, one stage, validated on SFEW
    c.data.mixture = _combined(sets)
    combined = {**small, 'num_epochs': 30}
    if reduced:  # one pass over the combined set at the FER stage's lr
      combined.update({'num_epochs': 1, 'optim.learning_rate': 1e-2})
    c.stages = (dict(name='combined', **combined),)
  else:  # direct
    c.stages = (dict(name='sfew', **small),)
  return c


def _combined(sets):
  """FER32 (FER-2013 Training + PublicTest) + EmotiW (SFEW train) as mixture
  entries weighted by their sizes; FER-2013 unaligned, SFEW eye-aligned."""
  fer, small = sets['fer'], sets['small']
  labels = {} if sets is SYNTHETIC else {'labels': ('expression',)}
  return [dict(name=fer['name'], source=copy.deepcopy(fer['source']),
               split=split, crop='none', weight='size', **labels)
          for split in ('train', 'validation')] + [
              dict(name=small['name'], source=copy.deepcopy(small['source']),
                   split='train', crop='eyes', weight='size', **labels)]
