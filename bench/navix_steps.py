"""Env steps/s of POBAX's Navix mazes (``Navix-DMLab-Maze-[F-]<NN>-v0``) at 1 and 64 parallel envs.

Source: the timing pattern of ``bench/mjx_steps.py``: jit a ``lax.scan`` of ``vmap(step)`` (random
actions, the full step with navix's auto-reset), compile separately, one untimed warm-up call,
then the best of ``--repeats`` timed calls, blocking on the result.

    python bench/navix_steps.py [--envs Navix-DMLab-Maze-01-v0,Navix-DMLab-Maze-F-01-v0]
                                [--worlds 1,64] [--steps 1000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time

import jax

from sweepax.envs import registry


def bench_one(env_id: str, worlds: int, steps: int, repeats: int) -> dict[str, float]:
    """Compile s and env steps/s of ``steps`` vmapped steps over ``worlds`` envs."""
    env, params = registry.make(env_id)
    keys = jax.random.split(jax.random.PRNGKey(0), worlds)
    _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(state, key):
        def _body(state, key):
            key_act, key_step = jax.random.split(key)
            action = jax.random.randint(key_act, (worlds,), 0, env.num_actions)
            obs, state, reward, *_ = v_step(
                jax.random.split(key_step, worlds), state, action, params
            )
            return state, reward.sum() + obs.mean()

        state, totals = jax.lax.scan(_body, state, jax.random.split(key, steps))
        return state, totals.sum()

    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, jax.random.PRNGKey(1)).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(state, jax.random.PRNGKey(1)))  # warm-up
    runs = []
    for r in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(state, jax.random.PRNGKey(2 + r)))
        runs.append(time.perf_counter() - start)
    return {"compile_s": compile_s, "env_steps_per_s": worlds * steps / min(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="Navix-DMLab-Maze-01-v0,Navix-DMLab-Maze-F-01-v0")
    parser.add_argument("--worlds", default="1,64", help="comma list of parallel env counts")
    parser.add_argument("--steps", type=int, default=1000, help="env steps per timed call")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls (best reported)")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs; "
          f"{args.steps} steps per call, best of {args.repeats}")  # fmt: skip
    print(f"{'env':<28}{'envs':>6}{'compile s':>11}{'env steps/s':>14}")
    for env_id in args.envs.split(","):
        for worlds in (int(w) for w in args.worlds.split(",")):
            row = bench_one(env_id.strip(), worlds, args.steps, args.repeats)
            print(f"{env_id:<28}{worlds:>6}{row['compile_s']:>11.1f}"
                  f"{row['env_steps_per_s']:>14,.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
