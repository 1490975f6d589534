"""Ours against POBAX 0.0.1 itself: the same keys and actions give the same episodes, step by step.

POBAX runs in its own venv (build/pobax-venv, made by bench/pobax/pobax_venv.py) through
``pobax_driver.py`` in a subprocess; this process never imports it. Run with
``nox -s pobax_tests`` (or ``pytest -m pobax``).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs.pobax import classic, families, fishing, rocksample

pytestmark = pytest.mark.pobax

ROOT = Path(__file__).resolve().parents[3]
DRIVER = Path(__file__).with_name("pobax_driver.py")
STEPS = 3000
# a random walk rarely ends these
LONGER = {"hallway": 30_000, "fully_observable_hallway": 30_000, "rocksample_11_11": 10_000,
          "rocksample_15_15": 20_000, "compass_world": 20_000, "battleship_10": 6000}  # fmt: skip
NEVER_ENDING = {"4x3_nonterminating", "cheese.95_nonterminating"}  # no terminal state
BATTLESHIPS = ("battleship_3", "battleship_5", "battleship_10")
IDS = classic.IDS + ("simple_chain",) + tuple(rocksample.CONFIGS) + ("compass_world",) + BATTLESHIPS
IDS += ("pocman",)
LAYOUT_SEED = 7  # RockSample: the rocks of POBAX's PPO at --seed 7
# RockSample with perfect memory: runs of POBAX's PerfectMemoryWrapper, compared within episodes
MEMORY_RUNS = [("rocksample_5_5", seed) for seed in range(4)]
MEMORY_RUNS += [("rocksample_7_8", seed) for seed in range(8)]
# PocMan with perfect memory: a run of POBAX's PocManStateWrapper (its grid of the state)
POCMAN_MEMORY_SEED = IDS.index("pocman")  # the plain run's keys and actions: pills, ghosts eaten


def _family(env_id: str):
    for fam in families():
        match = re.fullmatch(fam.pattern, env_id)
        if match is not None:
            return fam, match
    raise AssertionError(f"no family for {env_id}")


def _steps(env_id: str) -> int:
    return LONGER.get(env_id, STEPS)


def _options(env_id: str) -> dict:
    return {"layout_seed": LAYOUT_SEED} if env_id in rocksample.CONFIGS else {}


def _job(seed: int, env_id: str, out: Path) -> dict:
    job = {"env": env_id, "seed": seed, "steps": _steps(env_id), "out": str(out / f"{seed}.npz")}
    if env_id in rocksample.CONFIGS:  # get_env's key: the one POBAX's PPO derives from its seed
        job["env_key"] = np.asarray(rocksample.layout_key(LAYOUT_SEED)).tolist()
    return job


@pytest.fixture(scope="module")
def recorded(pobax_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """POBAX's episodes of every id, recorded in one driver process."""
    out = tmp_path_factory.mktemp("pobax")
    jobs = [_job(seed, env_id, out) for seed, env_id in enumerate(IDS + fishing.IDS)]
    for env_id, seed in [*MEMORY_RUNS, ("pocman", POCMAN_MEMORY_SEED)]:
        job = _job(seed, env_id, out)
        jobs.append({**job, "perfect_memory": True, "out": str(out / f"{env_id}-{seed}-pm.npz")})
    request = out / "request.json"
    request.write_text(json.dumps(jobs))
    done = subprocess.run(
        [pobax_python, str(DRIVER), str(request)], capture_output=True, text=True, cwd=out
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {_name(job): Path(job["out"]) for job in jobs}


def _name(job: dict) -> str:
    return f"{job['env']}-{job['seed']}-pm" if job.get("perfect_memory") else job["env"]


def _replay_with_resets(env_id: str, rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ours where POBAX resets with keys of its own: each episode starts from POBAX's reset key."""
    fam, match = _family(env_id)
    env, params = fam.build(match, max_steps_in_episode=2**31 - 1)
    reset_keys = jnp.asarray(rec["reset_keys"])
    # the key of the reset that follows step t, should step t end an episode
    after = np.minimum(np.cumsum(rec["dones"]), len(reset_keys) - 1)

    def one(state, xs):
        action, reset_key = xs
        obs, state, reward, terminated, truncated, _ = env.step(
            jax.random.PRNGKey(0), state, action, params
        )
        obs_re, state_re = env.reset(reset_key, params)
        state = jax.tree.map(lambda x, y: jnp.where(terminated, x, y), state_re, state)
        return state, (jnp.where(terminated, obs_re, obs), reward, terminated, truncated)

    obs0, state = env.reset(reset_keys[0], params)
    _, (obs, reward, terminated, truncated) = jax.jit(lambda s, xs: jax.lax.scan(one, s, xs))(
        state, (jnp.asarray(rec["actions"]), reset_keys[after])
    )
    return {
        "env": env,
        "obs": np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        "rewards": np.asarray(reward),
        "terminated": np.asarray(terminated),
        "truncated": np.asarray(truncated),
    }


def _replay(env_id: str, rec: dict[str, np.ndarray], **options) -> dict[str, np.ndarray]:
    """Our env from the same raw keys and actions; no time limit (POBAX's step has none)."""
    fam, match = _family(env_id)
    options = {**_options(env_id), **options}
    env, params = fam.build(match, max_steps_in_episode=2**31 - 1, **options)
    keys = jnp.asarray(rec["keys"])

    def one(state, xs):
        obs, state, reward, terminated, truncated, _ = env.step(xs[0], state, xs[1], params)
        return state, (obs, state, reward, terminated, truncated)

    obs0, state = env.reset(keys[0], params)
    _, (obs, states, reward, terminated, truncated) = jax.jit(
        lambda s, xs: jax.lax.scan(one, s, xs)
    )(state, (keys[1:], jnp.asarray(rec["actions"])))
    return {
        "env": env,
        "states": states,
        "obs": np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        "rewards": np.asarray(reward),
        "terminated": np.asarray(terminated),
        "truncated": np.asarray(truncated),
    }


@pytest.mark.parametrize("env_id", IDS)
def test_env_agrees_with_pobax_step_by_step(env_id: str, recorded: dict[str, Path]) -> None:
    rec = dict(np.load(recorded[env_id]))
    ours = (_replay_with_resets if "reset_keys" in rec else _replay)(env_id, rec)
    assert len(rec["actions"]) == _steps(env_id)
    assert len(np.unique(rec["actions"])) == ours["env"].num_actions
    np.testing.assert_array_equal(ours["obs"], rec["obs"])
    np.testing.assert_array_equal(ours["rewards"], rec["rewards"])
    np.testing.assert_array_equal(ours["terminated"], rec["dones"])
    assert not ours["truncated"].any()
    episodes = int(rec["dones"].sum())
    print(f"{env_id}: {len(rec['actions'])} steps, {episodes} episodes ended, identical")
    assert episodes == 0 if env_id in NEVER_ENDING else episodes >= 3, episodes


@pytest.mark.parametrize("env_id", classic.IDS)
def test_classic_models_and_discounts_are_pobax_s(env_id: str, recorded: dict[str, Path]) -> None:
    rec = np.load(recorded[env_id])
    fam, match = _family(env_id)
    env, _ = fam.build(match)
    for name in ("T", "R", "p0", "phi"):
        np.testing.assert_array_equal(getattr(env.model, name), rec[f"model/{name}"], name)
    assert env.gamma == pytest.approx(float(rec["gamma"]))


@pytest.mark.parametrize("env_id", tuple(rocksample.CONFIGS))
def test_rocksample_rocks_samples_and_checks_are_pobax_s(
    env_id: str, recorded: dict[str, Path]
) -> None:
    rec = np.load(recorded[env_id])
    fam, match = _family(env_id)
    env, _ = fam.build(match, **_options(env_id))
    np.testing.assert_array_equal(env.rock_positions, rec["rock_positions"])
    actions, rewards = rec["actions"], rec["rewards"]
    # the agreement above covered paid samples and noisy checks, not only walking
    assert np.any((actions == 4) & (rewards == 10.0)) and np.any(
        (actions == 4) & (rewards == -10.0)
    )
    checked = rec["obs"][1:, 2 * env.size :][actions > 4]
    assert np.any(checked == 1.0) and np.any(checked == -1.0)
    assert env.gamma is None  # POBAX trains RockSample with the agent's gamma


@pytest.mark.parametrize("env_id", BATTLESHIPS)
def test_battleship_boards_are_pobax_s(env_id: str, recorded: dict[str, Path]) -> None:
    rec = dict(np.load(recorded[env_id]))
    ours = _replay(env_id, rec)
    np.testing.assert_array_equal(ours["states"].board, rec["states/.board"])
    np.testing.assert_array_equal(ours["states"].hits_misses, rec["states/.hits_misses"])
    assert ours["env"].gamma == float(rec["gamma"]) == 1.0


def test_pocman_ghosts_pills_and_pellets_are_pobax_s(recorded: dict[str, Path]) -> None:
    rec = dict(np.load(recorded["pocman"]))
    ours = _replay("pocman", rec)
    # POBAX (Jumanji) keeps ghosts and pellets as (column, row)
    np.testing.assert_array_equal(ours["states"].ghosts, rec["states/.ghost_locations"][..., ::-1])
    np.testing.assert_array_equal(ours["states"].pellets_left, rec["states/.pellets"])
    np.testing.assert_array_equal(ours["states"].frightened, rec["states/.frightened_state_time"])
    # the agreement covered eaten pills (+50 with the cell's pellet) and eaten ghosts (+200)
    rewards = set(rec["rewards"].tolist())
    assert {10.0, 60.0} <= rewards and (200.0 in rewards or 210.0 in rewards), rewards
    assert ours["env"].gamma == float(rec["gamma"]) == 0.95


def test_pocman_perfect_memory_is_pobax_s_grid_step_by_step(recorded: dict[str, Path]) -> None:
    """``pocman`` with perfect memory draws POBAX's grid, transposed layers included;
    ``pocman_aligned`` plays the same episodes with its layers where the state has them."""
    rec = dict(np.load(recorded[f"pocman-{POCMAN_MEMORY_SEED}-pm"]))
    assert rec["obs"].shape == (STEPS + 1, 21, 19, 6)
    ours = _replay("pocman", rec, perfect_memory=True)
    assert ours["env"].obs_shape == (21, 19, 6)
    np.testing.assert_array_equal(ours["obs"], rec["obs"].reshape(STEPS + 1, -1))
    np.testing.assert_array_equal(ours["rewards"], rec["rewards"])
    np.testing.assert_array_equal(ours["terminated"], rec["dones"])
    episodes = int(rec["dones"].sum())
    assert episodes >= 3 and {60.0, 200.0} <= set(rec["rewards"].tolist())  # pill, ghost eaten
    grids = rec["obs"].astype(np.float32)
    assert (grids[..., 2] > 0).any() and (grids[..., 2] < -1).any()  # frightened; POBAX's count
    # the same episodes drawn aligned: the agent's layer is the same, the others are not
    aligned = _replay("pocman_aligned", rec, perfect_memory=True)
    np.testing.assert_array_equal(aligned["rewards"], rec["rewards"])
    np.testing.assert_array_equal(aligned["terminated"], rec["dones"])
    aligned_grids = aligned["obs"].reshape(grids.shape)
    np.testing.assert_array_equal(aligned_grids[..., 4:], grids[..., 4:])
    assert not np.array_equal(aligned_grids[..., 0], grids[..., 0])
    print(f"pocman perfect memory: {STEPS} steps, {episodes} episodes ended, identical")


@pytest.mark.parametrize("env_id", fishing.IDS)
def test_fishing_agrees_with_pobax_step_by_step(env_id: str, recorded: dict[str, Path]) -> None:
    """POBAX ends Fishing's episodes at its 1000-step limit: ours truncates there."""
    rec = dict(np.load(recorded[env_id]))
    fam, match = _family(env_id)
    env, params = fam.build(match)
    keys = jnp.asarray(rec["keys"])

    def one(state, xs):
        obs, state, reward, terminated, truncated, _ = env.step(xs[0], state, xs[1], params)
        return state, (obs, state, reward, terminated, truncated)

    obs0, state = env.reset(keys[0], params)
    _, (obs, states, reward, terminated, truncated) = jax.jit(
        lambda s, xs: jax.lax.scan(one, s, xs)
    )(state, (keys[1:], jnp.asarray(rec["actions"])))
    obs = np.concatenate([np.asarray(obs0)[None], np.asarray(obs)])
    np.testing.assert_array_equal(obs, rec["obs"].reshape(len(rec["obs"]), -1))  # (5, 5, 6)
    np.testing.assert_array_equal(np.asarray(reward), rec["rewards"])
    np.testing.assert_array_equal(np.asarray(truncated), rec["dones"])
    assert not np.asarray(terminated).any() and int(rec["dones"].sum()) == STEPS // 1000
    np.testing.assert_array_equal(states.position, rec["states/.position"])
    np.testing.assert_array_equal(states.currents, rec["states/.current_directions"])
    np.testing.assert_array_equal(states.spots, rec["states/.rewards_active"])
    assert (np.asarray(reward) == 1.0).any()  # fished
    print(f"{env_id}: {STEPS} steps, identical")


def test_rocksample_perfect_memory_agrees_with_pobax_within_episodes(
    recorded: dict[str, Path],
) -> None:
    compared = carried = 0
    for env_id, seed in MEMORY_RUNS:
        rec = dict(np.load(recorded[f"{env_id}-{seed}-pm"]))
        ours = _replay(env_id, rec, perfect_memory=True)
        np.testing.assert_array_equal(ours["rewards"], rec["rewards"])
        np.testing.assert_array_equal(ours["terminated"], rec["dones"])
        size = ours["env"].size
        np.testing.assert_array_equal(ours["obs"][:, : 2 * size], rec["obs"][:, : 2 * size])
        # identical through the first episode; obs[t + 1] follows step t
        end = int(np.argmax(rec["dones"]))
        assert rec["dones"][end]
        np.testing.assert_array_equal(ours["obs"][: end + 1], rec["obs"][: end + 1])
        compared += end + 1
        # then POBAX carries the memory into the next episode (fresh rocks); ours starts empty
        np.testing.assert_array_equal(ours["obs"][end + 1, 2 * size :], 0.0)
        np.testing.assert_array_equal(rec["obs"][end + 1, 2 * size :], rec["obs"][end, 2 * size :])
        carried += bool(np.any(rec["obs"][end + 1, 2 * size :]))
    print(
        f"RockSample perfect memory: {compared} observations identical in {len(MEMORY_RUNS)} runs"
    )
    assert compared >= 1000 and carried >= 3
