"""Perfect memory for PocMan (POBAX's grid and the aligned one) and Battleship (refused, because
POBAX itself cannot run it): hand-computed grids and what planning a POBAX file says."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from sweepax.envs import registry
from sweepax.envs.pobax import families
from sweepax.errors import UserError
from sweepax.sweep import load, plan

RIGHT = 3
START = [15, 9]  # the agent's cell, (row, column)
SPAWNS = [[7, 8], [7, 10], [9, 8], [9, 10]]  # the ghosts'
PILLS = [[3, 1], [3, 17], [15, 1], [15, 17]]


def _make(env_id: str):
    for fam in families():
        if (match := re.fullmatch(fam.pattern, env_id)) is not None:
            return fam.build(match, perfect_memory=True)
    raise AssertionError(env_id)


def _two_steps_right(env_id: str):
    """The grid at reset and after two steps right (the ghosts still in their pen)."""
    env, params = _make(env_id)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert env.obs_shape == (21, 19, 6) and obs.shape == (env.obs_dim,) == (21 * 19 * 6,)
    grids = [np.asarray(obs).reshape(env.obs_shape)]
    step = jax.jit(env.step)
    rewards = []
    for t in range(2):
        obs, state, reward, terminated, _, _ = step(jax.random.PRNGKey(t), state, RIGHT, params)
        assert not terminated
        rewards.append(float(reward))
        grids.append(np.asarray(obs).reshape(env.obs_shape))
    assert rewards == [10.0, 10.0]  # the pellets at (15, 10) and (15, 11)
    np.testing.assert_array_equal(state.player, [15, 11])
    return env, [{name: g[..., i] for i, name in enumerate(LAYERS)} for g in grids]


LAYERS = ("pellets", "pills", "ghosts", "ghosts_before", "agent", "last_action")


def _cells(layer: np.ndarray, value: float) -> list[list[int]]:
    return sorted(np.argwhere(layer == value).tolist())


def test_pocman_perfect_memory_draws_pobax_s_grid_transposed() -> None:
    env, (reset, _, after) = _two_steps_right("pocman")
    open_ = env.grid  # 1 open, 0 wall; POBAX's layers start from -1 open, 0 wall
    # the agent's layer is at (row, column) ...
    assert _cells(reset["agent"], 1) == [START] and _cells(after["agent"], 1) == [[15, 11]]
    # ... the others at (column, row): pills, ghosts
    assert _cells(reset["pills"], 1) == sorted([c, r] for r, c in PILLS)
    assert _cells(reset["ghosts"], -1) == _cells(reset["ghosts_before"], 1)
    assert _cells(reset["ghosts"], -1) == sorted([c, r] for r, c in SPAWNS)
    # every open cell holds a pellet: the tunnel's end (9, 0) shows on the wall cell (0, 9),
    # while (9, 0) itself shows open and empty
    pellets = reset["pellets"]
    assert pellets[0, 9] == 1 and open_[0, 9] == 0 and pellets[9, 0] == -1
    # rows 19 and 20 would land in columns 19 and 20: dropped, so those rows show no pellet
    np.testing.assert_array_equal(pellets[19], [0] + [-1] * 17 + [0])
    np.testing.assert_array_equal(pellets[20], [0] * 19)
    expected = -open_.copy()
    for r, c in np.argwhere(open_ == 1):
        if r < 19:
            expected[c, r] = 1
    np.testing.assert_array_equal(pellets, expected)
    # two pellets eaten: (15, 10) and (15, 11) leave (10, 15) and (11, 15), which are walls;
    # eaten pellets are parked at (0, 0), which now shows one
    assert pellets[10, 15] == pellets[11, 15] == 1 and pellets[0, 0] == 0
    assert after["pellets"][10, 15] == after["pellets"][11, 15] == 0
    assert after["pellets"][0, 0] == 1
    # the ghost layer holds POBAX's fright counter: 0 at reset (-1), then -1, -2 (not frightened)
    assert _cells(after["ghosts"], -2) == sorted([c, r] for r, c in SPAWNS)
    assert np.all(reset["last_action"] == 0) and np.all(after["last_action"] == RIGHT)


def test_pocman_aligned_draws_the_same_state_where_it_is() -> None:
    env, (reset, _, after) = _two_steps_right("pocman_aligned")
    assert env.name == "pocman_aligned" and env.gamma == 0.95
    np.testing.assert_array_equal(reset["pellets"], env.grid)  # a pellet on every open cell
    assert _cells(reset["pills"], 1) == PILLS
    assert _cells(reset["ghosts"], -1) == SPAWNS == _cells(reset["ghosts_before"], 1)
    assert _cells(after["agent"], 1) == [[15, 11]]
    # eaten pellets leave open, empty cells; none shows at (0, 0)
    assert after["pellets"][15, 10] == after["pellets"][15, 11] == -1
    assert after["pellets"][0, 0] == 0 and after["pellets"][15, 12] == 1
    assert _cells(after["ghosts"], -1) == SPAWNS  # -1 while not frightened
    assert np.all(after["last_action"] == RIGHT)


def test_pocman_without_perfect_memory_is_one_env_under_both_ids() -> None:
    for env_id in ("pocman", "pocman_aligned"):
        env, params = registry.make(env_id)
        obs, _ = env.reset(jax.random.PRNGKey(0), params)
        assert env.obs_dim == 11 and env.obs_shape is None
        assert obs.tolist() == [0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0]


POBAX_FILE = """
hparams = {{
    "entry": "-m pobax.algos.ppo",
    "args": [{{"env": "{env}", "perfect_memory": True, "memoryless": False,
               "lr": [2.5e-4], "total_steps": 1024, "num_envs": 4, "num_steps": 32}}],
}}
"""


def _plan(tmp_path, env_id: str) -> plan.Plan:
    path = tmp_path / "study.py"
    path.write_text(POBAX_FILE.format(env=env_id))
    return plan.plan(load.load(path), None)


def test_planning_pocman_perfect_memory_says_which_grid(tmp_path) -> None:
    built = _plan(tmp_path, "pocman")
    assert built.tasks[0].static["perfect_memory"] is True
    assert built.notes == [
        "pocman: perfect_memory draws POBAX 0.0.1's state grid, as its published results: "
        "pellets, pills and ghosts transposed (rows 19-20 dropped), eaten ones marking (0, 0); "
        "env 'pocman_aligned' draws it aligned"
    ]
    assert "results differ from POBAX's" in _plan(tmp_path, "pocman_aligned").notes[0]


def test_battleship_perfect_memory_is_refused_because_pobax_cannot_run_it(tmp_path) -> None:
    with pytest.raises(UserError) as err:
        _plan(tmp_path, "battleship_10")
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        f"{tmp_path / 'study.py'}: args[0]: key 'perfect_memory': env 'battleship_10': "
        "perfect_memory is not offered: POBAX 0.0.1 itself cannot run Battleship with perfect "
        "memory"
    )
    assert "(1, 4, 10, -90)" in message and message.endswith("; set it to False")
    with pytest.raises(UserError, match="POBAX 0.0.1 itself cannot run"):
        registry.make("battleship_3", perfect_memory=True)
