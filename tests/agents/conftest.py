"""Shared checks of the agents' tests."""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import PPOStatic, TrainMetrics

# The agents' tests' tiny run: 3 PPO updates of 4 tmaze_3 envs x 16 steps, hidden 8, 2 epochs of 2
# minibatches. One config for every test: the same static config is the same compiled programs,
# which the session's compilation cache (tests/conftest.py) compiles once.
TINY = {
    "env": "tmaze_3",
    "hidden_size": 8,
    "num_envs": 4,
    "num_steps": 16,
    "total_steps": 16 * 4 * 3,
    "update_epochs": 2,
    "num_minibatches": 2,
    "eval_steps": 40,
    "action_concat": True,
}


def assert_cells_equal_separate_runs(
    train: tp.Callable, out: TrainMetrics, sweeps: tp.Sequence, seeds: jax.Array,
    seed_indices: tp.Sequence[int], rtol: float = 1e-5, atol: float = 1e-6,
) -> None:  # fmt: skip
    """Every [config, seed] cell of a vmapped ``out`` equals ``train`` run alone on that cell."""
    single = jax.jit(train)
    for c, sweep in enumerate(sweeps):
        for s in seed_indices:
            alone = single(jax.tree.map(jnp.float32, sweep), seeds[s])
            for name in TrainMetrics._fields:
                np.testing.assert_allclose(
                    np.asarray(getattr(alone, name)),
                    np.asarray(getattr(out, name)[c, s]),
                    rtol=rtol,
                    atol=atol,
                    equal_nan=True,
                    err_msg=f"{name} config {c} seed {int(seeds[s])}",
                )


@pytest.fixture(scope="session")
def tiny() -> tp.Callable[..., PPOStatic]:
    """``tiny(**changes)``: the tiny static config (``TINY``) with changes;
    ``tiny(TransformerStatic, embed_size=8, ...)``: another entry's static class."""

    def make(cls: type = PPOStatic, /, **changes: tp.Any) -> tp.Any:
        return cls(**{**TINY, **changes})

    return make


@pytest.fixture
def cells_equal_separate_runs() -> tp.Callable:
    """The check that a vmapped [config, seed] output equals separate runs."""
    return assert_cells_equal_separate_runs
