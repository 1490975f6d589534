"""Drive POBAX's own environments and record what they do (runs in build/pobax-venv, not here).

    build/pobax-venv/bin/python tests/envs/pobax/pobax_driver.py REQUEST.json

REQUEST.json is a list of jobs ``{"env": id, "seed": int, "steps": int, "out": path.npz}`` (and
optionally ``"env_key"``: the raw key ``get_env`` gets, else ``PRNGKey(seed)``, and
``"perfect_memory": true``). Each job makes the
env with ``pobax.envs.get_env`` (POBAX's ids, construction and discount), takes the unwrapped
gymnax env under POBAX's wrappers, and runs ``reset`` then ``steps`` auto-resetting
``step`` calls with uniformly random actions. The npz holds the raw PRNG keys used (``keys``: row 0
for reset, row t + 1 for step t), ``actions``, ``obs`` (steps + 1 rows: the reset's, then each
step's), ``rewards``, ``dones``, ``gamma``, every leaf of the env state after reset and after each
step (``state0/<path>``, ``states/<path>``), RockSample's ``rock_positions`` and, for classic
``.POMDP`` models, the arrays POBAX samples from (``model/T``, ``model/R``, ``model/p0``,
``model/phi``).
"""

import functools
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np


def _leaves(tree, prefix):
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        out[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf)
    return out


def classic(env_id):
    """POBAX's JAX ``.POMDP`` env for ``[fully_observable_]<name>``, or None for other ids.

    POBAX 0.0.1's ``get_env`` fails on these ids: its ``classic.load_pomdp`` passes
    ``fully_observable`` to the gymnasium ``POMDP`` class of ``classic/__init__.py`` instead of the
    JAX one in ``classic/pomdp.py``. This does what ``get_env`` means: the id split as ``get_env``
    splits it, the spec from ``load_spec``, the JAX class.
    """
    from pathlib import Path

    import pobax.envs.classic as pc
    from pobax.envs.classic.pomdp import POMDP

    fully = "fully_observable" in env_id
    name = env_id.split("_")[-1] if fully else env_id
    if name not in [p.stem for p in (Path(pc.__file__).parent / "POMDP").iterdir()]:
        return None
    spec = pc.load_spec(name)
    env = POMDP(
        spec["T"], spec["R"], spec["p0"], spec["gamma"], spec["phi"], fully_observable=fully
    )
    return env, env, env.default_params, True


def runnable_fishing():
    """POBAX 0.0.1's ``Fishing`` without the ``jax.jit`` decorators that stop it from stepping.

    Its ``move``, ``get_current_reward`` and ``get_reward`` are jitted with the direction or the
    action static, and ``transition`` passes them traced values (a TypeError on every step). The
    same functions unjitted are POBAX's code unchanged; the step is jitted as a whole, as usual.
    """
    from pobax.envs.jax.fishing import Fishing

    for name in ("move", "get_current_reward", "get_reward"):
        jitted = Fishing.__dict__[name]
        setattr(Fishing, name, getattr(jitted, "__wrapped__", jitted))


def make(env_id, env_key, perfect_memory=False):
    """(wrapped env, gymnax env, params, static action?) as POBAX builds them.

    The gymnax env is the one under POBAX's logging, observation and batching wrappers: the
    unwrapped env, or with ``perfect_memory`` POBAX's ``PerfectMemoryWrapper`` (PocMan's:
    ``PocManStateWrapper``) around it.
    """
    from pobax.envs import get_env

    made = classic(env_id)
    if made is not None:
        return made
    if env_id.startswith("fishing"):
        runnable_fishing()
    wrapped, params = get_env(env_id, env_key, num_envs=1, perfect_memory=perfect_memory)
    env = wrapped._unwrapped
    if perfect_memory:
        env = wrapped
        while type(env).__name__ not in ("PerfectMemoryWrapper", "PocManStateWrapper"):
            env = env._env
    return wrapped, env, params, False


def run(job):
    seed, steps = int(job["seed"]), int(job["steps"])
    env_key = job.get("env_key")
    env_key = jax.random.PRNGKey(seed) if env_key is None else jnp.asarray(env_key, jnp.uint32)
    wrapped, env, params, static_action = make(
        job["env"], env_key, job.get("perfect_memory", False)
    )
    n_actions = env.action_space(params).n
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps + 1)
    actions = np.random.default_rng(seed).integers(0, n_actions, size=steps).astype(np.int32)

    obs0, state0 = env.reset(keys[0], params)

    def one(carry, xs):
        key, action = xs
        obs, state, reward, done, _ = step(key, carry, action, params)
        return state, (obs, state, reward, done)

    step = env.step
    if static_action:
        # POBAX's classic step_env is jitted with the action static: one branch per action value,
        # each running gymnax's own auto-reset step (unjitted) with that action
        raw = type(env).step.__wrapped__
        branches = [functools.partial(raw, env, action=a) for a in range(n_actions)]

        def step(key, state, action, params):
            return jax.lax.switch(
                action, [lambda k, s, b=b: b(k, s, params=params) for b in branches], key, state
            )

    xs = (keys[1:], jnp.asarray(actions))
    _, (obs, states, rewards, dones) = jax.lax.scan(one, state0, xs)
    record = {
        "keys": np.asarray(keys),
        "actions": actions,
        "obs": np.concatenate([np.asarray(obs0)[None], np.asarray(obs)]),
        "rewards": np.asarray(rewards, np.float32),
        "dones": np.asarray(dones, bool),
        "gamma": np.float64(getattr(wrapped, "gamma", np.nan)),
        **_leaves(state0, "state0/"),
        **_leaves(states, "states/"),
    }
    if hasattr(env, "rock_positions"):
        record["rock_positions"] = np.asarray(env.rock_positions)
    for name in ("T", "R", "p0", "phi"):
        if hasattr(env, name) and hasattr(env, "p0"):
            record[f"model/{name}"] = np.asarray(getattr(env, name))
    np.savez(job["out"], **record)


def run_compass_world(job):
    """POBAX's gymnasium CompassWorld (no ``get_env`` id), reset again whenever it terminates.

    Recorded like a gymnax env's auto-resetting step (``obs`` after a terminal step is the next
    episode's first), plus ``reset_keys``: the key each reset drew its start state with.
    """
    from pobax.envs.jax.compass_world import CompassWorld

    seed, steps = int(job["seed"]), int(job["steps"])
    env = CompassWorld(rand_key=jax.random.PRNGKey(seed))
    actions = np.random.default_rng(seed).integers(0, 3, size=steps).astype(np.int32)
    reset_keys = []

    def reset():
        reset_keys.append(np.asarray(jax.random.split(env.rand_key)[0]))  # what reset draws with
        return env.reset()[0]

    obs, rewards, dones = [reset()], [], []
    for action in actions:
        o, reward, terminal, _, _ = env.step(int(action))
        obs.append(reset() if terminal else o)
        rewards.append(reward)
        dones.append(terminal)
    np.savez(
        job["out"],
        actions=actions,
        obs=np.asarray(obs, np.float32),
        rewards=np.asarray(rewards, np.float32),
        dones=np.asarray(dones, bool),
        reset_keys=np.asarray(reset_keys),
    )


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        for job in json.load(f):
            (run_compass_world if job["env"] == "compass_world" else run)(job)
            print(f"{job['env']}: {job['steps']} steps -> {job['out']}", flush=True)
