"""POBAX's state-observation MuJoCo ids ``ant`` and ``halfcheetah`` against POBAX 0.0.1 itself.

POBAX runs in its own venv through ``tests/envs/brax_pobax_driver.py`` (its ``get_env``: brax's
env, no mask), in a subprocess. As for the masked ids (``tests/envs/test_brax_agreement.py``,
which explains the tolerances): both sides run brax 0.14.2's positional pipeline on different
JAX and MuJoCo versions, so resets are identical and the first steps of an episode agree within
``RTOL``, after which chaotic drift grows. Run with ``nox -s pobax_tests`` (or ``pytest -m pobax``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import make
from sweepax.envs.brax_masked import MAX_STEPS
from sweepax.envs.brax_state import BraxState

pytestmark = pytest.mark.pobax

DRIVER = Path(__file__).resolve().parents[1] / "brax_pobax_driver.py"
STEPS = 60  # one episode: random torques topple the ant after about 100 steps, where drift
# already decides the step (ends and restarts are compared on Ant-F-v0, the same brax env)
HORIZON = 5  # steps from each episode start compared within RTOL
RTOL = 1e-3  # of 1 + |value|
SEEDS = {"ant": 40, "halfcheetah": 41}
FULL = {"ant": 27, "halfcheetah": 17}  # brax's observation (Ant without contact forces)


@pytest.fixture(scope="module")
def recorded(pobax_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("brax_state")
    jobs = [
        {"env": env_id, "seed": seed, "steps": STEPS, "out": str(out / f"{env_id}.npz")}
        for env_id, seed in SEEDS.items()
    ]
    request = out / "request.json"
    request.write_text(json.dumps(jobs))
    done = subprocess.run(
        [pobax_python, str(DRIVER), str(request)], capture_output=True, text=True, cwd=out
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {job["env"]: Path(job["out"]) for job in jobs}


def _close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    err = np.abs(ours - theirs) / (1.0 + np.abs(theirs))
    assert err.max() <= RTOL, f"{what}: relative difference {err.max():.2e} > {RTOL}"


@pytest.mark.parametrize("env_id", list(SEEDS))
def test_state_observation_mujoco_agrees_with_pobax(env_id: str, recorded) -> None:
    rec = dict(np.load(recorded[env_id]))
    # POBAX's id: brax's whole observation, its 1000-step limit, the agent's gamma
    assert int(rec["obs_size"]) == FULL[env_id] and rec["obs"].shape == (STEPS + 1, FULL[env_id])
    assert int(rec["max_steps"]) == MAX_STEPS and float(rec["gamma"]) == 0.99
    env, params = make(env_id)
    assert isinstance(env, BraxState) and env.obs_dim == FULL[env_id]

    def one(state, action):
        obs, state, reward, terminated, truncated, _ = env.step(
            jax.random.PRNGKey(0), state, action, params
        )
        return state, (obs, reward, terminated | truncated)

    obs0, state = env.reset(jax.random.PRNGKey(SEEDS[env_id]), params)
    _, (obs, reward, done) = jax.jit(lambda s, a: jax.lax.scan(one, s, a))(
        state, jnp.asarray(rec["actions"])
    )
    obs = np.concatenate([np.asarray(obs0)[None], np.asarray(obs)])
    np.testing.assert_array_equal(obs[0], rec["obs"][0])  # the reset, bit for bit
    _close(np.asarray(reward)[:HORIZON], rec["rewards"][:HORIZON], f"{env_id} rewards")
    _close(obs[1:HORIZON], rec["obs"][1:HORIZON], f"{env_id} observations")
    # and neither side ends an episode this early
    assert not np.asarray(done).any() and not rec["dones"].any()
