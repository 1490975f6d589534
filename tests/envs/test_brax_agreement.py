"""POBAX's masked MuJoCo ids against POBAX 0.0.1 itself: the same reset key and actions.

POBAX runs in its own venv (build/pobax-venv, made by bench/pobax/pobax_venv.py) through
``brax_pobax_driver.py`` in a subprocess; this process never imports it. Run with
``nox -s pobax_tests`` (or ``pytest -m pobax``).

Both sides run brax 0.14.2's positional pipeline, but POBAX's venv has JAX 0.6.2 and MuJoCo 4.0.0
and ours JAX 0.10.2 and MuJoCo 3.17.0, so the float32 physics differs in its last bits from the
first step on, and these bodies are chaotic: a difference of 1e-7 grows to 1e-3 within tens of
steps and flips a step's termination after a few hundred. What is compared, and how closely:

* every reset observation (the first, and after each episode end, where brax restarts from the
  reset state): identical;
* the first ``HORIZON`` steps of every episode: observations and rewards within ``RTOL`` of
  ``1 + |POBAX's value|``;
* the steps that end episodes (terminated or truncated, POBAX's ``done``) and brax's truncation
  flag: identical, episode by episode, over the whole run (1100 steps: HalfCheetah's 1000-step
  limit included), up to the first episode that ends at different steps once drift has
  parted the two runs: its observations must have drifted ``DRIFT`` apart before the earlier
  of the two ends (an end that differs while both runs still agree is a disagreement, not
  drift), after at least ``LONG`` steps. In the recorded runs only Ant's do: how soon depends
  on the CPU (the difference grows about tenfold every 15-20 steps: past 1e-2 by step 70 and
  ends apart by step 96 on an AMD EPYC; 150+ steps on the machine where these were first
  recorded). The comparison stops there, both ends must be terminations, and the episodes
  compared must include one (HalfCheetah: the truncation).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import make
from sweepax.envs.brax_masked import IDS, MASK_DIMS, MAX_STEPS

pytestmark = pytest.mark.pobax

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("brax_pobax_driver.py")
STEPS = 1100  # past HalfCheetah's 1000-step limit
HORIZON = 5  # steps from each episode start compared within RTOL
RTOL = 1e-3  # of 1 + |value|: float32 drift after 5 steps is at most 3e-4 (observed)
LONG = 50  # steps after which an episode's end may differ by drift, once it has drifted
DRIFT = 1e-2  # the observations' relative difference (as RTOL's) that counts as drifted apart
SEEDS = {env_id: 10 + i for i, env_id in enumerate(IDS)}


@pytest.fixture(scope="module")
def recorded(pobax_record, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """POBAX's runs of every id, recorded in one driver process (about a minute per id)."""
    out = tmp_path_factory.mktemp("brax")
    jobs = [
        {"env": env_id, "seed": SEEDS[env_id], "steps": STEPS, "out": str(out / f"{i}.npz")}
        for i, env_id in enumerate(IDS)
    ]
    pobax_record(DRIVER, jobs, out)
    return {job["env"]: Path(job["out"]) for job in jobs}


def _replay(env_id: str, seed: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    env, params = make(env_id)

    def one(state, action):
        obs, state, reward, terminated, truncated, _ = env.step(
            jax.random.PRNGKey(0), state, action, params
        )
        return state, (obs, reward, terminated, truncated)

    obs0, state = env.reset(jax.random.PRNGKey(seed), params)
    _, (obs, reward, terminated, truncated) = jax.jit(lambda s, a: jax.lax.scan(one, s, a))(
        state, jnp.asarray(actions)
    )
    return {
        "obs": np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        "rewards": np.asarray(reward),
        "terminated": np.asarray(terminated),
        "truncated": np.asarray(truncated),
    }


def _episodes(done: np.ndarray) -> list[tuple[int, int]]:
    """(first step, last step) of each episode that ends within the run."""
    ends = np.flatnonzero(done)
    return [(int(start), int(end)) for start, end in zip(np.r_[0, ends[:-1] + 1], ends)]


def _difference(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Largest difference relative to ``1 + |POBAX's value|``."""
    return float((np.abs(ours - theirs) / (1.0 + np.abs(theirs))).max())


def _close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    err = _difference(ours, theirs)
    assert err <= RTOL, f"{what}: relative difference {err:.2e} > {RTOL}"


@pytest.mark.parametrize("env_id", IDS)
def test_masked_mujoco_agrees_with_pobax(env_id: str, recorded: dict[str, Path]) -> None:
    rec = dict(np.load(recorded[env_id]))
    body, variant, _ = env_id.split("-")
    assert rec["obs"].shape == (STEPS + 1, len(MASK_DIMS[body, variant]))
    assert int(rec["max_steps"]) == MAX_STEPS and float(rec["gamma"]) == 0.99
    ours = _replay(env_id, SEEDS[env_id], rec["actions"])
    assert ours["obs"].shape == rec["obs"].shape
    done = ours["terminated"] | ours["truncated"]
    np.testing.assert_array_equal(ours["obs"][0], rec["obs"][0])  # the reset
    compared = terminations = 0
    for (start, end), (p_start, p_end) in zip(_episodes(done), _episodes(rec["dones"])):
        assert start == p_start
        first = slice(start, min(end, p_end, start + HORIZON - 1) + 1)
        _close(ours["rewards"][first], rec["rewards"][first], f"{env_id} rewards, episode {start}")
        obs = slice(start + 1, first.stop)  # the observations after those steps, but the last
        _close(ours["obs"][obs], rec["obs"][obs], f"{env_id} observations, episode {start}")
        compared += 1
        if end != p_end:  # drift decided a long episode's end: both fell, then stop comparing
            first_end = min(end, p_end)
            assert first_end - start >= LONG, (env_id, start, end, p_end)
            part = slice(start + 1, first_end + 1)
            apart = _difference(ours["obs"][part], rec["obs"][part])
            assert apart >= DRIFT, (
                f"{env_id}: episode {start} ends at {end} here and at {p_end} in POBAX while "
                f"their observations still agree within {apart:.1e}"
            )
            assert ours["terminated"][end] and not rec["truncation"][p_end]
            terminations += 1
            break
        # the step that ends the episode returns the reset observation (brax restarts there)
        np.testing.assert_array_equal(ours["obs"][end + 1], rec["obs"][0])
        assert ours["truncated"][end] == rec["truncation"][end]
        terminations += int(ours["terminated"][end])
    else:  # every episode matched: so does the unfinished last one, and nothing else ended
        np.testing.assert_array_equal(done, rec["dones"])
        np.testing.assert_array_equal(ours["truncated"], rec["truncation"])
    print(f"{env_id}: {compared} episodes agree ({terminations} terminated)")
    assert compared >= 1
    if body == "HalfCheetah":  # never unhealthy: the 1000-step limit ends its one episode
        assert terminations == 0 and ours["truncated"][MAX_STEPS - 1]
        assert done.sum() == 1
    else:
        assert terminations >= 1
