"""Pixel env steps/s (``<body>-pixels[-N]``: MJX physics + pure-JAX ray-cast image) on one device.

Source: the timing pattern of ``bench/mjx_steps.py``: jit a ``lax.scan`` of ``vmap(step)`` over
``--worlds`` worlds (random actions, full gymnax step with auto-reset), compile separately, one
untimed warm-up call, then the best of ``--repeats`` timed calls, blocking on the result.
Also times the renderer alone (``vmap(env.render)`` on the reset states).

    python bench/pixel_steps.py [--env hopper-pixels] [--worlds 16] [--steps 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import jax

from sweepax.envs import registry


def main() -> None:
    """Print compile s, env steps/s and render-only frames/s for one env id."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="hopper-pixels")
    parser.add_argument("--worlds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    env, params = registry.make(args.env)
    keys = jax.random.split(jax.random.key(0), args.worlds)
    _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    low, high = env.action_space(params).low, env.action_space(params).high
    v_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def _rollout(state, key):
        def _body(state, key):
            key_act, key_step = jax.random.split(key)
            act = jax.random.uniform(key_act, (args.worlds, low.shape[0]), minval=low, maxval=high)
            obs, state, *_ = v_step(jax.random.split(key_step, args.worlds), state, act, params)
            return state, obs.mean()

        return jax.lax.scan(_body, state, jax.random.split(key, args.steps))

    start = time.perf_counter()
    rollout = jax.jit(_rollout).lower(state, jax.random.key(1)).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(rollout(state, jax.random.key(1)))
    best = min(_timed(lambda: rollout(state, jax.random.key(2 + r))) for r in range(args.repeats))
    render = jax.jit(jax.vmap(env.render))
    jax.block_until_ready(render(state.data))
    render_s = min(_timed(lambda: render(state.data)) for _ in range(args.repeats))
    print(
        f"{args.env} {env.obs_shape} x {args.worlds} worlds on {jax.devices()[0].platform}: "
        f"compile {compile_s:.1f} s, {args.worlds * args.steps / best:.0f} env steps/s "
        f"({best / args.steps * 1e3:.1f} ms per batched step), render alone "
        f"{render_s * 1e3:.1f} ms per batch ({args.worlds / render_s:.0f} frames/s)"
    )


def _timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
