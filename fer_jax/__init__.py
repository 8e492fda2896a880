"""fer_jax: facial emotion recognition methods in JAX/Flax."""
