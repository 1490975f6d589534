"""Drive POBAX's Navix mazes and record what they do (runs in build/pobax-venv, not here).

    build/pobax-venv/bin/python tests/envs/navix_pobax_driver.py REQUEST.json

REQUEST.json is a list of jobs ``{"env": id, "seed": int, "steps": int, "out": path.npz}``. Each
job makes the env with ``pobax.envs.get_env`` (POBAX's ids, layouts, wrappers and discount),
takes the ``NavixGymnaxWrapper`` under POBAX's logging and batching wrappers, and runs ``reset``
with ``PRNGKey(seed)`` then ``steps`` auto-resetting ``step`` calls with uniformly random actions
(0..2, drawn by numpy from ``seed``). For the first-person mazes POBAX 0.0.1's
``MazeFoVWrapper`` fails at reset with navix 0.7.4 (its mask is 4 x 7, navix's view 7 x 7): the
record holds navix's view cut to its 4 rows nearest the agent, one-hot as POBAX makes it, masked
by that wrapper's own ``mask_observation``. The npz holds ``actions``, ``obs`` (steps + 1 rows:
the reset's, then each step's), ``rewards``, ``step_types`` (navix's: 0 running, 1 time limit,
2 goal), ``dones`` (POBAX's), ``positions`` and ``goals`` (the player's cell and the goal's after
reset and after each step) and ``gamma``.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np


def _find(env, name):
    while type(env).__name__ != name:
        env = env._env
    return env


def run(job):
    from pobax.envs import get_env

    seed, steps = int(job["seed"]), int(job["steps"])
    wrapped, params = get_env(job["env"], jax.random.PRNGKey(seed), num_envs=1)
    inner = _find(wrapped, "NavixGymnaxWrapper")
    if "-F-" in job["env"]:
        observe = lambda obs: obs  # noqa: E731
    else:
        fov = _find(wrapped, "MazeFoVWrapper")
        observe = lambda obs: fov.mask_observation(obs[fov.agent_r :])  # noqa: E731
    actions = np.random.default_rng(seed).integers(0, 3, size=steps).astype(np.int32)

    def where(timestep):
        state = timestep.state
        return state.get_player().position, state.entities["goal"].position[0]

    obs0, state0 = inner.reset(jax.random.PRNGKey(seed), params)

    def one(state, action):
        obs, state, reward, done, _ = inner.step(jax.random.PRNGKey(0), state, action, params)
        return state, (observe(obs), reward, done, state.step_type, *where(state))

    _, (obs, rewards, dones, step_types, positions, goals) = jax.lax.scan(
        one, state0, jnp.asarray(actions)
    )
    position0, goal0 = where(state0)
    np.savez(
        job["out"],
        actions=actions,
        obs=np.concatenate([np.asarray(observe(obs0))[None], np.asarray(obs)]),
        rewards=np.asarray(rewards, np.float32),
        dones=np.asarray(dones, bool),
        step_types=np.asarray(step_types),
        positions=np.concatenate([np.asarray(position0)[None], np.asarray(positions)]),
        goals=np.concatenate([np.asarray(goal0)[None], np.asarray(goals)]),
        gamma=np.float64(wrapped.gamma),
    )


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for job in json.load(f):
            run(job)
            print(f"{job['env']}: {job['steps']} steps -> {job['out']}", flush=True)
