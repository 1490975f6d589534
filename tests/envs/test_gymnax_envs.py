"""gymnax ids and masked CartPole / Pendulum: shapes and dtypes under jit/vmap, masks, auto-reset.

By default a handful of ids run; ``SWEEPAX_ALL_GYMNAX=1`` runs every exposed gymnax id (about
1-4 s of compile each on CPU).
"""

from __future__ import annotations

import os
import re

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces
from gymnax.registration import registered_envs

from sweepax.envs import GymnaxEnv, check, known_envs, make
from sweepax.envs.gymnax_envs import (
    CONTINUOUS_ACTIONS_MESSAGE,
    EXCLUDED_IDS,
    GYMNAX_IDS,
    MASKED,
    ContinuousActionsError,
)
from sweepax.errors import UserError

MASKED_IDS = [f"{n}-{v}-v0" for n in ("CartPole", "Pendulum") for v in ("F", "P", "V")]
DEFAULT_GYMNAX_IDS = [
    "CartPole-v1",
    "Pendulum-v1",
    "MemoryChain-bsuite",
    "UmbrellaChain-bsuite",  # int32 reward in gymnax
    "Breakout-MinAtar",  # (10, 10, 4) obs, flattened
    "FrozenLake-misc",  # scalar int obs
]
ALL = os.environ.get("SWEEPAX_ALL_GYMNAX", "") not in ("", "0")
SHAPE_IDS = (list(GYMNAX_IDS) if ALL else DEFAULT_GYMNAX_IDS) + MASKED_IDS

# Declared masks, written out independently of the module's table: POBAX 0.0.1's mask_dims
# (its masked_gymnax_env_map; tests/envs/pobax/test_masked_ids.py reads them from POBAX itself).
EXPECTED_KEPT = {
    "CartPole-F-v0": (0, 1, 2, 3),
    "CartPole-P-v0": (0, 2),  # x, theta
    "CartPole-V-v0": (1, 3),  # x_dot, theta_dot
    "Pendulum-F-v0": (0, 1, 2),
    "Pendulum-P-v0": (0, 1),  # cos theta, sin theta
    "Pendulum-V-v0": (2,),  # theta_dot
}
BASE = {"CartPole": "CartPole-v1", "Pendulum": "Pendulum-v1"}
N = 4  # vmapped envs


def _sample_actions(env: GymnaxEnv, params, key: jax.Array, n: int) -> jax.Array:
    space = env.action_space(params)
    return jax.vmap(lambda k: space.sample(k))(jax.random.split(key, n))


def test_exposed_ids_are_gymnax_registry_minus_mnist() -> None:
    assert set(GYMNAX_IDS) | set(EXCLUDED_IDS) == set(registered_envs)
    assert "MNISTBandit-bsuite" in EXCLUDED_IDS
    for env_id in list(GYMNAX_IDS) + MASKED_IDS:
        check(env_id)
    for env_id in MASKED_IDS[1:3] + ["CartPole-v1", "MemoryChain-bsuite"]:
        assert env_id in known_envs()


@pytest.mark.parametrize("env_id", SHAPE_IDS)
def test_reset_and_step_under_jit_and_vmap_give_declared_shapes_and_dtypes(env_id: str) -> None:
    env, params = make(env_id)
    assert isinstance(env, GymnaxEnv) and env.name == env_id
    obs_space = env.observation_space(params)
    assert obs_space.shape == (env.obs_dim,) and obs_space.dtype == jnp.float32
    act_space = env.action_space(params)
    key_reset, key_act, key_step = jax.random.split(jax.random.PRNGKey(0), 3)

    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
        jax.random.split(key_reset, N), params
    )
    assert obs.shape == (N, env.obs_dim) and obs.dtype == jnp.float32
    actions = _sample_actions(env, params, key_act, N)
    if isinstance(act_space, spaces.Discrete):
        assert actions.shape == (N,) and env.num_actions == act_space.n
    else:
        assert actions.shape == (N,) + tuple(act_space.shape)

    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs2, state2, reward, terminated, truncated, info = step(
        jax.random.split(key_step, N), state, actions, params
    )
    assert obs2.shape == (N, env.obs_dim) and obs2.dtype == jnp.float32
    assert reward.shape == (N,) and reward.dtype == jnp.float32
    assert terminated.shape == (N,) and terminated.dtype == jnp.bool_
    assert truncated.shape == (N,) and truncated.dtype == jnp.bool_
    assert info["final_observation"].shape == (N, env.obs_dim)
    assert jax.tree.map(jnp.shape, state2) == jax.tree.map(jnp.shape, state)
    assert np.isfinite(np.asarray(obs2)).all()


@pytest.mark.parametrize("env_id", MASKED_IDS)
def test_masked_variant_shows_exactly_the_declared_indices(env_id: str) -> None:
    name, variant = env_id.split("-")[:2]
    env, params = make(env_id)
    full, full_params = make(BASE[name])
    kept = EXPECTED_KEPT[env_id]
    assert env.kept_indices == kept == MASKED[name].kept[variant]
    assert env.hidden_indices == tuple(i for i in range(full.obs_dim) if i not in kept)
    assert env.obs_dim == len(kept)

    def _both(key: jax.Array, steps: int = 30):
        """Roll masked and full env from the same key with the same actions; stacked obs."""
        key_reset, key_roll = jax.random.split(key)
        obs_m, state_m = env.reset(key_reset, params)
        obs_f, state_f = full.reset(key_reset, full_params)

        def body(carry, key):
            state_m, state_f = carry
            key_a, key_s = jax.random.split(key)
            action = full.action_space(full_params).sample(key_a)
            obs_m, state_m, *_ = env.step(key_s, state_m, action, params)
            obs_f, state_f, *_ = full.step(key_s, state_f, action, full_params)
            return (state_m, state_f), (obs_m, obs_f)

        _, (om, of) = jax.lax.scan(body, (state_m, state_f), jax.random.split(key_roll, steps))
        return jnp.concatenate([obs_m[None], om]), jnp.concatenate([obs_f[None], of])

    obs_m, obs_f = jax.jit(_both)(jax.random.PRNGKey(3))
    assert obs_f.shape[-1] == full.obs_dim and obs_m.shape[-1] == len(kept)
    np.testing.assert_array_equal(np.asarray(obs_m), np.asarray(obs_f)[:, list(kept)])
    # The hidden features carry information (they vary), so the mask really removes something.
    if env.hidden_indices:
        assert np.ptp(np.asarray(obs_f)[:, list(env.hidden_indices)], axis=0).min() > 0
    # Same from the state: get_obs of the masked env = full env's obs at kept indices.
    _, state = env.reset(jax.random.PRNGKey(5), params)
    np.testing.assert_array_equal(
        np.asarray(env.get_obs(state, params)),
        np.asarray(full.get_obs(state, full_params))[list(kept)],
    )


@pytest.mark.parametrize(
    ("env_id", "kwargs", "steps", "want"),
    [
        ("CartPole-P-v0", {}, 300, "terminated"),  # random actions drop the pole in ~20 steps
        ("Pendulum-V-v0", {"max_steps_in_episode": 25}, 60, "truncated"),  # no natural end
        ("MemoryChain-bsuite", {"memory_length": 4}, 30, "terminated"),
    ],
)
def test_episodes_end_and_auto_reset(env_id: str, kwargs: dict, steps: int, want: str) -> None:
    env, params = make(env_id, **kwargs)
    for k, v in kwargs.items():
        assert getattr(params, k) == v

    def rollout(key: jax.Array):
        key_reset, key_roll = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, N), params)

        def body(state, key):
            key_a, key_s = jax.random.split(key)
            action = _sample_actions(env, params, key_a, N)
            obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key_s, N), state, action, params
            )
            return state, (obs, state.time, term, trunc, info["final_observation"])

        return jax.lax.scan(body, state, jax.random.split(key_roll, steps))[1]

    obs, time, term, trunc, final_obs = map(np.asarray, jax.jit(rollout)(jax.random.PRNGKey(7)))
    ended = term | trunc
    assert (term if want == "terminated" else trunc).any()
    if want == "truncated":
        assert not term.any()
        # every env is cut at exactly max_steps_in_episode
        assert trunc.sum(axis=0).min() == steps // kwargs["max_steps_in_episode"]
    # auto-reset: the state after an ending step is a fresh episode (time 0), and the obs handed
    # back is the reset obs, not the final one (which is kept in info)
    assert (time[ended] == 0).all() and (time[~ended] > 0).all()
    assert not np.array_equal(obs[ended], final_obs[ended])
    np.testing.assert_array_equal(obs[~ended], final_obs[~ended])


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("Cartpole-P-v0", "CartPole-P-v0"),
        ("Cartpole-V-v0", "CartPole-V-v0"),
        ("Pendulm-V-v0", "Pendulum-V-v0"),
        ("cartpole-v1", "CartPole-v1"),
        ("MemoryChain-bsuit", "MemoryChain-bsuite"),
        ("Breakout-Minatar", "Breakout-MinAtar"),
    ],
)
def test_check_suggests_the_close_id(typo: str, suggestion: str) -> None:
    with pytest.raises(UserError, match=f"did you mean '{suggestion}'"):
        check(typo)


def test_mnist_bandit_is_refused_with_the_reason() -> None:
    with pytest.raises(UserError, match="downloads MNIST"):
        check("MNISTBandit-bsuite")


@pytest.mark.parametrize("env_id", ["Pendulum-P-v0", "Pendulum-v1", "MountainCarContinuous-v0"])
def test_continuous_action_space_has_no_action_count_one_line_error(env_id: str) -> None:
    env, params = make(env_id)
    space = env.action_space(params)
    assert isinstance(space, spaces.Box) and not env.discrete_actions
    assert not hasattr(space, "n")
    with pytest.raises(UserError, match=re.escape(CONTINUOUS_ACTIONS_MESSAGE)) as err:
        _ = space.n
    assert isinstance(err.value, ContinuousActionsError) and "\n" not in str(err.value)
    with pytest.raises(ContinuousActionsError):
        _ = env.num_actions


@pytest.mark.parametrize("env_id", ["Pendulum-P-v0", "MountainCarContinuous-v0"])
def test_ppo_builds_and_trains_a_tiny_run_on_continuous_actions(env_id: str) -> None:
    from sweepax.agents.config import PPOStatic, PPOSweep
    from sweepax.agents.ppo import make_train

    static = PPOStatic(
        env=env_id, memoryless=True, hidden_size=8, num_envs=2, num_steps=8, total_steps=32,
        update_epochs=1, num_minibatches=1, eval_steps=8, normalize_obs=True,
    )  # fmt: skip
    out = jax.jit(make_train(static))(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    assert out.loss_total.shape == (2,) and np.all(np.isfinite(np.asarray(out.loss_total)))
    # A 1-d Gaussian with log_std ~ 0 (its init): entropy about 0.5 * log(2 pi e).
    np.testing.assert_allclose(out.entropy, 0.5 * np.log(2 * np.pi * np.e), atol=0.05)


def test_make_passes_env_options_and_rejects_bad_ones() -> None:
    env, params = make("MemoryChain-bsuite", num_bits=3, memory_length=20)
    assert params.memory_length == 20 and env.obs_dim == 5
    ref, _ = gymnax.make("MemoryChain-bsuite", num_bits=3)
    assert ref.observation_space(ref.default_params).shape == (5,)
    with pytest.raises(UserError, match="perfect_memory"):
        make("CartPole-P-v0", perfect_memory=True)
    with pytest.raises(UserError, match="bad option"):
        make("CartPole-v1", no_such_option=1)
    make("CartPole-P-v0", perfect_memory=False)  # PPO always passes it
