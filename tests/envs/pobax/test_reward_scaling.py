"""RockSample's reward scaling on the agent side (POBAX's ``NormalizeVecReward``): the running
statistics by hand, and PPO learning from scaled rewards while reporting unscaled returns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import PPOStatic, PPOSweep
from sweepax.agents.ppo import RewardStats, make_trainer
from sweepax.envs import registry


def _reference(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Scaled rewards (steps, envs), float64: every discounted return so far, all envs, pooled
    with POBAX's prior (mean 0, variance 1, weight 1e-4)."""
    running = np.zeros(rewards.shape[1])
    seen: list[np.ndarray] = []
    out = []
    for reward, done in zip(rewards, dones, strict=True):
        running = running * gamma * (1 - done) + reward
        seen.append(running)
        pooled = np.concatenate(seen)
        n, prior = len(pooled), 1e-4
        mean = pooled.sum() / (n + prior)
        # pooled second moment about the mean, prior variance 1 at mean 0
        m2 = np.square(pooled - pooled.mean()).sum() + prior * 1.0
        m2 += np.square(pooled.mean()) * prior * n / (n + prior)
        out.append(reward / np.sqrt(m2 / (n + prior) + 1e-8))
        assert np.isfinite(mean)
    return np.asarray(out)


def test_reward_stats_scale_by_the_pooled_std_of_discounted_returns() -> None:
    rng = np.random.default_rng(0)
    rewards = rng.choice([0.0, 10.0, -10.0], size=(50, 4), p=[0.8, 0.1, 0.1]).astype(np.float32)
    dones = rng.random((50, 4)) < 0.1
    stats = RewardStats.empty(4)
    scaled = []
    for reward, done in zip(rewards, dones, strict=True):
        stats, s = stats.update(jnp.asarray(reward), jnp.asarray(done), 0.9)
        scaled.append(np.asarray(s))
    np.testing.assert_allclose(np.asarray(scaled), _reference(rewards, dones, 0.9), rtol=2e-5)
    assert float(stats.count) == pytest.approx(200.0001)


def test_ppo_learns_rocksample_from_scaled_rewards_and_reports_them_unscaled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    static = PPOStatic(
        env="rocksample_5_5",
        memoryless=True,
        hidden_size=16,
        num_envs=4,
        num_steps=32,
        total_steps=1024,
        num_minibatches=2,
        gamma=0.9,
    )
    trainer = make_trainer(static)
    runner = jax.jit(trainer.init)(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    rollout = jax.jit(trainer.rollout, static_argnums=(3,))
    loop, traj = rollout(runner.params, runner.loop, jax.random.PRNGKey(1), 400)
    # the same rollout without scaling (the policy does not see rewards): the raw rewards
    made = registry.make

    def unscaled(*args, **kwargs):
        env, params = made(*args, **kwargs)
        env.normalize_reward = False
        return env, params

    monkeypatch.setattr(registry, "make", unscaled)
    plain = make_trainer(static)
    start = runner.loop._replace(reward_stats=None)
    _, raw = jax.jit(plain.rollout, static_argnums=(3,))(
        runner.params, start, jax.random.PRNGKey(1), 400
    )
    np.testing.assert_array_equal(raw.action, traj.action)
    rewards, dones = np.asarray(raw.reward), np.asarray(raw.done)
    assert set(np.unique(rewards)) >= {0.0, 10.0, -10.0}  # samples, exits
    np.testing.assert_allclose(traj.reward, _reference(rewards, dones, 0.9), rtol=2e-5)
    # returns are reported unscaled
    np.testing.assert_array_equal(traj.ended_return, raw.ended_return)
    assert float(loop.reward_stats.count) == pytest.approx(1600.0001)


def test_rocksample_evaluates_on_as_many_envs_as_asked_not_num_envs() -> None:
    """POBAX's best RockSample files train 8 envs and evaluate 10 (``num_eval_envs``); the
    evaluation keeps its own reward statistics, one running return per evaluation env."""
    static = PPOStatic(
        env="rocksample_5_5",
        memoryless=True,
        hidden_size=16,
        num_envs=4,
        num_eval_envs=3,
        num_steps=16,
        total_steps=128,
        num_minibatches=2,
        eval_steps=200,
    )
    trainer = make_trainer(static)
    metrics = jax.jit(trainer.train)(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    assert int(metrics.final_episodes) > 0
    assert np.isfinite(float(metrics.final_return))


POBAX_SCALES = """
import json, sys
import jax.numpy as jnp
from pobax.envs.wrappers.gymnax import NormalizeVecReward

rewards, dones, gamma = json.load(sys.stdin)


class Replay:  # a batch of envs that returns the given rewards and dones
    def reset(self, key, params=None):
        return jnp.zeros((len(rewards[0]), 1)), 0

    def step(self, key, t, action, params=None):
        obs = jnp.zeros((len(rewards[0]), 1))
        return obs, t + 1, jnp.asarray(rewards[t]), jnp.asarray(dones[t]), {}


env = NormalizeVecReward(Replay(), gamma)
_, state = env.reset(None)
out = []
for _ in rewards:
    _, state, scaled, _, _ = env.step(None, state, None)
    out.append([float(x) for x in scaled])
print(json.dumps(out))
"""


@pytest.mark.pobax
def test_reward_stats_agree_with_pobax_s_normalize_vec_reward(pobax_python: str) -> None:
    root = Path(__file__).resolve().parents[3]
    python = pobax_python
    rng = np.random.default_rng(1)
    rewards = rng.choice([0.0, 10.0, -10.0], size=(300, 8), p=[0.8, 0.1, 0.1]).astype(np.float32)
    dones = rng.random((300, 8)) < 0.05
    request = json.dumps([rewards.tolist(), dones.tolist(), 0.99])
    ran = subprocess.run(
        [python, "-c", POBAX_SCALES], input=request, capture_output=True, text=True,
        cwd=root / "build",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    theirs = np.asarray(json.loads(ran.stdout.strip().splitlines()[-1]), np.float32)
    stats, ours = RewardStats.empty(8), []
    for reward, done_t in zip(rewards, dones, strict=True):
        stats, scaled = stats.update(jnp.asarray(reward), jnp.asarray(done_t), 0.99)
        ours.append(np.asarray(scaled))
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-6)
    print(f"reward scaling: {rewards.size} rewards agree with POBAX's NormalizeVecReward")
