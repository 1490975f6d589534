"""sweepax: reproducible hyperparameter sweeps of memory-based RL in JAX."""

from sweepax.sweep.values import vmap

__all__ = ["vmap"]
__version__ = "0.1.0"
