"""Model zoo. Each family registers itself in MODELS on import.

Contract shared by every model (see models/small_cnn.py for the smallest one):
  * `__call__(x, train=False)` maps NHWC images to the head's outputs;
  * parameters (and batch statistics) live under two top-level names,
    'features' (the backbone) and 'head' (what a new task replaces);
  * `embed(x, train)` returns the features' output and `predict_head(f, train)`
    applies the head to it, so protocols can cache features once;
  * dropout draws from the 'dropout' rng, BatchNorm keeps 'batch_stats'.
"""
from fer_jax.models.registry import MODELS, get_model
from fer_jax.models import small_cnn  # noqa: F401  (registers)
from fer_jax.models import alexnet  # noqa: F401  (registers)
from fer_jax.models import vgg  # noqa: F401  (registers)
from fer_jax.models import resnet  # noqa: F401  (registers)
from fer_jax.models import resnet_v2  # noqa: F401  (registers)
from fer_jax.models import mobilenet_v2  # noqa: F401  (registers)
from fer_jax.models import inception_v3  # noqa: F401  (registers)
from fer_jax.models import mini_xception  # noqa: F401  (registers)
