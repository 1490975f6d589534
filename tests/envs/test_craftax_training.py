"""PPO trains on POBAX's Craftax ids: the pixel ids through the CNN encoder pixel MuJoCo uses.

Compiles craftax's step inside PPO (a minute or more each): ``nox -s craftax_tests`` (pytest -m
craftax), not in the default suite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import PPOStatic, PPOSweep
from sweepax.agents.ppo import make_sweep_fn, make_trainer

pytestmark = pytest.mark.craftax


def test_ppo_trains_a_few_updates_on_craftax_classic_pixels_through_the_cnn() -> None:
    static = PPOStatic(
        env="craftax_classic_pixels", num_envs=2, num_steps=8, total_steps=32,
        num_minibatches=1, update_epochs=1, hidden_size=16, eval_steps=8, num_eval_envs=2,
    )  # fmt: skip
    trainer = make_trainer(static)
    assert (trainer.gamma, trainer.gamma_source) == (0.99, "sweep")  # Craftax has no gamma
    runner = trainer.init(PPOSweep(), jnp.asarray(0))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(runner)]
    assert any("'cnn'" in p for p in paths)  # the image goes through the CNN encoder
    sweep = jax.tree.map(lambda x: jnp.asarray([x]), PPOSweep())
    metrics = make_sweep_fn(static)(sweep, jnp.asarray([0]))
    assert metrics.loss_total.shape == (1, 1, static.num_updates)
    assert np.all(np.isfinite(np.asarray(metrics.loss_total)))
