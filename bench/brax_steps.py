"""Env steps/s of POBAX's masked MuJoCo ids (brax, positional backend) at 1 and 64 envs.

For each id and env count: the trace+compile seconds of one jitted, vmapped ``lax.scan`` of
``steps`` auto-resetting steps with random actions, then the steps/s of a second, timed call.
Prints one JSON line per case (note the machine's load: ``uptime``).

    .venv/bin/python bench/brax_steps.py [--envs Hopper-P-v0,Walker-V-v0] [--worlds 1,64]
        [--steps 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time


def run(env_id: str, worlds: int, steps: int) -> dict[str, float | int | str]:
    """Compile and time ``steps`` steps of ``worlds`` vmapped envs of ``env_id``."""
    import jax

    from sweepax.envs import make

    env, params = make(env_id)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(key: jax.Array) -> jax.Array:
        keys = jax.random.split(key, worlds)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

        def one(state, key):
            action = jax.random.uniform(key, (worlds, env.action_dim), minval=-1, maxval=1)
            obs, state, reward, *_ = step(keys, state, action, params)
            return state, reward.sum()

        return jax.lax.scan(one, state, jax.random.split(key, steps))[1].sum()

    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
    run_s = time.perf_counter() - start
    return {
        "env": env_id,
        "worlds": worlds,
        "steps": steps,
        "trace_compile_s": round(compile_s, 2),
        "run_s": round(run_s, 3),
        "env_steps_per_s": round(worlds * steps / run_s),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="Hopper-P-v0")
    parser.add_argument("--worlds", default="1,64")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    for env_id in args.envs.split(","):
        for worlds in map(int, args.worlds.split(",")):
            print(json.dumps(run(env_id, worlds, args.steps)), flush=True)


if __name__ == "__main__":
    main()
