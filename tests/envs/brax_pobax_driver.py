"""Drive POBAX's masked MuJoCo envs and record what they do (runs in build/pobax-venv, not here).

    build/pobax-venv/bin/python tests/envs/brax_pobax_driver.py REQUEST.json

REQUEST.json is a list of jobs ``{"env": id, "seed": int, "steps": int, "out": path.npz}``. Each
job makes the env with ``pobax.envs.get_env`` (POBAX's ids, brax backend, masks, time limit,
action clipping and discount), takes its ``MaskObservationWrapper`` (one env, under POBAX's own
batching; for POBAX's unmasked state ids ``hopper`` ... ``ant`` its ``LogWrapper``) and runs
``reset`` with ``PRNGKey(seed)`` then ``steps`` auto-resetting ``step`` calls with actions drawn
uniformly from [-1.5, 1.5] by numpy from ``seed`` (so ``ClipAction`` clips some). The npz holds
``actions``, ``obs`` (steps + 1 rows: the reset's, then each step's), ``rewards``, ``dones``
(POBAX's), ``truncation`` (brax's time-limit flag), ``obs_size`` (the unmasked brax
observation's), ``max_steps`` and ``gamma``.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np


def _find(env, *names):
    """The outermost wrapper of ``env`` whose class is one of ``names``."""
    while type(env).__name__ not in names:
        env = env._env
    return env


def run(job):
    from pobax.envs import get_env

    seed, steps = int(job["seed"]), int(job["steps"])
    wrapped, params = get_env(job["env"], jax.random.PRNGKey(seed), num_envs=1)
    masked = _find(wrapped, "MaskObservationWrapper", "LogWrapper")  # unmasked: ant, hopper, ...
    brax = _find(wrapped, "BraxGymnaxWrapper")
    action_size = brax.action_size
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.5, 1.5, size=(steps, action_size)).astype(np.float32)

    obs0, state0 = masked.reset(jax.random.PRNGKey(seed), params)

    def one(state, action):
        obs, state, reward, done, _ = masked.step(jax.random.PRNGKey(0), state, action, params)
        return state, (obs, reward, done, state.env_state.info["truncation"])

    _, (obs, rewards, dones, truncation) = jax.jit(lambda s, a: jax.lax.scan(one, s, a))(
        state0, jnp.asarray(actions)
    )
    np.savez(
        job["out"],
        actions=actions,
        obs=np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        rewards=np.asarray(rewards, np.float32),
        dones=np.asarray(dones, bool),
        truncation=np.asarray(truncation) > 0.5,
        obs_size=np.int64(brax.observation_size[0]),
        max_steps=np.int64(brax.max_steps_in_episode),
        gamma=np.float64(_find(wrapped, "LogWrapper").gamma),
    )


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for job in json.load(f):
            run(job)
            print(f"{job['env']}: {job['steps']} steps -> {job['out']}", flush=True)
