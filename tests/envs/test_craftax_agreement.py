"""Our Craftax ids against POBAX 0.0.1 itself: the same reset key, step keys and actions give the
same observations and rewards to within one float32 ulp (rtol 2e-6, atol 1e-6: craftax's
daylight value, a cosine, and the pixels' / 255 * 255 round differently in POBAX's JAX 0.6.2
and our 0.10.2) and the same episode ends (exactly).

POBAX runs in its own venv (build/pobax-venv, made by bench/pobax/pobax_venv.py) through
``craftax_pobax_driver.py`` in a subprocess; this process never imports it. Both sides run
craftax 1.6.1. Run with ``nox -s pobax_tests`` (or ``pytest -m pobax``); slow: craftax's step
compiles for about a minute per id and side, and the pixel ids prepare craftax's textures once
per venv (minutes).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import make
from sweepax.envs.craftax_envs import IDS

pytestmark = pytest.mark.pobax

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("craftax_pobax_driver.py")
STEPS = 400
LIMIT = 120  # a short time limit: every walk ends episodes at it (and maybe by dying first)
SEEDS = dict(zip(IDS, (3, 5, 7, 9), strict=True))


@pytest.fixture(scope="module")
def recorded(pobax_record, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """POBAX's walks in every Craftax id, recorded in one driver process."""
    out = tmp_path_factory.mktemp("craftax")
    jobs = [
        {"env": env_id, "seed": SEEDS[env_id], "steps": STEPS, "max_timesteps": LIMIT,
         "out": str(out / f"{env_id}.npz")}
        for env_id in IDS
    ]  # fmt: skip
    pobax_record(DRIVER, jobs, out)
    return {job["env"]: Path(job["out"]) for job in jobs}


def _replay(env_id: str, seed: int, keys: np.ndarray, actions: np.ndarray) -> dict:
    env, params = make(env_id, max_steps_in_episode=LIMIT)

    def one(state, key_action):
        key, action = key_action
        obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        return state, (obs, reward, terminated, truncated)

    obs0, state = env.reset(jax.random.PRNGKey(seed), params)
    _, (obs, reward, terminated, truncated) = jax.jit(lambda s, ka: jax.lax.scan(one, s, ka))(
        state, (jnp.asarray(keys), jnp.asarray(actions))
    )
    return {
        "env": env,
        "obs": np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        "rewards": np.asarray(reward),
        "terminated": np.asarray(terminated),
        "truncated": np.asarray(truncated),
    }


def _episode_lengths(done: np.ndarray) -> np.ndarray:
    """Length of the running episode at each step (1 at an episode's first step)."""
    out, n = np.zeros(len(done), int), 0
    for t, d in enumerate(done):
        n += 1
        out[t] = n
        n = 0 if d else n
    return out


@pytest.mark.parametrize("env_id", IDS)
def test_craftax_agrees_with_pobax_step_by_step(env_id: str, recorded: dict[str, Path]) -> None:
    rec = dict(np.load(recorded[env_id]))
    ours = _replay(env_id, SEEDS[env_id], rec["keys"], rec["actions"])
    env = ours["env"]
    assert env.num_actions == int(rec["num_actions"])
    assert env.default_params.max_timesteps == int(rec["max_timesteps"]) == LIMIT
    assert make(env_id)[1].max_timesteps == int(rec["default_max_timesteps"])
    if env.obs_shape is not None:  # pixels: POBAX's image, (27, W, 3), values 0..255
        assert tuple(rec["obs_shape"]) == env.obs_shape
        assert rec["obs"].max() > 1.0
    np.testing.assert_allclose(ours["obs"], rec["obs"], rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(ours["rewards"], rec["rewards"], rtol=2e-6, atol=1e-6)
    done = ours["terminated"] | ours["truncated"]
    np.testing.assert_array_equal(done, rec["dones"])
    assert not (ours["terminated"] & ours["truncated"]).any()
    # truncated exactly where an episode reached the time limit without dying
    at_limit = _episode_lengths(rec["dones"]) == LIMIT
    np.testing.assert_array_equal(ours["truncated"], at_limit & ~ours["terminated"])
    ends, limits = int(done.sum()), int(ours["truncated"].sum())
    print(f"{env_id}: {STEPS} steps, {ends} episode ends ({limits} at the limit), agree")
    assert limits >= 1 and (rec["rewards"] != 0).any()  # the walk ended episodes and scored
