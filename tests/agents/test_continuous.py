"""Continuous-action PPO: Gaussian head, clipping only into the env, observation normalisation."""

from __future__ import annotations

import dataclasses
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment
from scipy import stats

from sweepax.agents import ppo
from sweepax.agents.config import PPOStatic, PPOSweep, TransformerStatic
from sweepax.agents.networks import ActionSpec, DiagGaussian, distribution, make_network
from sweepax.agents.ppo import ObsStats, action_spec, make_sweep_fn, make_train, make_trainer
from sweepax.agents.transformer import make_network as make_gtrxl
from sweepax.envs import registry

# The agents' tiny run (tests/agents/conftest.py) on masked Pendulum: 2 updates, an evaluation of
# one whole Pendulum episode (200 steps: final_return is finite), observation normalisation.
TINY_PENDULUM = {
    "env": "Pendulum-P-v0",
    "total_steps": 16 * 4 * 2,
    "eval_steps": 200,
    "normalize_obs": True,
}

# Pendulum-v1 settings that learn (rl-zoo-like: gamma 0.9, 10 epochs, no entropy bonus). Measured on
# CPU: final_return of seeds 0-3 -188, -306, -325, -236 (from about -1250 at the start); seeds 4-11
# -171 to -562. About 40 s on an idle 2-core machine, mostly compilation.
LEARN = PPOStatic(
    env="Pendulum-v1",
    memoryless=True,
    normalize_obs=True,
    hidden_size=64,
    num_envs=16,
    num_steps=128,
    total_steps=16 * 128 * 100,
    update_epochs=10,
    num_minibatches=4,
    gamma=0.9,
    eval_steps=400,
)
LEARN_SWEEP = PPOSweep(lr=1e-3, lambda0=0.95, entropy_coeff=0.0)


def _stack(*sweeps: PPOSweep) -> PPOSweep:
    """PPOSweep with float32 leaves of shape (C,)."""
    return jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *sweeps)


class _Recording(environment.Environment):
    """Delegates to ``inner``; every executed (vmapped) reset / step appends (action, obs) batches.

    A ``pure_callback`` that returns the obs (so it runs once per step, in order, on the whole
    env batch under ``vmap``, unlike ``jax.debug.callback``).
    """

    def __init__(self, inner: tp.Any, log: list) -> None:
        super().__init__()
        self.inner = inner
        self.log = log

    def _record(self, action: jax.Array, obs: jax.Array) -> jax.Array:
        def _append(a: np.ndarray, o: np.ndarray) -> np.ndarray:
            self.log.append((np.asarray(a), np.asarray(o)))
            return np.asarray(o)

        shape = jax.ShapeDtypeStruct(obs.shape, obs.dtype)
        return jax.pure_callback(_append, shape, action, obs, vmap_method="broadcast_all")

    def reset(self, key: jax.Array, params: tp.Any = None) -> tuple:
        obs, state = self.inner.reset(key, params)
        return self._record(jnp.zeros(self.inner.action_space(params).shape), obs), state

    def step(
        self, key: jax.Array, state: tp.Any, action: jax.Array, params: tp.Any = None
    ) -> tuple:
        obs, *rest = self.inner.step(key, state, action, params)
        return (self._record(action, obs), *rest)

    def action_space(self, params: tp.Any = None) -> tp.Any:
        return self.inner.action_space(params)


def _recording(monkeypatch: pytest.MonkeyPatch) -> list:
    """Make PPO's envs record what they are given and what they return."""
    log: list = []
    make = registry.make

    def _make(*args: tp.Any, **kwargs: tp.Any) -> tuple:
        env, params = make(*args, **kwargs)
        return _Recording(env, log), params

    monkeypatch.setattr(registry, "make", _make)
    return log


def test_diag_gaussian_log_prob_and_entropy_equal_scipy() -> None:
    mean = np.array([[0.3, -1.2, 2.0], [0.0, 0.5, -0.7]], np.float32)
    log_std = np.array([0.0, -0.5, 0.8], np.float32)
    action = np.array([[1.1, -1.0, 5.0], [-2.0, 0.5, 0.0]], np.float32)
    pi = DiagGaussian(jnp.asarray(mean), jnp.asarray(log_std))
    std = np.exp(log_std)
    want_lp = stats.norm.logpdf(action, mean, std).sum(-1)
    np.testing.assert_allclose(pi.log_prob(jnp.asarray(action)), want_lp, rtol=1e-5)
    want_ent = stats.norm.entropy(np.zeros(3), std).sum() * np.ones(2)
    np.testing.assert_allclose(pi.entropy(), want_ent, rtol=1e-5)
    # By hand for one dim: -0.5 z^2 - log sigma - 0.5 log(2 pi).
    one = DiagGaussian(jnp.array([[1.0]]), jnp.array([np.log(2.0)]))
    np.testing.assert_allclose(
        one.log_prob(jnp.array([[2.0]])),
        [-0.125 - np.log(2.0) - 0.5 * np.log(2 * np.pi)],
        rtol=1e-6,
    )
    # Samples: float32, the right mean and std; ``distribution`` picks the Gaussian.
    big = distribution((jnp.broadcast_to(jnp.asarray(mean[0]), (20_000, 3)), log_std), True)
    x = np.asarray(big.sample(jax.random.PRNGKey(0)))
    assert x.dtype == np.float32 and x.shape == (20_000, 3)
    np.testing.assert_allclose(x.mean(0), mean[0], atol=0.06)
    np.testing.assert_allclose(x.std(0), std, rtol=0.03)


def test_obs_stats_parallel_update_equals_numpy_over_all_batches() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 3)).astype(np.float32) for n in (4, 1, 7, 4)]
    s = ObsStats.empty(3)
    for b in batches:
        s = s.update(jnp.asarray(b))
    every = np.concatenate(batches)
    np.testing.assert_allclose(s.mean, every.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.var, every.var(0), rtol=1e-4)
    assert float(s.count) == len(every)
    z = np.asarray(s.normalize(jnp.asarray(every)))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.var(0), 1.0, rtol=1e-4)
    assert float(s.normalize(jnp.full((3,), 1e6)).max()) == ppo.OBS_CLIP


def test_continuous_actions_stored_raw_and_clipped_only_into_the_env(tiny, monkeypatch) -> None:
    log = _recording(monkeypatch)
    static = tiny(**TINY_PENDULUM | {"normalize_obs": False, "memoryless": True})
    trainer = make_trainer(static)
    runner = jax.jit(trainer.init)(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    # std e^1.5 = 4.5 around a mean ~0: most samples fall outside Pendulum's [-2, 2].
    params = jax.tree.map(lambda x: x, runner.params)
    params["params"]["log_std"] = jnp.full((1,), 1.5)
    log.clear()
    # compiled as a training task compiles it: the test session's fast compile
    # (tests/conftest.py) swaps XLA's fusion emitter, which may round the program's two
    # copies of the sample (stored, given to the env) one ulp apart
    rollout = jax.jit(
        trainer.rollout, static_argnums=(3,), compiler_options={"xla_cpu_use_fusion_emitters": True}
    )
    loop, traj = rollout(params, runner.loop, jax.random.PRNGKey(1), 8)
    raw = np.asarray(traj.action)
    assert raw.shape == (8, 4, 1) and raw.dtype == np.float32
    assert (np.abs(raw) > 2.0).mean() > 0.4  # stored unclipped
    given = np.stack([a for a, _ in log]).reshape(8, 4, 1)  # what the env was given
    np.testing.assert_array_equal(given, np.clip(raw, -2.0, 2.0))
    # action_concat appends the clipped action; the log-prob is the raw sample's.
    np.testing.assert_array_equal(np.asarray(loop.obs)[:, 2:], given[-1])
    np.testing.assert_array_equal(np.asarray(traj.obs)[1:, :, 2:], given[:-1])
    assert np.all(np.asarray(traj.obs)[0, :, 2:] == 0)  # episode start: no previous action
    _, policy, _ = make_network(True, ActionSpec(1, True), 8).apply(
        params, loop.hidden, (traj.obs, traj.reset)
    )
    np.testing.assert_allclose(
        traj.log_prob, stats.norm.logpdf(raw, policy[0], np.exp(1.5)).sum(-1), rtol=1e-5
    )


def test_obs_normalisation_stats_equal_numpy_over_every_observation(tiny, monkeypatch) -> None:
    log = _recording(monkeypatch)
    static = tiny(**TINY_PENDULUM | {"env": "Pendulum-v1", "action_concat": False})
    trainer = make_trainer(static)
    sweep = jax.tree.map(jnp.float32, PPOSweep())
    runner = jax.jit(trainer.init)(sweep, jnp.int32(0))
    runner, _ = jax.jit(trainer.update)(runner, sweep, jnp.arange(2, dtype=jnp.int32))
    seen = np.concatenate([o.reshape(-1, 3) for _, o in log])
    assert len(seen) == 4 * (1 + 2 * 16)  # the resets, then every step of 2 updates
    obs_stats = runner.loop.obs_stats
    assert float(obs_stats.count) == len(seen)
    np.testing.assert_allclose(obs_stats.mean, seen.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(obs_stats.var, seen.var(0), rtol=1e-4, atol=1e-6)
    # What the network sees: the next obs normalised with the statistics that include it.
    last = log[-1][1].reshape(-1, 3)
    np.testing.assert_allclose(runner.loop.obs, obs_stats.normalize(jnp.asarray(last)), rtol=1e-6)
    # A further rollout (statistics keep learning) is about standardised.
    log.clear()
    loop, traj = jax.jit(trainer.rollout, static_argnums=(3,))(
        runner.params, runner.loop, jax.random.PRNGKey(2), 64
    )
    z = np.asarray(traj.obs).reshape(-1, 3)
    assert np.all(np.abs(z.mean(0)) < 0.35), z.mean(0)
    assert np.all((z.var(0) > 0.6) & (z.var(0) < 1.4)), z.var(0)
    assert float(loop.obs_stats.count) == len(seen) + 4 * 64
    # Evaluation (learn_stats=False): every obs normalised with the same, frozen statistics.
    log.clear()
    frozen, traj = jax.jit(trainer.rollout, static_argnums=(3, 4))(
        runner.params, runner.loop, jax.random.PRNGKey(2), 8, False
    )
    for got, want in zip(frozen.obs_stats, obs_stats, strict=True):
        np.testing.assert_array_equal(got, want)
    after = np.stack([o for _, o in log]).reshape(8, 4, 3)
    np.testing.assert_allclose(
        traj.obs[1:], obs_stats.normalize(jnp.asarray(after[:-1])), rtol=1e-6
    )


def test_pendulum_p_vmapped_cells_equal_separate_runs(tiny, cells_equal_separate_runs) -> None:
    static = tiny(**TINY_PENDULUM)
    sweeps = [
        PPOSweep(lr=1e-3, lambda0=0.9, entropy_coeff=0.0),
        PPOSweep(lr=3e-3, lambda0=0.7, entropy_coeff=0.01, clip_eps=0.1),
    ]
    seeds = jnp.array([3, 11], jnp.int32)
    out = make_sweep_fn(static)(_stack(*sweeps), seeds)
    for leaf in ("episode_return", "loss_total", "approx_kl", "entropy"):
        assert getattr(out, leaf).shape == (2, 2, static.num_updates)
    assert out.final_return.shape == (2, 2) and np.all(np.asarray(out.final_episodes) == 4)
    assert np.all(np.asarray(out.final_return) < 0)  # Pendulum rewards are <= 0
    # Entropy of a 1-d Gaussian with log_std ~ 0: about 0.5 * log(2 pi e) = 1.42.
    np.testing.assert_allclose(out.entropy[:, :, 0], 1.4189, atol=0.02)
    cells_equal_separate_runs(make_train(static), out, sweeps, seeds, seed_indices=(0, 1))
    assert not np.allclose(out.loss_total[0, 0], out.loss_total[0, 1])
    assert not np.allclose(out.loss_total[0, 0], out.loss_total[1, 0])


@pytest.mark.parametrize("kind", ["gru", "mlp", "transformer"])
def test_networks_build_a_gaussian_head_for_a_box_action_space(kind: str) -> None:
    env, params = registry.make("MountainCarContinuous-v0")
    action, low, high = action_spec(env.action_space(params))
    assert action == ActionSpec(1, continuous=True)
    assert np.array_equal(low, [-1.0]) and np.array_equal(high, [1.0])
    if kind == "transformer":
        static = TransformerStatic(env="MountainCarContinuous-v0", embed_size=8, num_heads=2)
        net = make_gtrxl(dataclasses.replace(static, hidden_size=8, memory_window=4), action)
    else:
        net = make_network(kind == "mlp", action, 8, num_values=2)
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 3, 2))
    resets = jnp.zeros((5, 3), bool).at[0].set(True)
    variables = net.init(jax.random.PRNGKey(1), net.initialize_carry(3), (obs, resets))
    assert np.array_equal(variables["params"]["log_std"], np.zeros(1))
    _, (mean, log_std), value = net.apply(variables, net.initialize_carry(3), (obs, resets))
    assert mean.shape == log_std.shape == (5, 3, 1) and np.all(np.asarray(log_std) == 0)
    assert np.abs(np.asarray(mean)).max() < 0.1  # orthogonal(0.01) mean layer
    assert value.shape == (5, 3) + (() if kind == "transformer" else (2,))


@pytest.mark.slow
def test_ppo_memoryless_normalised_learns_pendulum() -> None:
    """Random play returns about -1250 per episode; after 204,800 steps every seed beats -700."""
    seeds = jnp.arange(4, dtype=jnp.int32)
    out = make_sweep_fn(LEARN)(_stack(LEARN_SWEEP), seeds)
    first = np.asarray(out.episode_return[0, :, :10])
    final = np.asarray(out.final_return[0])
    assert np.all(np.nanmean(first, axis=1) < -1000), first
    assert np.all(final > -700), final
    assert np.all(np.asarray(out.final_episodes[0]) == 2 * LEARN.num_envs)
