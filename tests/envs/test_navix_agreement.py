"""Our Navix mazes against POBAX 0.0.1 itself: the same reset key and actions give the same steps.

POBAX runs in its own venv (build/pobax-venv, made by bench/pobax/pobax_venv.py) through
``navix_pobax_driver.py`` in a subprocess; this process never imports it. Run with
``nox -s pobax_tests`` (or ``pytest -m pobax``).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import make
from sweepax.envs.navix_mazes import IDS, LAYOUTS

pytestmark = pytest.mark.pobax

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("navix_pobax_driver.py")
# long enough for a random walk to end episodes both ways: at the goal and at the time limit
STEPS = {"00": 4000, "01": 6000, "02": 9000, "03": 13000}
# the same walk in a maze's first-person and fully observable ids (odd seeds: goals reached)
SEEDS = {"00": 11, "01": 13, "02": 15, "03": 17}


@pytest.fixture(scope="module")
def recorded(pobax_record, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """POBAX's episodes of every maze id, recorded in one driver process."""
    out = tmp_path_factory.mktemp("navix")
    jobs = [
        {"env": env_id, "seed": SEEDS[n], "steps": STEPS[n], "out": str(out / f"{i}.npz")}
        for i, env_id in enumerate(IDS)
        for n in [_layout(env_id)]
    ]
    pobax_record(DRIVER, jobs, out)
    return {job["env"]: Path(job["out"]) for job in jobs}


def _layout(env_id: str) -> str:
    return next(n for n in LAYOUTS if f"-{n}-" in env_id)


def _replay(env_id: str, seed: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    env, params = make(env_id)

    def one(state, action):
        obs, state, reward, terminated, truncated, _ = env.step(
            jax.random.PRNGKey(0), state, action, params
        )
        where = (state.state.get_player().position, state.state.entities["goal"].position[0])
        return state, (obs, reward, terminated, truncated, *where)

    obs0, state = env.reset(jax.random.PRNGKey(seed), params)
    _, (obs, reward, terminated, truncated, positions, goals) = jax.jit(
        lambda s, a: jax.lax.scan(one, s, a)
    )(state, jnp.asarray(actions))
    return {
        "env": env,
        "obs": np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        "rewards": np.asarray(reward),
        "terminated": np.asarray(terminated),
        "truncated": np.asarray(truncated),
        "positions": np.asarray(positions),
        "goals": np.asarray(goals),
    }


@pytest.mark.parametrize("env_id", IDS)
def test_maze_agrees_with_pobax_step_by_step(env_id: str, recorded: dict[str, Path]) -> None:
    rec = dict(np.load(recorded[env_id]))
    ours = _replay(env_id, SEEDS[_layout(env_id)], rec["actions"])
    env = ours["env"]
    pobax_obs = rec["obs"].reshape(len(rec["obs"]), *env.obs_shape)
    np.testing.assert_array_equal(ours["obs"].reshape(pobax_obs.shape), pobax_obs)
    np.testing.assert_array_equal(ours["rewards"], rec["rewards"])
    np.testing.assert_array_equal(ours["terminated"], rec["step_types"] == 2)
    np.testing.assert_array_equal(ours["truncated"], rec["step_types"] == 1)
    np.testing.assert_array_equal(ours["terminated"] | ours["truncated"], rec["dones"])
    np.testing.assert_array_equal(ours["positions"], rec["positions"][1:])
    np.testing.assert_array_equal(ours["goals"], rec["goals"][1:])
    assert env.gamma == float(rec["gamma"]) == 0.99
    goals, limits = int(ours["terminated"].sum()), int(ours["truncated"].sum())
    print(f"{env_id}: {len(rec['actions'])} steps, {goals} goals, {limits} time limits, identical")
    # the walk covered episode ends of both kinds and the reset after each
    assert goals >= 1 and limits >= 1, (goals, limits)
    if "-F-" not in env_id:  # the field of view hid cells, and the goal was seen
        assert (pobax_obs == -1).any() and (pobax_obs[..., 1] == 1).any()
