"""GAE by reverse ``lax.scan`` equals a plain Python-loop reference."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from sweepax.agents.gae import gae


def _gae_reference(rewards, values, dones, last_value, gamma, lam):
    """Textbook GAE, one step at a time (float64)."""
    num_steps, num_envs = rewards.shape
    adv = np.zeros((num_steps, num_envs))
    running = np.zeros(num_envs)
    for t in reversed(range(num_steps)):
        next_value = last_value if t == num_steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * not_done - values[t]
        running = delta + gamma * lam * not_done * running
        adv[t] = running
    return adv, adv + values


@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.97, 0.5)])
def test_gae_scan_matches_python_loop_on_random_data(gamma: float, lam: float) -> None:
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(37, 5)).astype(np.float32)
    values = rng.normal(size=(37, 5)).astype(np.float32)
    dones = rng.random((37, 5)) < 0.15
    last_value = rng.normal(size=5).astype(np.float32)
    adv, targets = jax.jit(gae)(rewards, values, dones, last_value, gamma, lam)
    ref_adv, ref_targets = _gae_reference(
        rewards.astype(np.float64),
        values.astype(np.float64),
        dones.astype(np.float64),
        last_value.astype(np.float64),
        gamma,
        lam,
    )
    assert adv.shape == targets.shape == (37, 5)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets, ref_targets, rtol=1e-5, atol=1e-5)


def test_gae_done_blocks_bootstrap_and_propagation() -> None:
    rewards = np.array([[1.0], [2.0], [3.0]], np.float32)
    values = np.zeros((3, 1), np.float32)
    dones = np.array([[False], [True], [False]])
    adv, _ = gae(rewards, values, dones, np.array([10.0], np.float32), 0.5, 1.0)
    # t=2: 3 + 0.5 * 10; t=1: episode ends, only its reward; t=0: 1 + 0.5 * 2.
    np.testing.assert_allclose(np.asarray(adv)[:, 0], [2.0, 2.0, 8.0])
