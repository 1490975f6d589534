"""sweepax: reproducible hyperparameter sweeps of memory-based RL in JAX."""

from sweepax._lazy import defer_plotting_imports

defer_plotting_imports()  # gymnax imports pyplot/seaborn at import time, for rendering only

from sweepax.sweep.values import vmap  # noqa: E402

__all__ = ["vmap"]
__version__ = "0.1.0"
