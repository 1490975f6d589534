"""The test session's compile settings (tests/conftest.py) are in force: the suite's speed rests
on them."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from sweepax.agents.config import PPOStatic


def _program() -> jax.stages.Wrapped:
    """A new jitted function object each call, the same program each time."""

    def odd_affine(x: jax.Array) -> jax.Array:
        return jnp.sin(x) * 3.25 + 0.8125

    return jax.jit(odd_affine)


def test_a_program_compiled_by_one_test_is_loaded_by_the_next(jax_cache_dir) -> None:
    events: list[str] = []

    def listen(event: str, **_: object) -> None:
        events.append(event)

    x = jnp.asarray(np.arange(5, dtype=np.float32))  # a transfer, no program
    jax.monitoring.register_event_listener(listen)
    try:
        first = np.asarray(_program()(x))
        assert events.count("/jax/compilation_cache/cache_misses") == 1
        assert any(jax_cache_dir.iterdir())  # written to the session's folder
        events.clear()
        second = np.asarray(_program()(x))  # a new function object: not in jit's memory cache
    finally:
        jax.monitoring.unregister_event_listener(listen)
    assert events.count("/jax/compilation_cache/cache_hits") == 1
    assert "/jax/compilation_cache/cache_misses" not in events
    np.testing.assert_array_equal(first, second)


def test_training_subprocesses_share_the_session_cache_and_compile_fast(jax_cache_dir) -> None:
    assert os.environ["SWEEPAX_JAX_CACHE"] == str(jax_cache_dir)
    assert "--xla_backend_optimization_level" in os.environ["XLA_FLAGS"]
    assert jax.config.jax_compilation_cache_dir == str(jax_cache_dir)
    assert PPOStatic  # the project imports under these settings
