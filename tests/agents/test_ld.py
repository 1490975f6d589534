"""Lambda-discrepancy (double critic): hand-computed loss, per-head lambda, vmapped sweep."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import PPOSweep
from sweepax.agents.ppo import Transition, make_sweep_fn, make_train, ppo_loss, value_targets

T, B, A = 3, 2, 4


class _FixedNet:
    """Stands in for the actor-critic: returns the logits and values stored in ``params``."""

    def apply(self, params, hidden, x):
        return hidden, params["logits"], params["value"]


def _batch(seed: int = 0) -> tuple[dict, Transition, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    params = {"logits": f32(T, B, A), "value": f32(T, B, 2)}
    old_value = params["value"] + 0.3 * f32(T, B, 2)  # some beyond clip_eps of the new values
    traj = Transition(
        obs=np.zeros((T, B, 1), np.float32),
        reset=np.zeros((T, B), bool),
        action=rng.integers(0, A, size=(T, B)).astype(np.int32),
        log_prob=(-1.4 + 0.2 * f32(T, B)),
        value=old_value,
        reward=np.zeros((T, B), np.float32),
        done=np.zeros((T, B), bool),
        ended_return=np.zeros((T, B), np.float32),
        ended_disc_return=np.zeros((T, B), np.float32),
    )
    return params, traj, f32(T, B), f32(T, B, 2)


def _hand_loss(params, traj, adv, targets, sweep, normalize) -> dict[str, float]:
    """The LD-PPO loss written out in float64 numpy."""
    logits = params["logits"].astype(np.float64)
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    logp = np.take_along_axis(logp_all, traj.action[..., None], -1)[..., 0]
    v, v_old = params["value"].astype(np.float64), traj.value.astype(np.float64)
    eps = sweep.clip_eps
    v_clip = v_old + np.clip(v - v_old, -eps, eps)
    clipped = np.maximum((v - targets) ** 2, (v_clip - targets) ** 2).mean()  # both heads
    ld = ((v[..., 0] - v[..., 1]) ** 2).mean()
    value_loss = (1 - sweep.ld_weight) * clipped + sweep.ld_weight * ld
    if normalize:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = np.exp(logp - traj.log_prob)
    policy = -np.minimum(ratio * adv, np.clip(ratio, 1 - eps, 1 + eps) * adv).mean()
    entropy = -(np.exp(logp_all) * logp_all).sum(-1).mean()
    total = policy + sweep.vf_coeff * value_loss - sweep.entropy_coeff * entropy
    return {"total": total, "value": value_loss, "policy": policy, "entropy": entropy}


@pytest.mark.parametrize("normalize", [True, False])
def test_ld_loss_equals_hand_computation_on_a_fixed_batch(normalize: bool) -> None:
    params, traj, adv, targets = _batch()
    sweep = PPOSweep(ld_weight=0.3, vf_coeff=0.7, entropy_coeff=0.05, clip_eps=0.2)
    total, info = jax.jit(ppo_loss, static_argnums=(0, 7))(
        _FixedNet(), params, None, traj, adv, targets, jax.tree.map(jnp.float32, sweep), normalize
    )
    want = _hand_loss(params, traj, adv.astype(np.float64), targets, sweep, normalize)
    np.testing.assert_allclose(float(total), want["total"], rtol=1e-5)
    for name in ("value", "policy", "entropy"):
        np.testing.assert_allclose(float(getattr(info, name)), want[name], rtol=1e-5, err_msg=name)
    # The discrepancy term really enters: moving the second head changes only the value loss.
    moved = {**params, "value": params["value"].copy()}
    moved["value"][..., 1] += 1.0
    _, info_moved = ppo_loss(_FixedNet(), moved, None, traj, adv, targets, sweep, normalize)
    assert float(info_moved.value) != pytest.approx(float(info.value))
    np.testing.assert_allclose(float(info_moved.policy), float(info.policy), rtol=1e-6)


def _reference_gae(r, v, d, last_v, gamma, lam) -> np.ndarray:
    """Python-loop GAE targets, (T, B)."""
    adv, out = np.zeros_like(last_v), np.zeros_like(v)
    for t in reversed(range(len(r))):
        next_v = last_v if t == len(r) - 1 else v[t + 1]
        nd = 1.0 - d[t]
        delta = r[t] + gamma * next_v * nd - v[t]
        adv = delta + gamma * lam * nd * adv
        out[t] = adv + v[t]
    return out


def test_ld_heads_get_targets_with_their_own_lambda() -> None:
    rng = np.random.default_rng(1)
    steps, envs = 7, 3
    reward = rng.normal(size=(steps, envs))
    value = rng.normal(size=(steps, envs, 2))
    done = rng.random((steps, envs)) < 0.2
    last_value = rng.normal(size=(envs, 2))
    gamma, lam0, lam1 = 0.9, 0.3, 0.95
    adv, targets = value_targets(
        jnp.float32(reward), jnp.float32(value), jnp.asarray(done), jnp.float32(last_value),
        gamma, jnp.float32(lam0), jnp.float32(lam1),
    )  # fmt: skip
    assert targets.shape == (steps, envs, 2) and adv.shape == (steps, envs)
    want0 = _reference_gae(reward, value[..., 0], done, last_value[..., 0], gamma, lam0)
    want1 = _reference_gae(reward, value[..., 1], done, last_value[..., 1], gamma, lam1)
    np.testing.assert_allclose(targets[..., 0], want0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(targets[..., 1], want1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv, want0 - value[..., 0], rtol=1e-5, atol=1e-5)  # lambda0 head
    # Swapping the lambdas really changes each head's targets.
    wrong0 = _reference_gae(reward, value[..., 0], done, last_value[..., 0], gamma, lam1)
    assert not np.allclose(want0, wrong0, atol=1e-3)


def test_ld_training_vmaps_lambda1_and_ld_weight_cells_equal_separate_runs(
    tiny, cells_equal_separate_runs
) -> None:
    static = tiny(double_critic=True)
    sweeps = [
        PPOSweep(lr=1e-3, lambda0=0.9, lambda1=0.5, ld_weight=0.0),
        PPOSweep(lr=1e-3, lambda0=0.9, lambda1=0.95, ld_weight=0.5),
    ]
    seeds = jnp.array([0, 5], jnp.int32)
    stacked = jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *sweeps)
    out = make_sweep_fn(static)(stacked, seeds)
    assert out.loss_value.shape == (2, 2, static.num_updates)
    assert np.all(np.isfinite(np.asarray(out.loss_total)))
    cells_equal_separate_runs(make_train(static), out, sweeps, seeds, seed_indices=(1,))
    assert not np.allclose(out.loss_value[0, 0], out.loss_value[1, 0])


def test_normalize_advantages_off_changes_training(tiny) -> None:
    static = tiny()
    sweep = jax.tree.map(jnp.float32, PPOSweep(lr=1e-3))
    on = jax.jit(make_train(static))(sweep, jnp.int32(0))
    off = jax.jit(make_train(dataclasses.replace(static, normalize_advantages=False)))(
        sweep, jnp.int32(0)
    )
    assert not np.allclose(np.asarray(on.loss_policy), np.asarray(off.loss_policy))
