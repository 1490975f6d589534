"""Shared fixtures of the launch tests."""

from __future__ import annotations

import textwrap

import pytest

TINY_SWEEP = """
from sweepax import vmap
hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{
        "env": "tmaze_5", "hidden_size": [8, 16], "lr": vmap([1e-3, 3e-3]),
        "total_steps": 1024, "num_steps": 32, "num_envs": 4, "eval_steps": 32,
        "seed": 3, "n_seeds": 2,
    }],
}
"""


@pytest.fixture
def tiny_sweep() -> str:
    """A sweep file of 2 tiny tmaze_5 tasks (hidden 8 and 16) x 2 vmapped lrs x 2 seeds."""
    return textwrap.dedent(TINY_SWEEP)
