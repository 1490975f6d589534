"""Rendered env steps/s and frames/s: MJX's Warp batch renderer vs our JAX ray caster.

Source: the timing pattern of ``bench/pixel_steps.py``: per renderer and world count, jit a
``lax.scan`` of ``vmap(step)`` (random actions, full gymnax step with auto-reset), time the trace
+ compile (and, for Warp, its kernel loads, cached in ~/.cache/warp after the first run), one
untimed warm-up call, then the best of ``--repeats`` timed calls; then the renderer alone
(``vmap(env.render)`` on the reset states). Each renderer runs its own physics (``warp``: MJX's
Warp implementation, which ``mjx.render`` needs; ``jax``: MJX's JAX implementation).

    python bench/warp_render.py [--env hopper_pixels] [--worlds 1 16 64] [--steps 10]
    python bench/warp_render.py --gpu   # adds 1024 worlds and peak GPU memory; untested on GPU
    python bench/warp_render.py --ppo-steps 262144 [--ppo-envs 64]   # + one PPO task per renderer

``--ppo-steps N`` (default with ``--gpu``: 262,144) also trains one ``hopper_pixels`` PPO task per
renderer through ``python -m sweepax.train ppo`` (N env steps, ``--ppo-envs`` envs, 1 seed) and
reports what its store records: env steps/s, trace+compile seconds and the device's peak bytes.

Prints one line per (renderer, worlds) and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from sweepax.envs import registry


def measure(env_id: str, renderer: str, worlds: int, steps: int, repeats: int) -> dict:
    """Compile seconds, env steps/s and render-only frames/s for one renderer and world count."""
    env, params = registry.make(env_id, renderer=renderer)
    low, high = env.action_space(params).low, env.action_space(params).high
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))

    def rollout(state, key):
        def body(state, key):
            key_act, key_step = jax.random.split(key)
            act = jax.random.uniform(key_act, (worlds, low.shape[0]), minval=low, maxval=high)
            obs, state, *_ = v_step(jax.random.split(key_step, worlds), state, act, params)
            return state, obs.mean()

        return jax.lax.scan(body, state, jax.random.split(key, steps))

    start = time.perf_counter()
    _, state = reset(jax.random.split(jax.random.key(0), worlds), params)
    run = jax.jit(rollout).lower(state, jax.random.key(1)).compile()
    jax.block_until_ready(run(state, jax.random.key(1)))  # Warp loads its kernels on first call
    compile_s = time.perf_counter() - start
    best = min(_timed(lambda r=r: run(state, jax.random.key(2 + r))) for r in range(repeats))
    render = jax.jit(jax.vmap(env.render))
    jax.block_until_ready(render(state.data))
    render_s = min(_timed(lambda: render(state.data)) for _ in range(repeats))
    return {
        "renderer": renderer,
        "worlds": worlds,
        "obs": env.obs_shape,
        "compile_s": compile_s,
        "steps_per_s": worlds * steps / best,
        "frames_per_s": worlds / render_s,
    }


def ppo_task(env_id: str, renderer: str, steps: int, envs: int, work: Path) -> dict:
    """One PPO training task on ``env_id`` with ``renderer``; figures from its store."""
    from sweepax.results.store import read_attrs

    study = f"warp_bench_{renderer}"
    argv = [sys.executable, "-m", "sweepax.train", "ppo", "--study", study,
            "--results_dir", str(work), "--env", env_id, "--renderer", renderer,
            "--num_envs", str(envs), "--num_steps", "32", "--num_minibatches", "4",
            "--total_steps", str(steps), "--n_seeds", "1"]  # fmt: skip
    subprocess.run(argv, check=True, cwd=work, stdout=subprocess.DEVNULL)
    (store,) = (work / study).glob("*.zarr")
    prov = read_attrs(store)["provenance"]
    peak = prov.get("device_peak_bytes")
    return {
        "renderer": renderer,
        "steps_per_s": prov["env_steps_per_second"],
        "compile_s": prov["compile_seconds"],
        "peak_gib": None if peak is None else peak / 2**30,
    }


def peak_memory_gib() -> float | None:
    """Peak memory JAX allocated on the first device, GiB (None where it does not say)."""
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def main() -> None:
    """Measure each renderer at each world count; print lines and a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="hopper_pixels")
    parser.add_argument("--renderers", nargs="+", default=["warp", "jax"])
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gpu", action="store_true", help="on a GPU: also 1024 worlds, memory")
    parser.add_argument("--ppo-steps", type=int, default=None, help="also a PPO task per renderer")
    parser.add_argument("--ppo-envs", type=int, default=64, help="its num_envs (default 64)")
    args = parser.parse_args()
    if args.ppo_steps is None:
        args.ppo_steps = 262_144 if args.gpu else 0
    platform = jax.devices()[0].platform
    if args.gpu and platform != "gpu":
        sys.exit(f"--gpu: JAX sees no GPU here (platform {platform!r})")
    worlds = [*args.worlds, 1024] if args.gpu and 1024 not in args.worlds else args.worlds
    rows = []
    for renderer in args.renderers:
        for n in worlds:
            row = measure(args.env, renderer, n, args.steps, args.repeats)
            row["peak_gib"] = peak_memory_gib() if args.gpu else None
            rows.append(row)
            print(
                f"{args.env} {renderer} {row['obs']} x {n} on {platform}: compile "
                f"{row['compile_s']:.1f} s, {row['steps_per_s']:.0f} env steps/s, render alone "
                f"{row['frames_per_s']:.0f} frames/s",
                flush=True,
            )
    head = "| renderer | worlds | compile s | env steps/s | frames/s (render alone) |"
    print(f"\n{head}{' peak GiB |' if args.gpu else ''}")
    print(f"|---|---:|---:|---:|---:|{'---:|' if args.gpu else ''}")
    for r in rows:
        peak = f" {r['peak_gib']:.2f} |" if args.gpu and r["peak_gib"] is not None else ""
        print(
            f"| {r['renderer']} | {r['worlds']} | {r['compile_s']:.1f} | {r['steps_per_s']:.0f} "
            f"| {r['frames_per_s']:.0f} |{peak}"
        )
    if args.ppo_steps:
        with tempfile.TemporaryDirectory() as work:
            tasks = [
                ppo_task(args.env, r, args.ppo_steps, args.ppo_envs, Path(work))
                for r in args.renderers
            ]
        print(f"\nPPO on {args.env}, {args.ppo_envs} envs, {args.ppo_steps} env steps, {platform}:")
        print(
            "| renderer | env steps/s | trace+compile s | device peak GiB |\n|---|---:|---:|---:|"
        )
        for t in tasks:
            peak = "n/a" if t["peak_gib"] is None else f"{t['peak_gib']:.2f}"
            print(f"| {t['renderer']} | {t['steps_per_s']} | {t['compile_s']:.1f} | {peak} |")


def _timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
