"""simple_chain, compass_world, RockSample, Battleship, PocMan, Fishing: hand episodes, jit/vmap."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs.pobax import families, fishing, rocksample
from sweepax.envs.pobax.fishing import Fishing
from sweepax.envs.pobax.rocksample import Config, RockSample

NORTH, EAST, SOUTH, WEST, SAMPLE = 0, 1, 2, 3, 4


@functools.cache  # one env object per id and options: each compiles once per module
def _make(env_id: str, **kwargs):
    for fam in families():
        match = re.fullmatch(fam.pattern, env_id)
        if match is not None:
            return fam.build(match, **kwargs)
    raise AssertionError(env_id)


def _play(env, params, state, actions: list[int]):
    step = jax.jit(env.step)
    out = {"obs": [], "reward": [], "terminated": [], "truncated": []}
    for i, a in enumerate(actions):
        _, state, reward, terminated, truncated, info = step(
            jax.random.PRNGKey(i), state, a, params
        )
        out["obs"].append(np.asarray(info["final_observation"]))
        out["reward"].append(float(reward))
        out["terminated"].append(bool(terminated))
        out["truncated"].append(bool(truncated))
    return out, state


def test_simple_chain_pays_one_after_ten_steps_then_restarts() -> None:
    env, params = _make("simple_chain")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.tolist() == [1.0] and env.num_actions == 1 and env.gamma is None
    run, state = _play(env, params, state, [0] * 12)
    assert run["reward"] == [0.0] * 9 + [1.0, 0.0, 0.0]
    assert run["terminated"] == [False] * 9 + [True, False, False]
    assert all(o.tolist() == [1.0] for o in run["obs"]) and int(state.pos) == 2


def test_compass_world_episodes_by_hand() -> None:
    # inner cells rows/columns 1..6; headings 0 N, 1 E, 2 S, 3 W; actions 0 forward, 1 right, 2 left
    env, params = _make("compass_world")
    orange, yellow, red, blue, green = np.eye(5, dtype=np.float32).tolist()
    none = [0.0] * 5
    _, state = env.reset(jax.random.PRNGKey(0), params)

    def start(row: int, col: int, heading: int):
        return state.replace(position=jnp.array([row, col], jnp.int32), heading=jnp.int32(heading))

    run, _ = _play(env, params, start(5, 5, 1), [0, 1, 0, 0, 1])
    assert [o.tolist() for o in run["obs"]] == [yellow, none, red, red, none]
    assert run["reward"] == [0.0] * 5 and not any(run["terminated"])
    run, _ = _play(env, params, start(2, 2, 3), [0, 0, 1, 0, 1, 2, 2])
    assert [o.tolist() for o in run["obs"]] == [blue, blue, none, orange, none, orange, green]
    assert run["reward"] == [0.0] * 6 + [1.0]
    assert run["terminated"] == [False] * 6 + [True]
    assert env.gamma is None and env.num_actions == 3


def test_compass_world_starts_anywhere_but_the_goal() -> None:
    env, params = _make("compass_world")
    keys = jax.random.split(jax.random.PRNGKey(0), 3000)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    cells = np.concatenate([np.asarray(state.position), np.asarray(state.heading)[:, None]], -1)
    distinct = {tuple(c) for c in cells}
    assert len(distinct) == 6 * 6 * 4 - 1 and (1, 1, 3) not in distinct


def test_battleship_episode_by_hand() -> None:
    env, params = _make("battleship_3")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    board = jnp.array([[1, 1, 0], [0, 0, 0], [0, 0, 0]], jnp.int32)  # one ship: cells 0 and 1
    run, _ = _play(env, params, state.replace(board=board), [8, 0, 0, 1])
    assert run["reward"] == [-1.0, -1.0, -1.0, 9.0]
    assert run["terminated"] == [False, False, False, True]
    unfired = lambda *fired: [0.0 if c in fired else 1.0 for c in range(9)]  # noqa: E731
    assert [o.tolist() for o in run["obs"]] == [
        [0.0, *unfired(8)],  # miss
        [1.0, *unfired(0, 8)],  # hit
        [0.0, *unfired(0, 8)],  # the same cell again: no new hit
        [1.0, *unfired(0, 1, 8)],  # the last ship cell
    ]
    assert env.gamma == 1.0 and env.num_actions == 9 and env.obs_dim == 10


@pytest.mark.parametrize("size", [3, 5, 10])
def test_battleship_boards_hold_every_ship_without_overlap(size: int) -> None:
    env, params = _make(f"battleship_{size}")
    keys = jax.random.split(jax.random.PRNGKey(2), 300)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    boards = np.asarray(state.board)
    lengths = {3: (2,), 5: (3, 2), 10: (5, 4, 3, 2)}[size]
    np.testing.assert_array_equal(boards.sum((1, 2)), sum(lengths))
    # the longest ship lies in one row or one column: both happen
    rows_full = (boards.sum(2) >= lengths[0]).any(1)
    cols_full = (boards.sum(1) >= lengths[0]).any(1)
    assert rows_full.any() and cols_full.any() and (rows_full | cols_full).all()


def _row_col(size: int, row: int, col: int) -> list[float]:
    eye = np.eye(size, dtype=np.float32)
    return [*eye[row], *eye[col]]


def test_rocksample_episode_by_hand() -> None:
    # checks are exact when the half-efficiency distance is huge: (1 + 2 ** -0) / 2 = 1
    env = RockSample(
        "rocksample_5_2", Config(5, 2, half_efficiency_distance=1e30), [[1, 1], [3, 0]]
    )
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    state = state.replace(position=jnp.array([1, 0], jnp.int32), rock_morality=jnp.array([1, 0]))
    actions = [WEST, EAST, SAMPLE, SAMPLE, 5, 6, NORTH, EAST, EAST, EAST]
    run, _ = _play(env, params, state, actions)
    assert run["reward"] == [0, 0, 10, -10, 0, 0, 0, 0, 0, 10]
    assert run["terminated"] == [False] * 9 + [True]
    cells = [(1, 0), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1), (0, 1), (0, 2), (0, 3), (0, 4)]
    rocks = [[0, 0]] * 4 + [[-1, 0], [0, -1]] + [[0, 0]] * 4  # rock 0 sampled: bad now
    for obs, (row, col), seen in zip(run["obs"], cells, rocks, strict=True):
        assert obs.tolist() == _row_col(5, row, col) + seen


def test_rocksample_perfect_memory_by_hand() -> None:
    env = RockSample(
        "rocksample_5_2",
        Config(5, 2, half_efficiency_distance=1e30),
        [[1, 1], [3, 0]],
        perfect_memory=True,
    )
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(state.memory, [0.0, 0.0])
    state = state.replace(position=jnp.array([1, 0], jnp.int32), rock_morality=jnp.array([1, 0]))
    actions = [6, WEST, EAST, 5, SAMPLE, EAST, EAST, EAST]
    run, state = _play(env, params, state, actions)
    assert run["reward"] == [0, 0, 0, 0, 10, 0, 0, 10]
    memory = [[0, -1], [0, -1], [0, -1], [1, -1], [-1, -1], [-1, -1], [-1, -1], [-1, -1]]
    assert [o[10:].tolist() for o in run["obs"]] == memory  # a sampled rock reads -1
    assert run["terminated"][-1]
    np.testing.assert_array_equal(state.memory, [0.0, 0.0])  # the next episode starts empty


def test_rocksample_check_is_right_with_the_half_distance_probability() -> None:
    env, params = _make("rocksample_15_15", layout_seed=3)
    n = 4000
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    assert 0.45 < float(state.rock_morality.mean()) < 0.55
    far = int(np.argmax(np.linalg.norm(env.rock_positions - [0, 13], axis=-1)))
    state = state.replace(position=jnp.tile(jnp.array([0, 13], jnp.int32), (n, 1)))
    obs, state, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, None, None))(
        keys, state, 5 + far, params
    )
    seen = np.asarray(obs)[:, 2 * 15 + far]
    truth = np.where(np.asarray(state.rock_morality)[:, far] == 1, 1.0, -1.0)
    dist = np.linalg.norm(env.rock_positions[far] - [0, 13])
    expected = (1 + 2 ** (-dist / 20)) / 2
    assert dist > 10 and abs((seen == truth).mean() - expected) < 0.03
    np.testing.assert_array_equal(reward, 0.0)


@pytest.mark.parametrize("env_id", tuple(rocksample.CONFIGS))
def test_rock_layouts_are_distinct_cells_off_the_exit_and_follow_the_seed(env_id: str) -> None:
    env, _ = _make(env_id)
    size, k = env.size, env.k
    rocks = env.rock_positions
    assert rocks.shape == (k, 2) and len({tuple(r) for r in rocks}) == k
    assert (rocks[:, 0] < size).all() and (rocks[:, 1] < size - 1).all() and (rocks >= 0).all()
    np.testing.assert_array_equal(_make(env_id, layout_seed=0)[0].rock_positions, rocks)
    assert not np.array_equal(_make(env_id, layout_seed=1)[0].rock_positions, rocks)


@pytest.mark.parametrize(
    "env_id",
    [
        "simple_chain",
        "compass_world",
        *rocksample.CONFIGS,
        "battleship_3",
        "battleship_10",
        "pocman",
        "fishing_0",
        "fishing_8",
    ],
)
def test_resets_and_steps_when_jitted_and_vmapped(env_id: str) -> None:
    env, params = _make(env_id, max_steps_in_episode=50)
    assert params.max_steps_in_episode == 50
    n = 4
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (n, env.obs_dim) and obs.dtype == jnp.float32
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    actions = jnp.arange(n, dtype=jnp.int32) % env.num_actions
    obs, state, reward, terminated, truncated, info = step(keys, state, actions, params)
    assert obs.shape == (n, env.obs_dim) and obs.dtype == jnp.float32
    assert reward.shape == (n,) and reward.dtype == jnp.float32
    assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    assert state.time.dtype == jnp.int32
    assert set(info) >= {"terminated", "truncated", "final_observation", "discount"}
    assert env.name == env_id and env.observation_space(params).shape == (env.obs_dim,)
    assert env.action_space(params).n == env.num_actions


def _pocman_frozen(state, player, ghosts):
    """PocMan with the agent and ghosts placed by hand; the ghosts wait (do not move)."""
    return state.replace(
        player=jnp.array(player, jnp.int32),
        ghosts=jnp.array(ghosts, jnp.int32),
        ghost_wait=jnp.full((4,), 100, jnp.int32),
    )


def test_pocman_episode_by_hand() -> None:
    # (row, column); row 15 is "XO X S   P   S X OX": the agent starts at (15, 9)
    env, params = _make("pocman")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    # open up/right/down/left (down reads POBAX's cell (16, 15)), pellet near, ghost near,
    # ghosts seen up/left/down/right, frightened
    assert obs.tolist() == [0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    state = _pocman_frozen(state, [15, 9], [[15, 12], [15, 6], [7, 10], [9, 8]])
    run, state = _play(env, params, state, [0, 3, 3, 3])
    assert run["reward"] == [10.0, 10.0, 10.0, 10.0]  # the start cell's pellet, then one a step
    assert [o.tolist() for o in run["obs"][:2]] == [
        [0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0],  # up is a wall: stays; a ghost seen left and right
        [1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0],  # (15, 10): ghost 0 two cells away
    ]
    assert run["terminated"] == [False, False, False, True]  # walked into ghost 0
    assert not any(run["truncated"]) and env.gamma == 0.95 and env.num_actions == 4


def test_pocman_power_pill_makes_ghosts_edible_once() -> None:
    env, params = _make("pocman")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    state = _pocman_frozen(state, [15, 2], [[7, 8], [7, 10], [9, 8], [14, 1]])
    run, state = _play(env, params, state, [1, 0, 2, 0])
    # pill (+50) and its cell's pellet; ghost 3 eaten (+200) and pellet; back; ghost 3 gone
    assert run["reward"] == [60.0, 210.0, 0.0, 0.0]
    assert [o[10] for o in run["obs"]] == [1.0] * 4 and not any(run["terminated"])
    np.testing.assert_array_equal(state.ghosts[3], [9, 10])  # back at its spawn
    np.testing.assert_array_equal(state.ghost_edible, [True, True, True, False])
    assert int(state.frightened) == 27


def test_pocman_ghosts_leave_their_pen_in_turn_and_the_time_limit_truncates() -> None:
    env, params = _make("pocman", max_steps_in_episode=13)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    spawns = np.asarray(state.ghosts)
    moved_after = []
    for t in range(13):
        _, state, _, terminated, truncated, _ = jax.jit(env.step)(
            jax.random.PRNGKey(t), state, 0, params
        )
        moved_after.append((np.asarray(state.ghosts) != spawns).any(-1).tolist())
        if terminated:
            break
    # ghost i first moves at step 3, 7, 12, 17
    first = [next((t + 1 for t, m in enumerate(moved_after) if m[i]), None) for i in range(4)]
    assert first == [3, 7, 12, None]
    assert bool(truncated) and not bool(terminated)


def _tiny_sea(**changes):
    """A 5 x 5 map: a current to the right at (2, 2), one down at (4, 4), a spot at (2, 4), an
    obstacle at (0, 2); currents never change, the spot never refills."""
    config = {
        "size": 5,
        "kelp_prob": 0.0,
        "current_bump_reward": -0.1,
        "currents": [
            {"mapping": [[2, 2]], "change_rate": 0, "directions": [1]},
            {"mapping": [[4, 4]], "change_rate": 0, "directions": [2]},
        ],
        "rewards": [{"position": [2, 4], "change_rate": 0}],
        "kelp_map": np.zeros((5, 5), int).tolist(),
        "glass_map": np.zeros((5, 5), int).tolist(),
        "starts": [[2, 0]],
    }
    obstacle = np.zeros((5, 5), int)
    obstacle[0, 2] = 1
    config["obstacle_map"] = obstacle.tolist()
    config.update(changes)
    return Fishing("fishing_test", config)


UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def test_fishing_episode_by_hand() -> None:
    env = _tiny_sea()
    params = env.default_params
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    np.testing.assert_array_equal(state.position, [2, 0])
    window = np.asarray(obs).reshape(5, 5, 6)  # rows 0..4, columns -2..2 of the map
    assert window[0, 4, 0] == 1.0 and window[..., 0].sum() == 1.0  # the obstacle at (0, 2)
    assert window[2, 4].tolist() == [0, 0, 1, 0, 0, 0]  # the current at (2, 2) flows right
    actions = [RIGHT, RIGHT, RIGHT, LEFT, LEFT, UP, UP, UP]
    run, state = _play(env, params, state, actions)
    # (2, 1); onto the current: pushed to (2, 3); the spot (2, 4): +1; (2, 3); onto the current
    # again: back to (2, 3); up (1, 3), (0, 3); up again: the edge
    assert run["reward"] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(state.position, [0, 3])
    np.testing.assert_array_equal(state.spots, [0.0])  # fished, never refills
    assert not any(run["terminated"]) and env.gamma is None and env.obs_dim == 150


def test_fishing_current_bump_costs_and_blocks_swimming_against_it() -> None:
    env = _tiny_sea(starts=[[3, 4]])
    params = env.default_params
    _, state = env.reset(jax.random.PRNGKey(0), params)
    # onto the downward current at (4, 4): pushed into the edge, -0.1 while it stays there
    run, state = _play(env, params, state, [DOWN, UP, LEFT])
    assert run["reward"] == pytest.approx([-0.1, -0.1, 0.0])
    np.testing.assert_array_equal(state.position, [4, 3])  # up is against the current: stays


def test_fishing_obstacles_hide_the_cells_behind_them() -> None:
    obstacle = np.zeros((5, 5), np.float32)
    obstacle[1, 1] = obstacle[1, 2] = obstacle[2, 1] = 1.0
    no_glass = np.zeros((5, 5), np.int32)
    hidden = np.asarray(fishing.occlusion(jnp.asarray(obstacle), jnp.asarray(no_glass)))
    expected = np.zeros((5, 5), bool)
    expected[0, 0:3] = True  # behind (1, 1) and (1, 2) seen from the centre
    expected[1:3, 0] = expected[0, 0] = True  # behind (1, 1) and (2, 1) on the left
    np.testing.assert_array_equal(hidden, expected)
    glass = no_glass.copy()
    glass[1, 2] = 1  # glass hides nothing
    hidden = np.asarray(fishing.occlusion(jnp.asarray(obstacle), jnp.asarray(glass)))
    assert hidden[0, 2] == False and hidden[0, 0] and hidden[0, 1] == False  # noqa: E712


@pytest.mark.parametrize("env_id", fishing.IDS)
def test_fishing_maps_load_and_end_only_at_the_time_limit(env_id: str) -> None:
    env, params = _make(env_id)
    assert params.max_steps_in_episode == 1000 and env.obs_shape == (5, 5, 6)
    assert env.current_probs.shape == (len(env.current_cells), 5)
    np.testing.assert_allclose(env.current_probs.sum(-1), 1.0, rtol=1e-6)
    assert env.obstacle[tuple(env.starts[0])] == 0
