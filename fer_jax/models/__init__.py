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
