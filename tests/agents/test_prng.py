"""Training programs draw their random bits with threefry unrolled on CPU: the same bits as
JAX's own lowering (values recorded from it), from straight-line code."""

from __future__ import annotations

import jax
import numpy as np

from sweepax.agents import ppo  # noqa: F401  (importing PPO registers the lowering)
from sweepax.agents.prng import unroll_threefry_on_cpu


def test_threefry_on_cpu_is_unrolled_and_draws_jax_s_bits() -> None:
    assert unroll_threefry_on_cpu()
    split = jax.jit(lambda k: jax.random.key_data(jax.random.split(k, 3)))
    uniform = jax.jit(lambda k: jax.random.uniform(k, (4,)))
    # Recorded with JAX's default (rolled-loop) CPU lowering.
    np.testing.assert_array_equal(
        split(jax.random.PRNGKey(2024)),
        [[1982900149, 1742385569], [3049174127, 2820703232], [2144031507, 2801530850]],
    )
    np.testing.assert_array_equal(
        uniform(jax.random.PRNGKey(7)),
        np.array([0.6740899085998535, 0.9746168851852417, 0.3028435707092285, 0.4439585208892822],
                 np.float32),
    )  # fmt: skip
    assert "while" not in split.lower(jax.random.PRNGKey(0)).compile().as_text()
