"""Battleship's action mask on the agent side (as POBAX): PPO never fires at a cell twice, and its
network sees the hit flag only; PPO refuses normalize_obs for it."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import PPOStatic, PPOSweep
from sweepax.agents.ppo import MASKED_LOGIT, ActionMasked, make_train, make_trainer
from sweepax.envs import registry
from sweepax.errors import UserError

STATIC = PPOStatic(
    env="battleship_3",
    memoryless=True,
    hidden_size=16,
    num_envs=4,
    num_steps=32,
    total_steps=1024,
    update_epochs=1,
    num_minibatches=2,
    eval_steps=32,
)


def test_ppo_never_fires_at_a_cell_twice_on_battleship() -> None:
    trainer = make_trainer(STATIC)
    runner = jax.jit(trainer.init)(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    # the first Dense layer reads one input: the hit flag (the 9 mask entries are cut out)
    kernels = [
        leaf.shape
        for path, leaf in jax.tree_util.tree_flatten_with_path(runner.params)[0]
        if "kernel" in jax.tree_util.keystr(path)
    ]
    assert (1, STATIC.hidden_size) in kernels and not any(k[0] == 10 for k in kernels)
    _, traj = jax.jit(trainer.rollout, static_argnums=(3,))(
        runner.params, runner.loop, jax.random.PRNGKey(1), 200
    )
    obs, action = np.asarray(traj.obs), np.asarray(traj.action)  # (200, 4, 10), (200, 4)
    allowed = np.take_along_axis(obs[..., 1:], action[..., None], -1)[..., 0]
    assert (allowed == 1.0).all()  # every shot at a cell never fired at
    done = np.asarray(traj.done)
    assert done.sum() >= 4 * 10  # many whole games
    # a game of 9 cells lasts at most 9 shots
    for env in range(4):
        ends = np.flatnonzero(done[:, env])
        assert np.diff(np.concatenate([[-1], ends])).max() <= 9


def test_without_the_mask_the_same_policy_fires_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    made = registry.make

    def unmasked(*args, **kwargs):
        env, params = made(*args, **kwargs)
        env.action_mask_dims = None
        return env, params

    monkeypatch.setattr(registry, "make", unmasked)
    trainer = make_trainer(STATIC)
    runner = jax.jit(trainer.init)(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    _, traj = jax.jit(trainer.rollout, static_argnums=(3,))(
        runner.params, runner.loop, jax.random.PRNGKey(1), 200
    )
    obs, action = np.asarray(traj.obs), np.asarray(traj.action)
    allowed = np.take_along_axis(obs[..., 1:], action[..., None], -1)[..., 0]
    assert (allowed == 0.0).mean() > 0.2  # many repeated shots


def test_masked_logits_are_pobax_s_and_unmasked_actions_keep_theirs() -> None:
    class Net:
        def apply(self, params, hidden, x):
            obs, _ = x
            assert obs.shape[-1] == 2  # the mask's 3 entries cut out of 5
            return hidden, jnp.array([0.5, -2.0, 3.0]), jnp.zeros(())

    masked = ActionMasked(Net(), 1, 4)
    obs = jnp.array([7.0, 1.0, 0.0, 1.0, 9.0])
    _, logits, _ = masked.apply(None, None, (obs, jnp.array(False)))
    np.testing.assert_array_equal(logits, [0.5, MASKED_LOGIT, 3.0])


def test_training_on_battleship_runs_and_refuses_normalize_obs() -> None:
    out = jax.jit(make_train(STATIC))(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    assert np.isfinite(np.asarray(out.loss_total)).all()
    # a game's return is 9 for the last hit, -1 for each other shot: at most 9 shots, so >= 1
    assert float(np.nanmin(np.asarray(out.episode_return))) >= 1.0
    with pytest.raises(UserError, match="normalize_obs"):
        make_trainer(dataclasses.replace(STATIC, normalize_obs=True))
