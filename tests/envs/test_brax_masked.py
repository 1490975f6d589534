"""POBAX's masked MuJoCo ids on brax: masks, time limit, ends of episodes, the ids' old meaning.

Loading a brax body takes seconds and compiling its physics tens of seconds on CPU, so the default
tests load only HalfCheetah (the fastest to load) and drive brax's own episode and auto-reset
wrappers around a stand-in for the physics; every body's real physics is ``@pytest.mark.slow``.
Agreement with POBAX itself, step by step: ``test_brax_agreement.py`` (``-m pobax``).
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import check, known_envs, make, registry
from sweepax.envs.brax_masked import IDS, BraxMasked
from sweepax.errors import UserError

N = 4  # vmapped envs

# POBAX 0.0.1's masked_gymnax_env_map, written out: the brax observation features each id keeps
POBAX_MASKS = {
    "Hopper-F-v0": list(range(11)),
    "Hopper-P-v0": [0, 1, 2, 3, 4],
    "Hopper-V-v0": [5, 6, 7, 8, 9, 10],
    "Walker-F-v0": list(range(17)),
    "Walker-P-v0": [0, 1, 2, 3, 4, 5, 6, 7],
    "Walker-V-v0": [8, 9, 10, 11, 12, 13, 14, 15, 16],
    "Ant-F-v0": list(range(27)),
    "Ant-P-v0": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
    "Ant-V-v0": [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26],
    "HalfCheetah-F-v0": list(range(17)),
    "HalfCheetah-P-v0": [0, 1, 2, 3, 8, 9, 10, 11, 12],
    "HalfCheetah-V-v0": [4, 5, 6, 7, 13, 14, 15, 16],
}
# brax's observation and action sizes (positional backend; Ant without contact forces)
BRAX_SIZES = {"Hopper": (11, 3), "Walker": (17, 6), "HalfCheetah": (17, 6), "Ant": (27, 8)}


def test_the_twelve_pobax_ids_are_registered_with_pobaxs_masks() -> None:
    assert sorted(IDS) == sorted(POBAX_MASKS)
    for env_id in IDS:
        check(env_id)
        assert registry.vmappable(env_id)
    assert {"Hopper-P-v0", "Walker-V-v0", "HalfCheetah-P-v0", "Ant-F-v0"} <= set(known_envs())
    with pytest.raises(UserError, match="did you mean 'Walker-V-v0'"):
        check("Walkr-V-v0")
    with pytest.raises(UserError, match="perfect_memory"):
        make("Walker-V-v0", perfect_memory=True)  # POBAX's perfect memory here is the F id


@pytest.mark.parametrize("env_id", ["HalfCheetah-F-v0", "HalfCheetah-P-v0", "HalfCheetah-V-v0"])
def test_a_body_keeps_pobaxs_features_and_1000_step_limit(env_id: str) -> None:
    env, params = make(env_id)
    assert isinstance(env, BraxMasked) and env.name == env_id
    assert list(env.kept_indices) == POBAX_MASKS[env_id] and env.obs_dim == len(env.kept_indices)
    assert env.full_obs_dim == env.brax_env.observation_size == 17
    assert params.max_steps_in_episode == env.max_steps == env.brax_env.env.episode_length == 1000
    assert env.brax_env.env.action_repeat == 1 and env.brax_env.backend == "positional"
    assert not env.discrete_actions and not hasattr(env.action_space(params), "n")
    act = env.action_space(params)
    assert act.shape == (6,)
    np.testing.assert_array_equal(np.asarray(act.low), -1.0)
    np.testing.assert_array_equal(np.asarray(act.high), 1.0)
    assert env.observation_space(params).shape == (env.obs_dim,)
    assert not hasattr(env, "gamma")  # the sweep's gamma, as POBAX passes its own
    assert registry.vmappable(env_id)


@pytest.mark.slow
def test_reset_and_step_under_vmap_give_declared_shapes_and_dtypes() -> None:
    env, params = make("HalfCheetah-P-v0")
    keys = jax.random.split(jax.random.PRNGKey(0), N)
    obs, state = jax.eval_shape(jax.vmap(env.reset, in_axes=(0, None)), keys, params)
    assert obs.shape == (N, 9) and obs.dtype == jnp.float32
    actions = jax.ShapeDtypeStruct((N, 6), jnp.float32)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    obs2, state2, reward, terminated, truncated, info = jax.eval_shape(
        step, keys, state, actions, params
    )
    assert obs2.shape == (N, 9) and obs2.dtype == jnp.float32
    assert reward.shape == terminated.shape == truncated.shape == (N,)
    assert reward.dtype == info["discount"].dtype == jnp.float32
    assert terminated.dtype == truncated.dtype == jnp.bool_
    assert jax.tree.map(jnp.shape, state2) == jax.tree.map(jnp.shape, state)


class StandIn:
    """A brax ``Env`` without physics: ``q`` (9) starts at the reset key's draw in [0, 0.01) and
    rises by 0.1 + 1e-3 x the summed action per step; the observation is ``q`` then ``q[:8] / 10``
    (17 features), the reward ``q[0]``, and ``done`` once ``q[0] >= ends_at``."""

    observation_size, action_size = 17, 6

    def __init__(self, ends_at: float):
        self.ends_at = ends_at

    def _obs(self, q: jax.Array) -> jax.Array:
        return jnp.concatenate([q, q[:8] / 10])

    def reset(self, rng: jax.Array) -> tp.Any:
        from brax.envs.base import State

        q = jax.random.uniform(rng, (9,), maxval=0.01)
        return State(q, self._obs(q), jnp.zeros(()), jnp.zeros(()), {}, {})

    def step(self, state: tp.Any, action: jax.Array) -> tp.Any:
        q = state.pipeline_state + 0.1 + 1e-3 * jnp.sum(action)
        done = (q[0] >= self.ends_at).astype(jnp.float32)
        return state.replace(pipeline_state=q, obs=self._obs(q), reward=q[0], done=done)


def _stand_in(monkeypatch, env_id: str, ends_at: float, max_steps: int | None = None):
    env, _ = make(env_id, max_steps_in_episode=max_steps)
    monkeypatch.setattr(env.brax_env.env, "env", StandIn(ends_at))  # inside brax's wrappers
    return env


def _rollout(env: BraxMasked, steps: int, action: float) -> dict[str, np.ndarray]:
    """``steps`` steps of ``N`` vmapped envs (reset keys 1..N), as PPO runs them; env 0's."""
    params = env.default_params
    keys = jax.random.split(jax.random.PRNGKey(0), N)
    step = jax.vmap(env.step, in_axes=(0, 0, None, None))

    def one(state, _):
        obs, state, reward, terminated, truncated, info = step(
            keys, state, jnp.full((6,), action), params
        )
        return state, (obs, reward, terminated, truncated, info["discount"])

    obs0, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    _, out = jax.lax.scan(one, state, None, length=steps)
    names = ("obs", "reward", "terminated", "truncated", "discount")
    out = dict(zip(names, map(np.asarray, out)))
    assert out["obs"].shape == (steps, N, env.obs_dim) and out["reward"].shape == (steps, N)
    assert out["reward"].dtype == out["discount"].dtype == np.float32
    assert out["terminated"].dtype == out["truncated"].dtype == np.bool_
    assert len({tuple(o) for o in np.asarray(obs0)}) == N  # each env its own reset
    return {"obs0": np.asarray(obs0)[0], **{k: v[:, 0] for k, v in out.items()}}


@pytest.mark.parametrize("ends_at", [0.25, 10.0], ids=["terminated", "truncated"])
def test_time_limit_termination_and_auto_reset_on_brax_wrappers(monkeypatch, ends_at) -> None:
    """brax's own EpisodeWrapper and AutoResetWrapper around a stand-in physics (no compile of
    brax's): a 4-step limit; episodes end by themselves at their 3rd step or at the limit."""
    env = _stand_in(monkeypatch, "HalfCheetah-P-v0", ends_at, max_steps=4)
    out = _rollout(env, steps=9, action=5.0)
    if ends_at < 1:  # q[0] >= 0.25 at the 3rd step of each episode: terminated, not truncated
        np.testing.assert_array_equal(out["terminated"], [0, 0, 1, 0, 0, 1, 0, 0, 1])
        assert not out["truncated"].any()
    else:  # the 4-step limit (brax's truncation), never terminated
        np.testing.assert_array_equal(out["truncated"], [0, 0, 0, 1, 0, 0, 0, 1, 0])
        assert not out["terminated"].any()
    done = out["terminated"] | out["truncated"]
    np.testing.assert_array_equal(out["discount"], np.where(out["terminated"], 0.0, 1.0))
    # an ending step returns the next episode's first observation: the last reset's (brax
    # restarts from the state it was reset to, as in POBAX); P keeps features 0-3 and 8-12
    np.testing.assert_array_equal(out["obs"][done], np.broadcast_to(out["obs0"], (done.sum(), 9)))
    np.testing.assert_allclose(out["obs0"][5:], out["obs0"][:4] / 10, rtol=1e-6)  # 9-12: q[:4]/10
    assert out["obs"].shape == (9, 9) and np.abs(out["obs0"]).max() < 0.01
    # the action, 5 per joint, reached the physics clipped to 1: q rises 0.106 per step
    np.testing.assert_allclose(np.diff(out["obs"][:2, 0]), 0.106, rtol=1e-5)
    # the reward is the step's own (q[0] after the step), also on an ending step
    np.testing.assert_allclose(out["reward"][0], out["obs0"][0] + 0.106, rtol=1e-5)
    np.testing.assert_allclose(out["reward"][~done], out["obs"][~done][:, 0], rtol=1e-6)


def test_step_clips_actions_to_plus_minus_one(monkeypatch) -> None:
    rewards = []
    for action in (1.0, 7.0, -1.0, -7.0):
        env = _stand_in(monkeypatch, "HalfCheetah-V-v0", 10.0)
        rewards.append(_rollout(env, steps=2, action=action)["reward"])
    np.testing.assert_array_equal(rewards[0], rewards[1])
    np.testing.assert_array_equal(rewards[2], rewards[3])
    np.testing.assert_allclose(rewards[0] - rewards[2], [0.012, 0.024], rtol=1e-4)


def test_ids_that_named_the_gymnasium_v5_port_say_what_changed() -> None:
    for body in ("Hopper", "HalfCheetah", "Ant"):
        for variant in "FPV":
            note = registry.changed_meaning(f"{body}-{variant}-v0")
            assert note is not None and f"{body}-v5-{variant}" in note and "POBAX" in note
            check(f"{body}-v5-{variant}")  # the port, under its own id
    assert registry.changed_meaning("HalfCheetah-P-v0") == (
        "HalfCheetah-P-v0 now means POBAX's env (brax halfcheetah, positional backend, features "
        "0-3, 8-12 of brax's 17); the gymnasium-v5 MJX env it named before is HalfCheetah-v5-P"
    )
    # Walker-*-v0 is new (the port's body is Walker2d); other ids never changed
    for env_id in ("Walker-V-v0", "Hopper-v5-P", "CartPole-P-v0", "tmaze_5", 3):
        assert registry.changed_meaning(env_id) is None


@pytest.mark.slow
@pytest.mark.parametrize("body", ["Hopper", "Walker", "Ant", "HalfCheetah"])
def test_each_body_loads_brax_with_pobaxs_sizes_and_runs_its_physics(body: str) -> None:
    obs_size, action_size = BRAX_SIZES[body]
    envs = [make(f"{body}-{v}-v0")[0] for v in "FPV"]
    for env in envs:
        assert env.full_obs_dim == obs_size and env.action_dim == action_size
        assert list(env.kept_indices) == POBAX_MASKS[env.env_id]
    full = envs[0]
    params = full.default_params
    rng = np.random.default_rng(0)
    actions = jnp.asarray(rng.uniform(-1, 1, (300, action_size)), jnp.float32)

    def one(state, action):
        obs, state, reward, terminated, truncated, _ = full.step(
            jax.random.PRNGKey(0), state, action, params
        )
        return state, (obs, reward, terminated, truncated)

    obs0, state = full.reset(jax.random.PRNGKey(0), params)
    _, (obs, reward, terminated, truncated) = jax.jit(lambda s, a: jax.lax.scan(one, s, a))(
        state, actions
    )
    assert np.isfinite(np.asarray(obs)).all() and np.isfinite(np.asarray(reward)).all()
    assert not np.asarray(truncated).any()  # 300 < 1000 steps
    if body == "HalfCheetah":
        assert not np.asarray(terminated).any()  # never unhealthy
    else:  # random torques topple the body; it restarts from the reset state
        ends = np.asarray(terminated)
        assert ends.any()
        np.testing.assert_array_equal(np.asarray(obs)[ends][0], np.asarray(obs0))


def test_definition_records_what_an_id_means_without_importing_brax() -> None:
    assert registry.definition("Hopper-P-v0") == {
        "id": "Hopper-P-v0",
        "family": "<Hopper|Walker|HalfCheetah|Ant>-<F|P|V>-v0 (POBAX's masked MuJoCo, brax)",
        "library": "brax",
        "library_version": "0.14.2",
        "brax_env": "hopper",
        "backend": "positional",
        "kept_indices": [0, 1, 2, 3, 4],
        "full_obs_dim": 11,
        "max_steps_in_episode": 1000,
        "source": "POBAX 0.0.1 masked_gymnax_env_map and BraxGymnaxWrapper",
    }
    assert registry.definition("Hopper-v5-P") == {
        "id": "Hopper-v5-P",
        "family": "<Hopper|Walker2d|HalfCheetah|Ant>-v5[-<F|P|V>] (MJX, gymnasium v5)",
    }
    with pytest.raises(UserError, match="unknown env"):
        registry.definition("Hopper-X-v0")


def _results_conftest() -> tp.Any:
    """tests/results/conftest.py (its ``StoreFactory`` writes real stores), imported by path."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "results" / "conftest.py"
    spec = importlib.util.spec_from_file_location("results_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_store_of_an_id_that_changed_meaning_still_parses(tmp_path) -> None:
    """A store written before Hopper-P-v0 meant POBAX's env (no ``env_definition``: then the
    gymnasium-v5 port) parses beside one of the port under its new id, each under its own id."""
    import io

    from rich.console import Console

    from sweepax.results.parse import parse_study
    from sweepax.results.store import read_attrs

    study = tmp_path / "results" / "hopper"
    factory = _results_conftest().StoreFactory(study)
    old = factory.make("old", env="Hopper-P-v0", seeds=(0, 1))
    factory.make("new", env="Hopper-v5-P", seeds=(0, 1))
    assert "env_definition" not in read_attrs(old)
    out = io.StringIO()
    scores = parse_study(study, progress=False, console=Console(file=out, width=200))
    assert sorted(scores["env"].values.tolist()) == ["Hopper-P-v0", "Hopper-v5-P"]
    assert np.isfinite(scores["final_return"].sel(env="Hopper-P-v0").values).all()
