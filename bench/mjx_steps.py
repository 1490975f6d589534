"""MJX env steps/s (our ``<Body>-v5`` envs, full gymnax ``step`` with auto-reset) per world count.

Source: timing pattern of MJX's own ``mujoco.mjx.benchmark`` (github.com/google-deepmind/mujoco,
``mjx/mujoco/mjx/_src/test_util.py``): jit a ``lax.scan`` of ``vmap(step)``, time compile and run
separately, block on the result before stopping the clock.

Per (model, worlds): compile s (``jit(...).lower().compile()``), run s of ``--steps`` env steps
(each ``frame_skip`` physics steps, random actions, the batch ``jax.device_put`` first so no call
recompiles), env steps/s = worlds x steps / run s, and physics steps/s = env steps/s x frame_skip.
The scan is called once untimed (warm-up), then timed over ``--repeats`` calls (best is reported).

    nox -s bench_mjx -- [--models Hopper,HalfCheetah] [--worlds 1,64,1024] [--steps 20]
                        [--repeats 2] [--solver-iterations N] [--cache DIR] [--json out.json]

The default (all 4 models x 1, 64, 1024 worlds, 20 steps) compiles 12 programs: ~10 min on 2
CPU cores. ``--cache DIR`` turns on JAX's persistent compilation cache (a second run compiles in a
few seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp

from sweepax.envs.mjx_envs import BODIES, make_mjx


def bench_one(
    body: str, worlds: int, steps: int, repeats: int, solver_iterations: int | None
) -> dict[str, float | int | str]:
    """Compile s, best run s and env steps/s of ``steps`` vmapped steps over ``worlds`` worlds."""
    env, params = make_mjx(body, solver_iterations=solver_iterations)
    n_act = env.action_space(params).shape[0]
    key = jax.random.PRNGKey(0)
    key_reset, key_run = jax.random.split(key)
    obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
        jax.random.split(key_reset, worlds), params
    )
    device = jax.devices()[0]
    state, key_run = jax.device_put((state, key_run), device)  # avoid the recompile trap

    def rollout(state, key):
        def _step(carry, _):
            state, key = carry
            key, key_act, key_step = jax.random.split(key, 3)
            action = jax.random.uniform(key_act, (worlds, n_act), minval=-1.0, maxval=1.0)
            obs, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key_step, worlds), state, action, params
            )
            return (state, key), reward.sum() + term.sum() + trunc.sum()

        (state, key), total = jax.lax.scan(_step, (state, key), None, length=steps)
        return state, key, total.sum()

    t0 = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, key_run).compile()
    compile_s = time.perf_counter() - t0
    state, key_run, total = compiled(state, key_run)  # warm-up
    jax.block_until_ready(total)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, key_run, total = compiled(state, key_run)
        jax.block_until_ready((state, total))
        runs.append(time.perf_counter() - t0)
    run_s = min(runs)
    sps = worlds * steps / run_s
    return {
        "model": f"{body}-v5",
        "worlds": worlds,
        "steps": steps,
        "compile_s": round(compile_s, 2),
        "run_s": round(run_s, 4),
        "env_steps_per_s": round(sps, 1),
        "physics_steps_per_s": round(sps * env.physics.frame_skip, 1),
        "finite": bool(jnp.isfinite(total)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(BODIES), help="comma list of " + ",".join(BODIES))
    p.add_argument("--worlds", default="1,64,1024", help="comma list of vmapped world counts")
    p.add_argument("--steps", type=int, default=20, help="env steps per timed call")
    p.add_argument("--repeats", type=int, default=2, help="timed calls (best reported)")
    p.add_argument("--solver-iterations", type=int, default=None, help="override the XML's 100")
    p.add_argument("--cache", default=None, help="JAX persistent compilation cache directory")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ns = p.parse_args()
    if ns.cache:
        jax.config.update("jax_compilation_cache_dir", os.path.abspath(ns.cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    models = [m.strip() for m in ns.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in BODIES]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(BODIES)}")
    worlds = [int(w) for w in ns.worlds.split(",")]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs; "
          f"{ns.steps} env steps per call, best of {ns.repeats}")  # fmt: skip
    header = f"{'model':<16}{'worlds':>7}{'compile s':>11}{'run s':>9}{'env steps/s':>13}"
    print(header + f"{'physics steps/s':>17}")
    rows = []
    for body in models:
        for n in worlds:
            row = bench_one(body, n, ns.steps, ns.repeats, ns.solver_iterations)
            rows.append(row)
            print(f"{row['model']:<16}{n:>7}{row['compile_s']:>11.1f}{row['run_s']:>9.3f}"
                  f"{row['env_steps_per_s']:>13,.0f}{row['physics_steps_per_s']:>17,.0f}",
                  flush=True)  # fmt: skip
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"jax": jax.__version__, "solver_iterations": ns.solver_iterations,
                       "rows": rows}, f, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
