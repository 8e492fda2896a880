"""Tasks: a loss over model outputs and a batch, and the metrics of a report."""
from fer_jax.tasks.registry import TASKS, get_task
from fer_jax.tasks import affect  # noqa: F401  (registers)
from fer_jax.tasks import sjmt  # noqa: F401  (registers 'sjmt', 'classical_multitask')
