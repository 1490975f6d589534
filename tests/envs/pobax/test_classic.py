"""Classic ``.POMDP`` envs: episodes by hand, the previous-action model, jit/vmap, registry."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import registry
from sweepax.envs.pobax import classic, families, pomdp_file
from sweepax.errors import UserError

FAMILY = families()[0]


@functools.cache  # one env object per id and options: each compiles once per module
def _make(env_id: str, **kwargs):
    return FAMILY.build(re.fullmatch(FAMILY.pattern, env_id), **kwargs)


def _play(env, params, start: int, actions: list[int]):
    """From hidden state ``start``: per step obs (final obs when it ends), reward, flags."""
    _, state = env.reset(jax.random.PRNGKey(0), params)
    state = state.replace(state=jnp.int32(start))
    step = jax.jit(env.step)
    out = {"obs": [], "reward": [], "terminated": [], "truncated": []}
    for i, a in enumerate(actions):
        _, state, reward, terminated, truncated, info = step(
            jax.random.PRNGKey(i), state, a, params
        )
        out["obs"].append(np.asarray(info["final_observation"]).tolist())
        out["reward"].append(float(reward))
        out["terminated"].append(bool(terminated))
        out["truncated"].append(bool(truncated))
    return out


def _one_hot(i: int, n: int) -> list[float]:
    return np.eye(n, dtype=np.float32)[i].tolist()


# tmaze2.POMDP: states 0/1 = start with the goal up/down, 2-5 corridor, 6/7 junction, 8 end;
# actions 0 up, 1 down, 2 east, 3 west; observations: start up, start down, corridor, junction, end
@pytest.mark.parametrize(("start", "turn", "reward"), [(0, 0, 4.0), (1, 1, 4.0), (0, 1, -0.1)])
def test_tmaze2_episode_by_hand(start: int, turn: int, reward: float) -> None:
    env, params = _make("tmaze2")
    run = _play(env, params, start, [3, 2, 2, 2, turn])
    corridor, junction, end = _one_hot(2, 5), _one_hot(3, 5), _one_hot(4, 5)
    assert run["obs"] == [_one_hot(start, 5), corridor, corridor, junction, end]
    assert run["reward"] == [0.0, 0.0, 0.0, 0.0, pytest.approx(reward)]
    assert run["terminated"] == [False] * 4 + [True]
    assert not any(run["truncated"])
    assert env.gamma == pytest.approx(0.9)


def test_fully_observable_tiger_episode_by_hand() -> None:
    # states: 0 tiger-left-start, 1 tiger-right-start, 2 tiger-left, 3 tiger-right, 4 terminal;
    # actions: 0 listen, 1 open-left, 2 open-right
    env, params = _make("fully_observable_tiger-alt-start")
    run = _play(env, params, 0, [0, 0, 2])
    assert run["obs"] == [_one_hot(2, 5), _one_hot(2, 5), _one_hot(4, 5)]
    assert run["reward"] == [-1.0, -1.0, 10.0]
    assert run["terminated"] == [False, False, True]
    run = _play(env, params, 1, [1])
    assert run["reward"] == [10.0] and run["terminated"] == [True]
    assert env.obs_dim == 5 and env.num_actions == 3 and env.gamma == pytest.approx(0.95)


def test_tiger_listening_hears_the_right_side_85_percent_of_the_time() -> None:
    env, params = _make("tiger-alt-start")
    n = 4000
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    np.testing.assert_array_equal(obs, np.tile(_one_hot(0, 4), (n, 1)))  # 'init'
    assert 0.45 < float((state.state == 0).mean()) < 0.55
    step = jax.vmap(env.step, in_axes=(0, 0, None, None))
    obs, state, reward, *_ = step(keys, state, 0, params)
    heard = np.asarray(obs).argmax(-1)  # 1 tiger-left, 2 tiger-right
    right = heard == np.where(np.asarray(state.state) == 2, 1, 2)
    assert abs(right.mean() - 0.85) < 0.03
    np.testing.assert_array_equal(reward, -1.0)


def test_paint_observes_the_pair_of_state_and_previous_action() -> None:
    # paint.POMDP's observations depend on the action: hidden state = s * 4 + previous action;
    # states 0 NFL-NBL-NPA, 1 NFL-NBL-PA, 2 FL-NBL-PA, 3 FL-BL-NPA, 4 TERM, 5 the start state;
    # actions 0 paint, 1 inspect, 2 ship, 3 reject; observations NBL, BL, terminal, start
    env, params = _make("fully_observable_paint")
    assert env.num_states == 24 and env.obs_dim == 24
    run = _play(env, params, 1 * 4 + 0, [2])  # ship an unflawed painted item
    assert run["obs"] == [_one_hot(4 * 4 + 2, 24)] and run["reward"] == [1.0]
    assert run["terminated"] == [True]
    env, params = _make("paint")
    assert env.obs_dim == 4
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.tolist() == _one_hot(3, 4) and 20 <= int(state.state) < 24


def test_observations_that_depend_on_the_action_extend_the_state_by_hand() -> None:
    text = """discount: 0.5
states: a end
actions: go stay
observations: o1 o2
start: a
T: go : a : end 1.0
T: go : end : end 1.0
T: stay identity
O: go : a : o1 1.0
O: go : end : o2 1.0
O: stay : * : o2 1.0
R: go : a : end : * 1.0
"""
    m = classic.build_model(pomdp_file.parse(text))
    # index s * 2 + previous action: 0 (a, go), 1 (a, stay), 2 (end, go), 3 (end, stay),
    # 4 (start, go), 5 (start, stay)
    go, stay = np.zeros((6, 6)), np.zeros((6, 6))
    go[[0, 1], 2] = 1  # a -go-> end, reached by go
    go[[4, 5], 0] = 1  # start -go-> a (the file's start), reached by go
    stay[[0, 1], 1] = 1
    stay[[4, 5], 1] = 1
    for t in (go, stay):
        t[2, 2] = t[3, 3] = 1  # end is absorbing under every action: it keeps its pair
    np.testing.assert_array_equal(m.T, np.stack([go, stay]))
    np.testing.assert_array_equal(
        m.phi, [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]
    )
    np.testing.assert_array_equal(m.p0, [0, 0, 0, 0, 0.5, 0.5])
    np.testing.assert_array_equal(m.terminal, [False, False, True, True, False, False])
    assert m.R[0, 0, 2] == m.R[0, 1, 3] == 1.0 and m.R.sum() == 4.0
    assert m.gamma == 0.5


@pytest.mark.parametrize("env_id", classic.IDS)
def test_every_id_resets_and_steps_when_jitted_and_vmapped(env_id: str) -> None:
    env, params = _make(env_id)
    n = 3
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (n, env.obs_dim) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs.sum(-1), 1.0)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    actions = jnp.arange(n, dtype=jnp.int32) % env.num_actions
    obs, state, reward, terminated, truncated, info = step(keys, state, actions, params)
    assert obs.shape == (n, env.obs_dim) and obs.dtype == jnp.float32
    assert reward.shape == (n,) and reward.dtype == jnp.float32
    assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    assert state.state.dtype == jnp.int32 and state.time.dtype == jnp.int32
    assert set(info) >= {"terminated", "truncated", "final_observation", "discount"}
    assert env.name == env_id and env.observation_space(params).shape == (env.obs_dim,)
    assert 0 < env.gamma <= 1


def test_time_limit_truncates() -> None:
    env, params = _make("4x3_nonterminating", max_steps_in_episode=3)
    assert params.max_steps_in_episode == 3
    run = _play(env, params, 0, [0, 0, 0])
    assert run["truncated"] == [False, False, True] and not any(run["terminated"])


def test_registry_make_builds_pobax_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "FAMILIES", [*registry.FAMILIES, *families()])
    env, params = registry.make("fully_observable_cheese.95", max_steps_in_episode=50)
    assert isinstance(env, classic.ClassicPOMDP) and env.name == "fully_observable_cheese.95"
    assert params.max_steps_in_episode == 50 and env.gamma == pytest.approx(0.95)
    assert "tiger-alt-start" in registry.known_envs()
    with pytest.raises(UserError, match="did you mean 'cheese.95'"):
        registry.check("cheese95")
    with pytest.raises(UserError, match="perfect_memory is only defined"):
        registry.make("hallway", perfect_memory=True)
    env, _ = registry.make("rocksample_5_5", perfect_memory=True)
    assert env.perfect_memory and env.name == "rocksample_5_5"
