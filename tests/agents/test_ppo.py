"""PPO: vmapped [config, seed] cells equal single runs; one gradient step moves the policy and the
values the right way, and only the GRU carries an observation forward; GRU PPO solves tmaze_5, MLP
guesses (``-m slow``)."""

from __future__ import annotations

import dataclasses
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.config import PPOStatic, PPOSweep
from sweepax.agents.networks import ActionSpec, distribution, make_network
from sweepax.agents.ppo import (
    CPU_BLOCK_PARAM_BYTES,
    UPDATE_AXES,
    SweepFn,
    action_spec,
    block_size,
    device_split,
    make_sweep_fn,
    make_train,
    make_trainer,
    over_runs,
    ppo_loss,
    run_param_bytes,
    runs_per_block,
    value_targets,
)
from sweepax.envs import registry

# Tuned on 48 seeds (0-23, 200-223): 48/48 (lr 2e-3) reach final_return >= 3.9; memoryless with the
# same settings: 0/24, all in 1.84-2.15. With 16 envs instead of 32, 6-10 % of seeds collapse to a
# policy that never turns at the junction (normalized advantages of the first -0.1 turns).
LEARN = PPOStatic(
    env="tmaze_5",
    hidden_size=32,
    num_envs=32,
    num_steps=32,
    total_steps=65_536,
    update_epochs=4,
    num_minibatches=4,
    eval_steps=200,
    action_concat=True,
)
LEARN_SWEEP = PPOSweep(lr=2e-3, lambda0=0.9, entropy_coeff=0.01)


def _stack(*sweeps: PPOSweep) -> PPOSweep:
    """PPOSweep with float32 leaves of shape (C,)."""
    return jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *sweeps)


def test_ppo_vmapped_cells_equal_separate_runs(tiny, cells_equal_separate_runs) -> None:
    static = tiny()
    sweeps = [
        PPOSweep(lr=1e-3, lambda0=0.9, entropy_coeff=0.01, clip_eps=0.2, max_grad_norm=0.5),
        PPOSweep(
            lr=3e-3, lambda0=0.7, entropy_coeff=0.05, clip_eps=0.1, vf_coeff=0.3, max_grad_norm=1.0
        ),
    ]
    seeds = jnp.array([3, 11], jnp.int32)
    progress: list[tuple[int, int]] = []
    out = make_sweep_fn(static, on_progress=lambda u, n: progress.append((u, n)))(
        _stack(*sweeps), seeds
    )
    num_updates = static.num_updates
    for leaf in ("episode_return", "loss_total", "approx_kl", "entropy"):
        assert getattr(out, leaf).shape == (2, 2, num_updates)
    assert out.episodes.dtype == jnp.int32 and out.final_episodes.shape == (2, 2)
    assert out.final_return.shape == (2, 2)
    assert progress and set(progress) == {(u, num_updates) for u in range(1, num_updates + 1)}

    cells_equal_separate_runs(make_train(static), out, sweeps, seeds, seed_indices=(0, 1))
    # Different seeds and configs really differ.
    assert not np.allclose(out.loss_total[0, 0], out.loss_total[0, 1])
    assert not np.allclose(out.loss_total[0, 0], out.loss_total[1, 0])


def test_ppo_metrics_are_consistent_and_progress_reported_after_each_chunk(
    tiny, cells_equal_separate_runs
) -> None:
    static = tiny(total_steps=16 * 4 * 45)  # 45 updates
    sweep = PPOSweep(lr=1e-3)
    progress: list[tuple[int, int]] = []
    # 7 chunks of 7 updates: the last chunk is padded past update 45, its 4 extra steps skipped.
    sweep_fn = SweepFn(static, on_progress=lambda u, n: progress.append((u, n)), chunks=7)
    grid = sweep_fn(_stack(sweep), jnp.array([0], jnp.int32))
    assert progress == [(u, 45) for u in (7, 14, 21, 28, 35, 42, 45)]
    assert grid.episode_return.shape == (1, 1, 45)
    # The chunked, padded run is the same run as one scan over all 45 updates.
    cells_equal_separate_runs(make_train(static), grid, [sweep], jnp.array([0]), seed_indices=(0,))
    out = jax.tree.map(lambda x: x[0, 0], grid)
    episodes = np.asarray(out.episodes)
    ret = np.asarray(out.episode_return)
    disc = np.asarray(out.discounted_return)
    assert np.all(np.isnan(ret) == (episodes == 0)) and np.all(np.isnan(disc) == (episodes == 0))
    ended = episodes > 0
    # T-Maze returns are 4.0, -0.1 or 0.0 (truncated): means lie in [-0.1, 4]; discounting shrinks.
    assert np.all((ret[ended] >= -0.1 - 1e-6) & (ret[ended] <= 4.0 + 1e-6))
    assert np.all(np.abs(disc[ended]) <= np.abs(ret[ended]) + 1e-6)
    assert int(out.final_episodes) >= 0 and np.all(np.isfinite(np.asarray(out.loss_total)))


@pytest.mark.parametrize("env", ["tmaze_3", "Pendulum-P-v0"])
def test_one_gradient_step_makes_advantaged_actions_likelier_and_values_closer(tiny, env) -> None:
    """What learning rests on (the learning checks are ``-m slow``), on a real rollout of the
    trainer, categorical (T-Maze) and Gaussian (Pendulum) policy: a small step down the policy loss
    raises the log-probability of actions with an above-average advantage relative to the others;
    a step down the value loss brings the values nearer their GAE targets."""
    static = tiny(env=env)
    action, _, _ = action_spec(registry.make(env)[0].action_space())
    trainer = make_trainer(static)
    sweep = jax.tree.map(jnp.float32, PPOSweep(lr=1e-3, lambda0=0.9))
    runner = jax.jit(trainer.init)(sweep, jnp.int32(0))
    loop, traj = jax.jit(trainer.rollout, static_argnums=(3,))(
        runner.params, runner.loop, jax.random.PRNGKey(1), static.num_steps
    )
    net = make_network(False, action, static.hidden_size)  # the trainer's GRU actor-critic
    hidden0 = runner.loop.hidden
    _, _, last_value = net.apply(runner.params, loop.hidden, (loop.obs[None], loop.reset[None]))
    gamma, lambda0, lambda1 = static.gamma, sweep.lambda0, sweep.lambda1
    adv, targets = value_targets(
        traj.reward, traj.value, traj.done, last_value[0], gamma, lambda0, lambda1
    )

    @jax.jit
    def step(sweep: PPOSweep, adv: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Log-probs of the rollout's actions and values after one gradient step of size 0.01."""

        def loss(params: tp.Any) -> jax.Array:
            return ppo_loss(
                net, params, hidden0, traj, adv, targets, sweep, continuous=action.continuous
            )[0]

        grads = jax.grad(loss)(runner.params)
        params = jax.tree.map(lambda p, g: p - 0.01 * g, runner.params, grads)
        _, policy, value = net.apply(params, hidden0, (traj.obs, traj.reset))
        return distribution(policy, action.continuous).log_prob(traj.action), value

    pi_only = sweep.replace(vf_coeff=0.0, entropy_coeff=0.0)
    unmoved_logp, unmoved_value = step(pi_only, jnp.zeros_like(adv))  # a zero gradient
    np.testing.assert_allclose(unmoved_logp, traj.log_prob, atol=1e-5)  # the rollout's own policy
    np.testing.assert_allclose(unmoved_value, traj.value, atol=1e-5)
    logp, _ = step(pi_only, adv)
    moved = np.asarray(logp - traj.log_prob)
    adv = np.asarray(adv)
    z = (adv - adv.mean()) / adv.std()  # the loss normalises advantages per minibatch
    assert (z > 0).sum() >= 8 and (z < 0).sum() >= 8
    assert moved[z > 0].mean() > moved[z < 0].mean(), (moved, z)
    assert float((np.exp(moved) * z).mean()) > 0  # the clipped objective rose

    _, value = step(sweep.replace(vf_coeff=1.0, entropy_coeff=0.0), jnp.zeros_like(traj.value))
    before = np.square(np.asarray(traj.value - targets)).mean()
    after = np.square(np.asarray(value - targets)).mean()
    assert after < before, (after, before)


@pytest.mark.parametrize("memoryless", [False, True])
def test_only_the_recurrent_policy_carries_an_observation_to_later_steps(memoryless) -> None:
    """T-Maze shows the goal only at the first step: the GRU's later outputs depend on it, the
    MLP's (memoryless PPO, which can only guess at the junction) do not."""
    net = make_network(memoryless, ActionSpec(4), 8)
    obs = jax.random.normal(jax.random.PRNGKey(0), (6, 2, 3))
    other_cue = obs.at[0].add(2.0)
    resets = jnp.zeros((6, 2), bool).at[0].set(True)
    carry = net.initialize_carry(2)
    params = net.init(jax.random.PRNGKey(1), carry, (obs, resets))
    _, logits, value = net.apply(params, carry, (obs, resets))
    _, logits_cue, value_cue = net.apply(params, carry, (other_cue, resets))
    assert not np.allclose(logits[0], logits_cue[0])  # both see the first observation
    if memoryless:
        np.testing.assert_array_equal(logits[1:], logits_cue[1:])
        np.testing.assert_array_equal(value[1:], value_cue[1:])
    else:
        assert not np.allclose(logits[5], logits_cue[5]) and not np.allclose(value[5], value_cue[5])


@pytest.mark.slow
def test_ppo_recurrent_solves_tmaze5_memoryless_guesses() -> None:
    seeds = jnp.arange(8, dtype=jnp.int32)
    rec = make_sweep_fn(LEARN)(_stack(LEARN_SWEEP), seeds)
    final = np.asarray(rec.final_return[0])
    assert int((final >= 3.9).sum()) >= 6, final

    mlp = make_sweep_fn(dataclasses.replace(LEARN, memoryless=True))(_stack(LEARN_SWEEP), seeds)
    final_mlp = np.asarray(mlp.final_return[0])
    assert np.isfinite(final_mlp).sum() >= 6, final_mlp
    assert np.nanmax(final_mlp) < 2.5, final_mlp
    assert abs(np.nanmean(final_mlp) - 1.95) < 0.3, final_mlp


@pytest.mark.slow
def test_ppo_recurrent_solves_tmaze5_on_24_seeds_and_perfect_memory_lets_mlp_solve() -> None:
    seeds = jnp.arange(24, dtype=jnp.int32)
    rec = make_sweep_fn(LEARN)(_stack(LEARN_SWEEP), seeds)
    assert int((np.asarray(rec.final_return[0]) >= 3.9).sum()) >= 20
    pm = dataclasses.replace(LEARN, memoryless=True, perfect_memory=True)
    mlp = make_sweep_fn(pm)(_stack(LEARN_SWEEP), seeds[:8])
    assert int((np.asarray(mlp.final_return[0]) >= 3.9).sum()) >= 6


def test_update_in_blocks_of_runs_equals_all_runs_at_once(tiny) -> None:
    """On a CPU the update program does its configs x seeds runs a block at a time; every run
    gets the numbers it gets when all runs are vmapped together."""
    static = tiny(n_seeds=3)
    trainer = make_trainer(static)
    sweep = _stack(PPOSweep(lr=1e-3, lambda0=0.9), PPOSweep(lr=3e-3, lambda0=0.5))
    runner = jax.vmap(jax.vmap(trainer.init, (None, 0)), (0, None))(
        sweep, jnp.array([3, 11, 12], jnp.int32)
    )
    idx = jnp.arange(2, dtype=jnp.int32)
    together = jax.jit(over_runs(trainer.update, UPDATE_AXES, None))(runner, sweep, idx)
    in_blocks = jax.jit(over_runs(trainer.update, UPDATE_AXES, 4))(runner, sweep, idx)  # 2 x 3
    for a, b in zip(jax.tree.leaves(in_blocks), jax.tree.leaves(together), strict=True):
        assert a.shape == b.shape and a.shape[:2] == (2, 3)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert [block_size(240, n) for n in (None, 10, 14, 1, 500)] == [240, 10, 12, 1, 240]

    # every kind of axis: per run, per config, per seed, shared
    def cell(run: jax.Array, config: jax.Array, seed: jax.Array, shared: jax.Array) -> jax.Array:
        return run + 10 * config + 100 * seed + 1000 * shared

    axes = ((0, 0), (0, None), (None, 0), None)
    args = (jnp.arange(6.0).reshape(2, 3), jnp.arange(2.0), jnp.arange(3.0), jnp.float32(1))
    expected = args[0] + 10 * args[1][:, None] + 100 * args[2][None, :] + 1000
    for block in (None, 1, 2, 3):
        np.testing.assert_array_equal(over_runs(cell, axes, block)(*args), expected)
    assert block_size(7, 4) == 1 and block_size(6, 4) == 3


def test_runs_per_block_fits_parameters_in_the_cpu_budget(tiny) -> None:
    static = tiny(hidden_size=32, n_seeds=2)
    trainer = make_trainer(static)
    params = jax.eval_shape(trainer.init, PPOSweep(), jnp.zeros((), jnp.int32)).params
    size = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params))
    runner = jax.vmap(trainer.init, (None, 0))(PPOSweep(), jnp.arange(2, dtype=jnp.int32))
    assert run_param_bytes(runner.params, 2) == size  # derived from a grid's parameters
    block = runs_per_block(static, "cpu", size)
    assert block == CPU_BLOCK_PARAM_BYTES // size
    assert block * size <= CPU_BLOCK_PARAM_BYTES < (block + 1) * size
    assert runs_per_block(static, "gpu", size) is None  # accelerators: one wide batch
    memoryless = tiny(hidden_size=32, memoryless=True)
    assert runs_per_block(memoryless, "cpu", size) is None  # one device: one wide batch
    assert runs_per_block(memoryless, "cpu", size, spread=True) == block  # one device per core
    assert runs_per_block(memoryless, "gpu", size, spread=True) is None


@pytest.mark.parametrize(
    ("grid", "devices", "split"),
    [
        ((24, 10), 2, (2, 1)),
        ((24, 10), 16, (8, 2)),
        ((1, 10), 4, (1, 2)),
        ((3, 2), 2, (1, 2)),
        ((7, 1), 4, (1, 1)),
        ((5, 3), 1, (1, 1)),
        ((4, 4), 64, (4, 4)),
    ],
)
def test_runs_are_split_evenly_over_as_many_devices_as_divide_the_grid(grid, devices, split):
    assert device_split(*grid, devices) == split


def test_noise_drawn_ahead_samples_what_the_key_samples() -> None:
    """A rollout draws every step's sampling noise before its loop: the same actions as
    sampling each step with its key (discrete: exactly; continuous: to the last bits)."""
    keys = jax.random.split(jax.random.PRNGKey(5), 64)
    logits = jax.random.normal(jax.random.PRNGKey(1), (4, 3)) * 3
    pi = distribution(logits, continuous=False)
    noise = jax.vmap(lambda k: pi.noise(k, logits.shape))(keys)
    ahead = jax.vmap(pi.sample_from)(noise)
    np.testing.assert_array_equal(ahead, jax.vmap(pi.sample)(keys))
    assert len(np.unique(np.asarray(ahead))) == 3  # every action drawn: the noise matters
    mean, log_std = jnp.zeros((4, 2)), jnp.array([0.0, -1.0])
    gauss = distribution((mean, log_std), continuous=True)
    noise = jax.vmap(lambda k: gauss.noise(k, mean.shape))(keys)
    np.testing.assert_allclose(
        jax.vmap(gauss.sample_from)(noise), jax.vmap(gauss.sample)(keys), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("double_critic", [False, True])
def test_rollout_fields_follow_the_episodes_of_its_rewards(tiny, double_critic: bool) -> None:
    """The stacked transitions of a rollout, field by field: each step after an episode's end
    starts the next (``reset``), ended returns are the sums of that episode's rewards (T-Maze:
    4.0 or -0.1, or 0.0 when the time limit cuts it), discounted ones the gamma-weighted sums,
    and the value has one column per critic. Runs two rollouts so episodes cross rollouts."""
    static = tiny(num_steps=64, double_critic=double_critic)
    trainer = make_trainer(static)
    sweep = jax.tree.map(jnp.float32, PPOSweep(lr=1e-3, lambda0=0.9))
    runner = jax.jit(trainer.init)(sweep, jnp.int32(0))
    rollout = jax.jit(trainer.rollout, static_argnums=(3,))
    loop, first = rollout(runner.params, runner.loop, jax.random.PRNGKey(1), static.num_steps)
    _, second = rollout(runner.params, loop, jax.random.PRNGKey(2), static.num_steps)
    traj = jax.tree.map(lambda a, b: np.concatenate([a, b]), first, second)
    steps, n = traj.done.shape
    assert traj.value.shape == ((steps, n, 2) if double_critic else (steps, n))
    assert traj.obs.shape == (steps, n, 3 + 4) and traj.action.dtype == np.int32
    np.testing.assert_array_equal(traj.reset[0], runner.loop.reset)
    np.testing.assert_array_equal(traj.reset[1:], traj.done[:-1])
    ret, disc, discount = np.zeros(n), np.zeros(n), np.ones(n)
    for t in range(steps):
        ret, disc = ret + traj.reward[t], disc + discount * traj.reward[t]
        done = traj.done[t]
        ended, ended_disc = np.where(done, ret, 0.0), np.where(done, disc, 0.0)
        np.testing.assert_allclose(traj.ended_return[t], ended, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(traj.ended_disc_return[t], ended_disc, rtol=1e-5, atol=1e-6)
        ret, disc = np.where(done, 0.0, ret), np.where(done, 0.0, disc)
        discount = np.where(done, 1.0, discount * static.gamma)
    assert set(np.unique(traj.reward)) <= {0.0, 4.0, np.float32(-0.1)}
    assert traj.done.sum() >= 4
    assert np.all(np.isfinite(traj.log_prob)) and np.all(traj.log_prob <= 0)
