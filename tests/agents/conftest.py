"""Shared checks of the agents' tests."""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import TrainMetrics


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


@pytest.fixture
def cells_equal_separate_runs() -> tp.Callable:
    """The check that a vmapped [config, seed] output equals separate runs."""
    return assert_cells_equal_separate_runs
