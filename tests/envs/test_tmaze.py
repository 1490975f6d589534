"""T-Maze rewards on fixed action sequences, time limit, perfect memory, jit/vmap; registry."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import known_envs, make
from sweepax.envs.registry import check
from sweepax.envs.tmaze import EAST, GOAL_DOWN, GOAL_UP, NORTH, SOUTH, WEST, TMaze
from sweepax.errors import UserError

START_UP, START_DOWN, CORRIDOR, JUNCTION = [1, 1, 0], [0, 1, 1], [1, 0, 1], [0, 1, 0]


def _reset_with_goal(env: TMaze, params, goal: int):
    """Reset, then force the goal side (the obs is recomputed for it)."""
    _, state = env.reset(jax.random.PRNGKey(0), params)
    state = state.replace(goal=jnp.int32(goal))
    return env.get_obs(state, params), state


def _play(env: TMaze, params, goal: int, actions: list[int]):
    """Step through ``actions``: lists of obs (incl. the first), reward, terminated, truncated."""
    obs, state = _reset_with_goal(env, params, goal)
    out = {"obs": [np.asarray(obs)], "reward": [], "terminated": [], "truncated": [], "pos": []}
    key = jax.random.PRNGKey(1)
    for a in actions:
        key, key_step = jax.random.split(key)
        obs, state, reward, terminated, truncated, _ = env.step(key_step, state, a, params)
        out["obs"].append(np.asarray(obs))
        out["reward"].append(float(reward))
        out["terminated"].append(bool(terminated))
        out["truncated"].append(bool(truncated))
        out["pos"].append(int(state.pos))
    return out


@pytest.mark.parametrize("n", [1, 5, 10])
@pytest.mark.parametrize("goal", [GOAL_UP, GOAL_DOWN])
def test_tmaze_optimal_sequence_returns_four_in_n_plus_two_steps(n: int, goal: int) -> None:
    env, params = make(f"tmaze_{n}")
    turn = NORTH if goal == GOAL_UP else SOUTH
    run = _play(env, params, goal, [EAST] * (n + 1) + [turn])
    assert sum(run["reward"]) == pytest.approx(4.0)
    assert run["terminated"] == [False] * (n + 1) + [True]
    assert run["reward"][:-1] == [0.0] * (n + 1)
    assert not any(run["truncated"])


@pytest.mark.parametrize("goal", [GOAL_UP, GOAL_DOWN])
def test_tmaze_wrong_turn_at_junction_gives_minus_point_one_and_ends(goal: int) -> None:
    env, params = make("tmaze_3")
    wrong = SOUTH if goal == GOAL_UP else NORTH
    run = _play(env, params, goal, [EAST] * 4 + [wrong])
    assert run["reward"][-1] == pytest.approx(-0.1)
    assert run["terminated"][-1] and not any(run["terminated"][:-1])


def test_tmaze_observations_follow_bakker_code() -> None:
    env, params = make("tmaze_3")
    for goal, start in [(GOAL_UP, START_UP), (GOAL_DOWN, START_DOWN)]:
        run = _play(env, params, goal, [EAST] * 4)
        np.testing.assert_array_equal(run["obs"][0], start)
        for obs in run["obs"][1:4]:
            np.testing.assert_array_equal(obs, CORRIDOR)
        np.testing.assert_array_equal(run["obs"][4], JUNCTION)
        assert run["obs"][0].dtype == np.float32


def test_tmaze_walls_block_and_north_south_in_corridor_do_nothing() -> None:
    env, params = make("tmaze_2")
    # West at the start wall, N/S at the start and in the corridor, East into the junction's wall.
    actions = [WEST, NORTH, SOUTH, EAST, NORTH, SOUTH, WEST, WEST, EAST, EAST, EAST, EAST, EAST]
    run = _play(env, params, GOAL_UP, actions)
    assert run["pos"] == [0, 0, 0, 1, 1, 1, 0, 0, 1, 2, 3, 3, 3]
    assert run["reward"] == [0.0] * len(actions)
    assert not any(run["terminated"])
    # The cue stays visible while the agent stays at cell 0.
    np.testing.assert_array_equal(run["obs"][3], START_UP)


def test_tmaze_episode_resets_after_turn_and_time_counts_steps() -> None:
    env, params = make("tmaze_2")
    obs, state = _reset_with_goal(env, params, GOAL_UP)
    key = jax.random.PRNGKey(3)
    for t in range(3):
        obs, state, *_ = env.step(key, state, EAST, params)
        assert int(state.time) == t + 1
    obs, state, reward, terminated, truncated, info = env.step(key, state, NORTH, params)
    assert bool(terminated) and float(reward) == pytest.approx(4.0)
    # Auto-reset: back at cell 0, time 0, obs shows a cue; final_observation is the junction.
    assert int(state.pos) == 0 and int(state.time) == 0
    assert list(np.asarray(obs)) in (START_UP, START_DOWN)
    np.testing.assert_array_equal(info["final_observation"], JUNCTION)


def test_tmaze_truncates_at_max_steps_in_episode() -> None:
    env, params = make("tmaze_3", max_steps_in_episode=5)
    run = _play(env, params, GOAL_UP, [WEST] * 7)
    assert run["truncated"] == [False] * 4 + [True, False, False]
    assert not any(run["terminated"])
    assert run["pos"] == [0] * 7


def test_tmaze_default_time_limit_is_1000() -> None:
    _, params = make("tmaze_10")
    assert params.max_steps_in_episode == 1000


@pytest.mark.parametrize("goal", [GOAL_UP, GOAL_DOWN])
def test_tmaze_perfect_memory_appends_goal_to_every_observation(goal: int) -> None:
    env, params = make("tmaze_3", perfect_memory=True)
    assert env.observation_space(params).shape == (5,)
    run = _play(env, params, goal, [EAST] * 4 + [WEST])
    onehot = [1.0, 0.0] if goal == GOAL_UP else [0.0, 1.0]
    for obs in run["obs"]:
        assert obs.shape == (5,)
        np.testing.assert_array_equal(obs[3:], onehot)
    np.testing.assert_array_equal(run["obs"][4][:3], JUNCTION)


def test_tmaze_reset_samples_both_goals() -> None:
    env, params = make("tmaze_5")
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    frac_down = float(states.goal.mean())
    assert 0.3 < frac_down < 0.7


@pytest.mark.parametrize("perfect_memory", [False, True])
def test_tmaze_resets_and_steps_when_jitted_and_vmapped(perfect_memory: bool) -> None:
    env, params = make("tmaze_10", perfect_memory=perfect_memory)
    n = 6
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, state = reset(keys, params)
    dim = 5 if perfect_memory else 3
    assert obs.shape == (n, dim) and obs.dtype == jnp.float32
    actions = jnp.array([0, 1, 2, 3, 2, 2], jnp.int32)
    obs, state, reward, terminated, truncated, info = step(keys, state, actions, params)
    assert obs.shape == (n, dim) and obs.dtype == jnp.float32
    assert reward.shape == (n,) and reward.dtype == jnp.float32
    assert terminated.shape == (n,) and terminated.dtype == jnp.bool_
    assert truncated.shape == (n,) and truncated.dtype == jnp.bool_
    assert state.time.shape == (n,) and state.time.dtype == jnp.int32
    assert state.pos.dtype == jnp.int32 and state.goal.dtype == jnp.int32
    assert set(info) >= {"terminated", "truncated", "final_observation", "discount"}
    np.testing.assert_array_equal(state.pos, [0, 0, 1, 0, 1, 1])
    assert env.action_space(params).n == 4


@pytest.mark.parametrize("perfect_memory", [False, True])
def test_tmaze_step_with_draws_made_ahead_equals_step_with_the_key(perfect_memory: bool) -> None:
    """A rollout draws the T-Maze's randomness for all its steps before its loop; the states,
    observations, rewards and flags must be those of gymnax's step with the same keys, bit
    for bit, including auto-resets after a turn and after the time limit."""
    env, params = make("tmaze_3", perfect_memory=perfect_memory, max_steps_in_episode=7)
    n, steps = 16, 40
    key_reset, key_act, key_steps = jax.random.split(jax.random.PRNGKey(3), 3)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, n), params)
    # mostly East: some reach the junction and turn, others run out of time
    p_action = jnp.array([0.1, 0.1, 0.7, 0.1])
    actions = jax.random.choice(key_act, 4, (steps, n), p=p_action).astype(jnp.int32)
    keys = jax.random.split(key_steps, steps * n).reshape(steps, n, 2)
    draws = jax.jit(jax.vmap(jax.vmap(env.draw_step)))(keys)  # all steps at once
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    step_drawn = jax.jit(jax.vmap(env.step_drawn, in_axes=(0, 0, 0, None)))
    ended = {"terminated": 0, "truncated": 0}
    drawn_state = state
    for t in range(steps):
        out = step(keys[t], state, actions[t], params)
        drawn = step_drawn(jax.tree.map(lambda d: d[t], draws), drawn_state, actions[t], params)
        for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(drawn), strict=True):
            np.testing.assert_array_equal(a, b)
        state, drawn_state = out[1], drawn[1]
        ended["terminated"] += int(out[3].sum())
        ended["truncated"] += int(out[4].sum())
    assert ended["terminated"] > 0 and ended["truncated"] > 0  # both resets were compared
    assert 0 < int(draws[1].sum()) < steps * n  # both goal sides drawn


def test_registry_make_builds_any_hallway_length() -> None:
    env, params = make("tmaze_37")
    assert isinstance(env, TMaze) and env.hallway_length == 37 and env.junction == 38
    assert env.name == "tmaze_37"
    assert "tmaze_5" in known_envs() and "tmaze_10" in known_envs()
    for env_id in known_envs():
        check(env_id)


def test_registry_check_suggests_close_id() -> None:
    with pytest.raises(UserError) as err:
        check("tmaze10")
    msg = str(err.value)
    assert msg.startswith("unknown env 'tmaze10'; known: tmaze_<N> (e.g. tmaze_5, tmaze_10), ")
    assert msg.endswith("; did you mean 'tmaze_10'?") and "\n" not in msg


@pytest.mark.parametrize(
    ("env_id", "suggestion"),
    [("TMaze_5", "tmaze_5"), ("tmaze-7", "tmaze_7"), ("tmaze12", "tmaze_12")],
)
def test_registry_check_suggests_for_typos(env_id: str, suggestion: str) -> None:
    with pytest.raises(UserError, match=f"did you mean '{suggestion}'"):
        check(env_id)


def test_registry_check_unknown_without_suggestion_lists_known() -> None:
    with pytest.raises(UserError) as err:
        check("Humanoid-v4")  # of MuJoCo, only Hopper / Walker2d / HalfCheetah / Ant (MJX)
    msg = str(err.value)
    assert msg.startswith("unknown env 'Humanoid-v4'; known: tmaze_<N>")
    assert "<gymnax id> (e.g. CartPole-v1" in msg
    assert "did you mean" not in msg


def test_registry_rejects_zero_hallway() -> None:
    with pytest.raises(UserError, match="hallway length must be >= 1"):
        make("tmaze_0")
