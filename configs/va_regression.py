"""Valence/arousal regression on the synthetic AffectNet-like preset.

The README's main job: a small CNN with a joint 2-output regression head (002's
head) plus the 7-way expression head, trained for a few minutes on a CPU.
`--config.data.pp='rgb|resize(224)|flip_lr|unit' --config.data.image_size=224
--config.model.name=vgg11_bn` etc. scale it up (data.pp and the fields it
implies change together).
"""
from configs import common


def get_config():
  c = common.base_config()
  c.data.source.preset = 'affectnet_like'
  common.set_pp(c, 'rgb|resize(48)|flip_lr|unit')
  c.data.eval_records = 2000
  c.model = dict(name='small_cnn', widths=(16, 32, 64), hidden=64)
  c.batch_size = 32
  c.total_steps = 1500
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 250
  c.task.targets = ('valence', 'arousal', 'expression')
  c.optim = dict(name='adam', learning_rate=2e-3)
  c.schedule = dict(name='cosine', warmup_steps=50)
  return c
