"""POBAX's Navix mazes on navix: registry, a hand-computed episode, the field of view, PPO on it.

Agreement with POBAX itself, step by step: ``test_navix_agreement.py`` (``-m pobax``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import check, make
from sweepax.envs.navix_mazes import (
    IDS,
    MASKED,
    field_of_view,
    layout_grid,
    line_cells,
    view_blockers,
)
from sweepax.errors import UserError

MAZE_00 = [
    "##############",
    "#...#...#....#",
    "#.#.#.#####.##",
    "#.#.#....#...#",
    "#.#.#.#..#...#",
    "#.#...#..#.#.#",
    "#.#####..#.#.#",
    "#.....#....#.#",
    "##############",
]
EAST, SOUTH, WEST, NORTH = range(4)  # navix's headings
CCW, CW, FORWARD = range(3)


def test_registry_knows_pobax_maze_ids_and_refuses_annas_maze_in_one_line() -> None:
    assert (
        tuple(f"Navix-DMLab-Maze-{f}{n}-v0" for n in ("00", "01", "02", "03") for f in ("", "F-"))
        == IDS
    )
    for env_id in IDS:
        check(env_id)
    for env_id in ("Navix-Annas-Maze-v0", "Navix-Annas-Maze-F-v0"):
        with pytest.raises(UserError) as err:
            check(env_id)
        msg = str(err.value)
        assert msg.startswith(f"bad env {env_id!r}: its maze layout is in neither POBAX 0.0.1")
        assert "Navix-DMLab-Maze-01/02/03-v0" in msg and "\n" not in msg
    with pytest.raises(UserError, match="did you mean 'Navix-DMLab-Maze-01-v0'"):
        check("Navix-DMLab-Maze-1-v0")
    with pytest.raises(UserError, match="perfect_memory"):
        make("Navix-DMLab-Maze-01-v0", perfect_memory=True)


def test_layouts_sizes_and_time_limits_are_pobax_s() -> None:
    assert layout_grid("00").tolist() == [[-1 if ch == "#" else 0 for ch in r] for r in MAZE_00]
    shapes = {"00": (9, 14), "01": (11, 21), "02": (19, 31), "03": (27, 41)}
    limits = {"00": 1000, "01": 2000, "02": 4000, "03": 6000}
    for n, shape in shapes.items():
        assert layout_grid(n).shape == shape
        env, params = make(f"Navix-DMLab-Maze-{n}-v0")
        assert params.max_steps_in_episode == env.navix_env.max_steps == limits[n]
        assert env.obs_shape == (4, 7, 2) and env.obs_dim == 56 and env.num_actions == 3
        full, _ = make(f"Navix-DMLab-Maze-F-{n}-v0")
        assert full.obs_shape == (2 * shape[0] - 1, 2 * shape[1] - 1, 6)
        assert env.gamma == full.gamma == 0.99
    short, params = make("Navix-DMLab-Maze-00-v0", max_steps_in_episode=7)
    assert params.max_steps_in_episode == short.navix_env.max_steps == 7


def test_bresenham_lines_break_ties_as_pobax_does() -> None:
    assert line_cells(3, 3, 0, 3) == [(3, 3), (2, 3), (1, 3), (0, 3)]
    assert line_cells(3, 3, 0, 2) == [(3, 3), (2, 3), (1, 2), (0, 2)]
    assert line_cells(3, 3, 1, 2) == [(3, 3), (2, 3), (1, 2)]  # the tie: straight up first
    assert line_cells(3, 3, 0, 1) == [(3, 3), (2, 2), (1, 2), (0, 1)]
    assert line_cells(3, 3, 2, 2) == [(3, 3), (2, 2)]


def test_field_of_view_hides_what_a_wall_ahead_shadows() -> None:
    layers = np.zeros((4, 7, 2), np.float32)
    layers[2, 3, 0] = 1.0  # a wall right in front of the agent (bottom centre, (3, 3))
    layers[0, 3, 1] = 1.0  # the goal behind it
    layers[3, 0, 1] = 1.0  # another goal mark on the agent's row, in sight
    seen = np.asarray(field_of_view(jnp.asarray(layers), jnp.asarray(view_blockers())))
    hidden = {(1, 3), (0, 3), (0, 2), (0, 4), (1, 2), (1, 4)}  # lines through (2, 3)
    for r in range(4):
        for c in range(7):
            want = [MASKED, MASKED] if (r, c) in hidden else layers[r, c].tolist()
            assert seen[r, c].tolist() == want, (r, c)


def _placed(env, position, heading, goal):
    """A reset state with the player and goal moved by hand."""
    _, ts = env.reset(jax.random.PRNGKey(0))
    entities = dict(ts.state.entities)
    entities["player"] = entities["player"].replace(
        position=jnp.asarray([position], jnp.int32), direction=jnp.asarray([heading], jnp.int32)
    )
    entities["goal"] = entities["goal"].replace(position=jnp.asarray([goal], jnp.int32))
    state = ts.state.replace(entities=entities)
    return ts.replace(state=state, observation=env.navix_env.observation_fn(state))


@pytest.mark.parametrize("env_id", ["Navix-DMLab-Maze-00-v0", "Navix-DMLab-Maze-F-00-v0"])
def test_hand_computed_episode_walks_to_the_goal_then_resets(env_id: str) -> None:
    env, params = make(env_id)
    key = jax.random.PRNGKey(1)
    # bottom-left corridor of maze 00: player at (7, 1) facing east, goal two cells east
    ts = _placed(env, (7, 1), EAST, (7, 3))
    start = np.asarray(ts.observation).reshape(env.obs_shape)
    if env.fully_observable:
        # centred on the agent: grid (r, c) at (r - 7 + 8, c - 1 + 13); heading east everywhere
        assert start[8, 13, 0] == 0 and start[8, 12, 0] == -1 and start[9, 13, 0] == -1
        assert start[8, 14, 0] == 0 and start[7, 13, 0] == 0 and start[6, 13, 0] == 0
        assert np.all(start[..., 2] == 1) and np.all(start[..., 3:] == 0)
        goal_rows = {8 + r - 7 for r in (7, 3)}  # POBAX marks the goal's row and column as rows
        for row in range(start.shape[0]):
            want = row in goal_rows
            assert np.all(start[row, 12:26, 1] == want) and np.all(start[row, :12, 1] == 0)
    else:
        # first person, facing up: the goal two cells ahead, its corridor cell in between free
        assert start[1, 3, 1] == 1 and (start[..., 1] == 1).sum() == 1
        assert start[2, 3, 0] == 0 and start[3, 3, 0] == 0
    seen = []
    for action in (FORWARD, FORWARD, CW):
        obs, ts, reward, terminated, truncated, info = env.step(key, ts, action, params)
        player = ts.state.get_player()
        seen.append(
            (tuple(np.asarray(player.position).tolist()), float(reward), bool(terminated),
             bool(truncated), int(ts.t))
        )  # fmt: skip
        if terminated:
            ended = ts
    assert seen[:2] == [((7, 2), 0.0, False, False, 1), ((7, 3), 1.0, True, False, 2)]
    # the step after the goal starts the next episode: action ignored, reward 0, t = 0, and
    # the observation is that of navix's reset from the key it kept
    assert seen[2][1:] == (0.0, False, False, 0)
    fresh = env.navix_env.reset(ended.state.key)
    np.testing.assert_array_equal(obs, np.asarray(fresh.observation).reshape(-1))
    assert obs.dtype == jnp.float32 and obs.shape == (env.obs_dim,)


def test_time_limit_truncates_and_goal_never_starts_under_the_player() -> None:
    env, params = make("Navix-DMLab-Maze-00-v0", max_steps_in_episode=3)
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    _, ts = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    player = np.asarray(ts.state.entities["player"].position[:, 0])
    goal = np.asarray(ts.state.entities["goal"].position[:, 0])
    grid = layout_grid("00")
    assert np.all(grid[player[:, 0], player[:, 1]] == 0) and np.all(
        grid[goal[:, 0], goal[:, 1]] == 0
    )
    # POBAX's exclusion: the rows numbered by the player's row and column hold no goal
    assert not np.any((goal[:, 0] == player[:, 0]) | (goal[:, 0] == player[:, 1]))
    step = jax.vmap(env.step, in_axes=(0, 0, None, None))
    truncs = []
    for _ in range(4):
        _, ts, _, terminated, truncated, _ = step(keys, ts, CCW, params)  # turning never ends
        assert not np.any(terminated)
        truncs.append(np.asarray(truncated))
    assert [t.all() for t in truncs] == [False, False, True, False]


def test_ppo_builds_and_trains_a_tiny_run_on_a_maze() -> None:
    from sweepax.agents.config import PPOStatic, PPOSweep
    from sweepax.agents.ppo import make_train

    static = PPOStatic(
        env="Navix-DMLab-Maze-00-v0", hidden_size=8, num_envs=2, num_steps=8, total_steps=32,
        update_epochs=1, num_minibatches=1, eval_steps=8, action_concat=True,
    )  # fmt: skip
    out = jax.jit(make_train(static))(jax.tree.map(jnp.float32, PPOSweep()), jnp.int32(0))
    assert out.loss_total.shape == (2,) and np.all(np.isfinite(np.asarray(out.loss_total)))
    # three actions, a near-uniform policy at init: entropy about log 3
    np.testing.assert_allclose(out.entropy, np.log(3), atol=0.05)


@pytest.mark.parametrize(
    "stem", ["navix_01_ppo", "navix_01_ppo_memoryless", "navix_01_ppo_observable"]
)
def test_navix_study_files_plan_in_pobax_format(stem: str) -> None:
    from pathlib import Path

    from sweepax.sweep import load, plan

    path = Path(__file__).resolve().parents[2] / "hyperparams" / "navix" / f"{stem}.py"
    built = plan.plan(load.load(path), None)
    (task,) = built.tasks
    assert built.study.name == stem and built.study.entry.written == "-m pobax.algos.ppo"
    want = "Navix-DMLab-Maze-F-01-v0" if stem.endswith("observable") else "Navix-DMLab-Maze-01-v0"
    assert task.static["env"] == want and task.static["memoryless"] == stem.endswith("memoryless")
    assert task.static["action_concat"] is True and task.static["anneal_lr"] is True
    assert {(c["lr"], c["lambda0"]) for c in task.configs} == {
        (lr, lam) for lr in (2.5e-4, 2.5e-5) for lam in (0.9, 0.95)
    }
    assert len(task.seeds) == 3 and task.static["total_steps"] == 1_000_000
