"""POBAX's state-observation MuJoCo ids (``hopper``, ``walker2d``, ``halfcheetah``, ``ant``): brax's
whole observation under POBAX's names. Loading a brax body takes tens of seconds here, so the
episode below drives brax's own episode and auto-reset wrappers around a stand-in for the body;
brax's real bodies against POBAX itself: ``test_brax_state_agreement.py`` (``-m pobax``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import brax_masked, check, known_envs, make, registry
from sweepax.envs.brax_state import IDS, BraxState
from sweepax.errors import UserError


class Ramp:
    """A brax ``Env`` without physics: the state and observation are 17 numbers, ``0 .. 16`` at
    reset, each rising by the summed action per step; the reward is the first one, and the
    episode ends once it reaches 10."""

    observation_size, action_size = 17, 6

    def reset(self, rng: jax.Array):
        from brax.envs.base import State

        q = jnp.arange(17.0)
        return State(q, q, jnp.zeros(()), jnp.zeros(()), {}, {})

    def step(self, state, action: jax.Array):
        q = state.pipeline_state + jnp.sum(action)
        return state.replace(
            pipeline_state=q, obs=q, reward=q[0], done=(q[0] >= 10).astype(jnp.float32)
        )


def test_the_four_pobax_state_ids_are_registered_and_recorded() -> None:
    assert IDS == ("hopper", "walker2d", "halfcheetah", "ant")
    for env_id in IDS:
        check(env_id)
        assert registry.vmappable(env_id) and env_id in known_envs()
    with pytest.raises(UserError, match="did you mean 'halfcheetah'"):
        check("halfcheeta")
    with pytest.raises(UserError, match="perfect_memory"):
        make("ant", perfect_memory=True)
    assert registry.definition("ant") == {
        "id": "ant",
        "family": "<hopper|walker2d|halfcheetah|ant> (POBAX's state-observation MuJoCo, brax)",
        "library": "brax",
        "library_version": "0.14.2",
        "brax_env": "ant",
        "backend": "positional",
        "kept_indices": list(range(27)),
        "full_obs_dim": 27,
        "max_steps_in_episode": 1000,
        "source": "POBAX 0.0.1 get_env (brax_envs, no mask) and BraxGymnaxWrapper",
    }


def test_halfcheetah_is_brax_s_whole_observation_clipped_ended_and_restarted(monkeypatch) -> None:
    loaded = []
    monkeypatch.setattr(brax_masked, "load_brax_env", lambda name: loaded.append(name) or Ramp())
    env, params = make("halfcheetah", max_steps_in_episode=3)
    assert loaded == ["halfcheetah"] and isinstance(env, BraxState) and env.name == "halfcheetah"
    assert env.obs_dim == env.full_obs_dim == 17 and env.kept_indices == tuple(range(17))
    assert make("halfcheetah")[1].max_steps_in_episode == 1000
    assert env.action_space(params).shape == (6,) and not env.discrete_actions
    assert not hasattr(env, "gamma")  # the sweep's gamma, as POBAX passes its own
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(obs, np.arange(17.0))
    out = []
    for _ in range(6):  # 7 per joint, clipped to 1: the state rises by 6 per step
        obs, state, reward, terminated, truncated, _ = env.step(
            jax.random.PRNGKey(0), state, jnp.full((6,), 7.0), params
        )
        out.append((float(obs[0]), float(obs[16]), float(reward), bool(terminated)))
        assert not truncated
    assert out == [
        (6.0, 22.0, 6.0, False),
        (0.0, 16.0, 12.0, True),  # reached 10: the next episode's first observation
        (6.0, 22.0, 6.0, False),
        (0.0, 16.0, 12.0, True),
        (6.0, 22.0, 6.0, False),
        (0.0, 16.0, 12.0, True),
    ]
    # slower, the 3-step limit ends the episode first: truncated, not terminated
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    ends = []
    for _ in range(4):
        obs, state, reward, terminated, truncated, _ = env.step(
            jax.random.PRNGKey(0), state, jnp.full((6,), 0.25), params
        )
        ends.append((float(obs[0]), bool(terminated), bool(truncated)))
    assert ends == [
        (1.5, False, False),
        (3.0, False, False),
        (0.0, False, True),  # the limit: the next episode's first observation
        (1.5, False, False),
    ]
