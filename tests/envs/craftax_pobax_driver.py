"""Drive POBAX's Craftax envs and record what they do (runs in build/pobax-venv, not here).

    build/pobax-venv/bin/python tests/envs/craftax_pobax_driver.py REQUEST.json

REQUEST.json is a list of jobs ``{"env": id, "seed": int, "steps": int, "max_timesteps": int,
"out": path.npz}``. Each job makes the env as POBAX's PPO does (``pobax.envs.get_env`` with
``num_envs=1`` and ``normalize_image=False``: POBAX's ids, craftax env, auto-reset, logging,
batching and pixel wrappers), sets craftax's time limit to ``max_timesteps`` (0: craftax's
default), runs ``reset`` with ``PRNGKey(seed)`` then ``steps`` ``step`` calls, each with its own
key (``split(PRNGKey(seed + 1), steps)``) and a uniformly random action (numpy, from ``seed``).
For the pixel ids, POBAX 0.0.1's ``PixelCraftaxVecEnvWrapper`` fails at reset (it multiplies
the ``Observation`` tuple the wrapper below it returns, not the image inside): the record holds
that wrapper's own ``get_obs`` applied to the image (``obs.obs``) of the wrappers below it.
POBAX's ``AutoResetEnvWrapper`` calls ``jax.tree_map``, which JAX 0.6 removed (POBAX's venv has
jax 0.6.2): the driver puts back the alias, ``jax.tree_map = jax.tree.map`` (the same function).
The npz holds ``keys`` (the step keys' raw data), ``actions``, ``obs`` (steps + 1 rows: the
reset's, then each step's, flattened), ``rewards``, ``dones``, ``obs_shape`` (of one
observation), ``num_actions``, ``max_timesteps`` (the limit used) and ``default_max_timesteps``.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np


def run(job):
    if not hasattr(jax, "tree_map"):
        jax.tree_map = jax.tree.map
    from pobax.envs import get_env

    seed, steps = int(job["seed"]), int(job["steps"])
    env, params = get_env(job["env"], jax.random.PRNGKey(seed), num_envs=1, normalize_image=False)
    default_limit = int(params.craft_env_params.max_timesteps)
    if int(job["max_timesteps"]):
        craft = params.craft_env_params.replace(max_timesteps=int(job["max_timesteps"]))
        params = params.replace(craft_env_params=craft)
    observe = lambda obs: obs.obs  # noqa: E731
    if type(env).__name__ == "PixelCraftaxVecEnvWrapper":
        pixels, env = env, env._env
        observe = lambda obs: pixels.get_obs(obs.obs, pixels.normalize)  # noqa: E731
    num_actions = int(env.action_space(params).n)
    actions = np.random.default_rng(seed).integers(0, num_actions, size=steps).astype(np.int32)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)

    obs0, state0 = env.reset(jax.random.PRNGKey(seed)[None], params)

    def one(state, key_action):
        key, action = key_action
        obs, state, reward, done, _ = env.step(key[None], state, action[None], params)
        return state, (observe(obs)[0], reward[0], done[0])

    _, (obs, rewards, dones) = jax.lax.scan(jax.jit(one), state0, (keys, jnp.asarray(actions)))
    first = np.asarray(observe(obs0)[0])
    np.savez(
        job["out"],
        keys=np.asarray(keys),
        actions=actions,
        obs=np.concatenate([first.reshape(1, -1), np.asarray(obs).reshape(steps, -1)]),
        rewards=np.asarray(rewards, np.float32),
        dones=np.asarray(dones, bool),
        obs_shape=np.asarray(first.shape),
        num_actions=np.int64(num_actions),
        max_timesteps=np.int64(params.craft_env_params.max_timesteps),
        default_max_timesteps=np.int64(default_limit),
    )


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for job in json.load(f):
            run(job)
            print(f"{job['env']}: {job['steps']} steps -> {job['out']}", flush=True)
