"""Pieces shared by every experiment config."""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """The defaults every run has; experiment configs override what they need."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.batch_size = 64
  c.num_epochs = 10
  c.total_steps = 0           # > 0 overrides num_epochs
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  c.best_metric = ''          # '' = the task's primary metric
  c.best_mode = ''
  c.bf16 = False              # bfloat16 compute, float32 parameters
  c.progress = True
  c.trainable = 'all'         # see fer_jax.models.partition.trainable_mask
  # Starting weights (fer_jax/train/init.py): a fer_jax workdir's checkpoint,
  # or a torchvision / Keras / Caffe file; head 'keep' or 'reinit'.
  c.init = ml_collections.ConfigDict({'workdir': '', 'checkpoint': 'best',
                                      'torchvision': '', 'keras': '',
                                      'caffe': '', 'head': 'keep'})

  c.data = ml_collections.ConfigDict()
  c.data.name = 'synthetic'
  c.data.source = ml_collections.ConfigDict({'preset': 'affectnet_like', 'seed': 0})
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.test_splits = ()
  c.data.image_size = 64
  c.data.channels = 3
  c.data.crop = 'none'
  c.data.normalize = 'unit'
  c.data.mean = 0.5
  c.data.std = 0.5
  c.data.augment = ml_collections.ConfigDict(
      {'hflip': False, 'rotation': 0.0, 'shift': 0.0, 'pad_crop': 0})
  c.data.num_threads = 4
  c.data.train_records = 0    # > 0: use only the first N records (quick runs)
  c.data.eval_records = 0

  c.model = ml_collections.ConfigDict({'name': 'small_cnn'})
  c.task = ml_collections.ConfigDict({'name': 'affect',
                                      'targets': ('valence', 'arousal')})
  c.optim = ml_collections.ConfigDict({'name': 'sgd', 'learning_rate': 1e-3,
                                       'momentum': 0.9, 'nesterov': True})
  c.schedule = ml_collections.ConfigDict({'name': 'constant'})
  # early_stopping / reduce_on_plateau sections, see fer_jax/train/callbacks.py
  c.callbacks = ml_collections.ConfigDict()
  # Chained stages (cascades, freeze-then-unfreeze): fer_jax/train/stages.py.
  c.stages = ()
  return c
