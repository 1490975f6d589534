"""Roofline account of PPO on the ``tmaze_10_ppo`` shape: FLOPs, fraction of peak, where time goes.

For each variant (recurrent GRU, memoryless MLP) and grid (24 configs x 10 seeds, 1 x 1), in one
process:

- **FLOPs of one update** (all runs of the grid), two ways:
  *xla*: XLA's cost analysis (``compiled.cost_analysis()['flops']``) of the loop-free pieces: one
  network forward on one env step, one forward+backward of the PPO loss on one step, one env
  step; multiplied by the trip counts of the update (``num_steps`` rollout steps, ``update_epochs``
  epochs over ``num_steps x num_envs`` samples). XLA counts the body of a ``while`` loop once, so
  the cost analysis of the whole update program would count one step of each ``scan``: only the
  pieces are analysed directly.
  *hand*: the matmuls of the network, ``2 * fan_in * fan_out`` per Dense layer per sample
  (GRU: 6 square matmuls per step), x3 for forward+backward in the epochs. The ratio xla/hand
  shows how much beyond the matmuls (activations, Adam, the env) the program computes.
- **Achieved FLOP/s** = xla FLOPs per update / measured seconds per update, and the **peak** of
  this machine measured in the same process (a jitted 1024 x 1024 float32 matmul, best of several
  runs), hence the fraction of peak.
- **Where time goes**: each piece compiled as its own program over the grid, split over the
  host's CPU devices (one per core, as ``python -m sweepax.train`` makes them; ``ppo.run_mesh``)
  and vmapped a block of runs at a time as the task's update program is on this backend
  (``ppo.runs_per_block``), and timed alone (median of repeats after a warm-up): the env step
  alone (random actions, the same ``num_steps x num_envs`` per run), the rollout (policy
  forward + env step + bookkeeping), GAE (``value_targets``), and the PPO epochs as the whole
  update minus rollout minus GAE.
- **Kernels per env step**: how many kernels (fusions, copies, dots) XLA launches in each
  iteration of the compiled update's rollout loop, read from ``compiled.as_text()``, and the
  rollout's time per launch. On a CPU each launch costs a fixed overhead, so for small grids
  (1 x 1: 4-element arrays) the count, not the arithmetic, sets the rollout's speed.
- **Launches per update**: every kernel one update launches, counted in the compiled program
  (each loop body and condition once per trip, calls followed, the costliest branch of a
  conditional), and the update's time per launch.

    nox -s bench_roofline -- [--variants recurrent,memoryless] [--grids 24x10,1x1] [--repeats 5]
                             [--json out.json]

Run it on an idle machine: the pieces are timed one after another, so load changes the shares.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from sweepax.agents import ppo
from sweepax.agents.config import PPOStatic, PPOSweep
from sweepax.agents.networks import ActionSpec, make_network
from sweepax.envs import registry
from sweepax.train import use_cpu_devices

# The tmaze_10_ppo study (hyperparams/tmaze/tmaze_10_ppo.py): its lr x lambda0 grid, 10 seeds.
LRS = [2.5e-3, 2.5e-4, 2.5e-5, 2.5e-6]
LAMBDAS = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95]
SHAPE = dict(env="tmaze_10", action_concat=True, hidden_size=32, num_envs=4,
             normalize_advantages=False)  # fmt: skip
UPDATES_TIMED = 8  # updates per timed call of the update program


def flops(fn: tp.Callable, *args: tp.Any) -> float:
    """XLA's FLOP count of ``jit(fn)(*args)`` (a loop-free program: every op counted once)."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def timed(fn: tp.Callable, *args: tp.Any, repeats: int) -> float:
    """Median wall seconds of ``fn(*args)`` (blocked), after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_flops(n: int = 1024, repeats: int = 10) -> float:
    """Best float32 matmul FLOP/s of this process's device (an ``n x n`` by ``n x n`` product)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    mm = jax.jit(lambda x: x @ x)
    jax.block_until_ready(mm(a))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(mm(a))
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


_NOT_KERNELS = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}


def _computations(hlo: str) -> tuple[dict[str, list[str]], str]:
    """The instructions of each computation of ``compiled.as_text()``, and the entry's name."""
    bodies: dict[str, list[str]] = {}
    name = entry = None
    for line in hlo.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith("{"):
            name = line.split()[1 if line.startswith("ENTRY") else 0].lstrip("%")
            bodies[name] = []
            if line.startswith("ENTRY"):
                entry = name
        elif name is not None and line.startswith("  "):
            bodies[name].append(line)
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")
    return bodies, entry


def _opcode(line: str) -> str | None:
    """The opcode of one instruction line (``%x = TYPE opcode(...)``; TYPE may be a tuple)."""
    _, eq, rest = line.partition(" = ")
    if not eq:
        return None
    if rest.startswith("("):  # a tuple type: skip to its closing parenthesis
        depth = 0
        for i, ch in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                rest = rest[i + 1 :]
                break
    else:
        rest = rest.partition(" ")[2]
    match = re.match(r"\s*([a-z][a-z\-]*)\(", rest)
    return match.group(1) if match else None


def _attr(line: str, key: str) -> str | None:
    match = re.search(key + r"=%?([\w.\-]+)", line)
    return match.group(1) if match else None


def _trips(line: str) -> int | None:
    match = re.search(r"\"known_trip_count\":\{\"n\":\"(\d+)\"", line)
    return int(match.group(1)) if match else None


def _branches(line: str) -> list[str]:
    """The branch computations of a ``conditional`` instruction."""
    listed = re.search(r"branch_computations=\{([^}]*)\}", line)
    if listed:
        return [name.strip().lstrip("%") for name in listed.group(1).split(",")]
    return [n for key in ("true_computation", "false_computation") if (n := _attr(line, key))]


def _kernels(ops: list[str]) -> int:
    return sum(1 for op in ops if (code := _opcode(op)) and code not in _NOT_KERNELS)


def loop_kernels(hlo: str, trips: int) -> int:
    """Kernels XLA launches per iteration of the compiled program's busiest loop of ``trips``
    iterations (the rollout's, when ``trips`` is num_steps): the instructions of its body but
    parameters, tuples, constants and bitcasts, i.e. fusions, copies, dots and calls.
    ``hlo``: ``compiled.as_text()``."""
    bodies, _ = _computations(hlo)
    counts = [0]
    for ops in bodies.values():
        for op in ops:
            if _opcode(op) == "while" and _trips(op) == trips:
                counts.append(_kernels(bodies.get(_attr(op, "body") or "", [])))
    return max(counts)


def launches(hlo: str) -> int:
    """Kernels one execution of the compiled program launches: each instruction of the entry
    but parameters, tuples, constants and bitcasts counts once; a ``while`` counts its body and
    condition once per trip (its known trip count), a ``call`` what its computation launches,
    and a ``conditional`` its costliest branch. ``hlo``: ``compiled.as_text()``."""
    bodies, entry = _computations(hlo)
    memo: dict[str, int] = {}

    def count(name: str | None) -> int:
        if name is None:
            return 0
        if name not in memo:
            total = 0
            for op in bodies.get(name, []):
                code = _opcode(op)
                if code == "while":
                    cond = count(_attr(op, "condition"))  # once more for the exit test
                    total += (_trips(op) or 1) * (count(_attr(op, "body")) + cond) + cond
                elif code == "call":
                    total += count(_attr(op, "to_apply"))
                elif code == "conditional":
                    total += 1 + max((count(n) for n in _branches(op)), default=0)
                elif code is not None and code not in _NOT_KERNELS:
                    total += 1
            memo[name] = total
        return memo[name]

    return count(entry)


def hand_flops(static: PPOStatic, in_dim: int, n_actions: int) -> dict[str, float]:
    """Matmul FLOPs of one run's update by hand: per-sample forward, and the update's total."""
    h = static.hidden_size
    dense = lambda i, o: 2 * i * o  # noqa: E731
    heads = dense(h, h) + dense(h, n_actions) + dense(h, h) + dense(h, 1)
    if static.memoryless:
        forward = dense(in_dim, h) + dense(h, h) + heads
    else:
        forward = dense(in_dim, h) + 6 * dense(h, h) + heads  # embedding, GRU (3 in + 3 rec)
    samples = static.num_steps * static.num_envs
    rollout = (samples + static.num_envs) * forward  # + the bootstrap value of the last obs
    epochs = static.update_epochs * samples * 3 * forward  # forward + backward ~ 3 forwards
    return {"forward": forward, "update": rollout + epochs}


def grid(spec: str) -> tuple[int, int]:
    """``"24x10"`` -> (configs, seeds)."""
    configs, seeds = (int(n) for n in spec.split("x"))
    return configs, seeds


def sweep_of(configs: int) -> PPOSweep:
    """The first ``configs`` (lr, lambda0) pairs of the study's grid, as a vmapped PPOSweep
    (the grid repeated when ``configs`` is larger than it)."""
    grid = [(lr, lam) for lr in LRS for lam in LAMBDAS]
    pairs = [grid[i % len(grid)] for i in range(configs)]
    return PPOSweep(
        lr=jnp.asarray([p[0] for p in pairs], jnp.float32),
        lambda0=jnp.asarray([p[1] for p in pairs], jnp.float32),
        lambda1=jnp.full((configs,), 0.95, jnp.float32),
        ld_weight=jnp.zeros((configs,), jnp.float32),
        entropy_coeff=jnp.full((configs,), 0.01, jnp.float32),
        vf_coeff=jnp.full((configs,), 0.5, jnp.float32),
        clip_eps=jnp.full((configs,), 0.2, jnp.float32),
        max_grad_norm=jnp.full((configs,), 0.5, jnp.float32),
    )


def grid_map(fn: tp.Callable, in_axes: tuple, block: int | None = None) -> tp.Callable:
    """``jit`` of ``fn`` over (configs, seeds) (``ppo.over_runs``), split over the devices as the
    task's programs are (``ppo.over_devices``): ``in_axes`` gives each argument's (config, seed)
    axes; ``block`` runs of a device's share at a time, or None: all of them in one vmap."""
    backend = jax.default_backend()
    return jax.jit(ppo.over_devices(lambda _: ppo.over_runs(fn, in_axes, block), in_axes, backend))


def account(variant: str, spec: str, repeats: int, peak: float) -> dict[str, tp.Any]:
    """FLOPs, FLOP/s and time shares of one variant x grid."""
    configs, seeds = grid(spec)
    static = PPOStatic(**SHAPE, memoryless=variant == "memoryless", n_seeds=seeds,
                       total_steps=128 * 4 * 10_000)  # fmt: skip
    trainer = ppo.make_trainer(static)
    env, env_params = registry.make(static.env)
    sweep = sweep_of(configs)
    seed_ids = jnp.arange(seeds, dtype=jnp.int32)
    both, cfg, none = (0, 0), (0, None), None

    runner = grid_map(trainer.init, (cfg, (None, 0)))(sweep, seed_ids)
    param_bytes = ppo.run_param_bytes(runner.params, configs * seeds)
    mesh = ppo.run_mesh(configs, seeds, jax.default_backend())
    devices = 1 if mesh is None else mesh.devices.size
    block = ppo.runs_per_block(static, jax.default_backend(), param_bytes, devices > 1)
    idx = jnp.arange(UPDATES_TIMED, dtype=jnp.int32)
    update = grid_map(trainer.update, (both, cfg, none), block)
    t_update = timed(update, runner, sweep, idx, repeats=repeats) / UPDATES_TIMED
    hlo = update.lower(runner, sweep, idx).compile().as_text()
    kernels = loop_kernels(hlo, static.num_steps)
    launches_per_update = launches(hlo) / UPDATES_TIMED

    keys = jax.vmap(lambda c: jax.vmap(lambda s: jax.random.PRNGKey(c * 1000 + s))(seed_ids))(
        jnp.arange(configs)
    )
    rollout = grid_map(lambda p, lp, k: trainer.rollout(p, lp, k, static.num_steps),
                       (both, both, both), block)  # fmt: skip
    t_rollout = timed(rollout, runner.params, runner.loop, keys, repeats=repeats)
    _, traj = rollout(runner.params, runner.loop, keys)

    def gae(t: ppo.Transition, s: PPOSweep) -> tuple[jax.Array, jax.Array]:
        last = jnp.zeros_like(t.value[0])
        lam0, lam1 = s.lambda0, s.lambda1
        return ppo.value_targets(t.reward, t.value, t.done, last, static.gamma, lam0, lam1)

    t_gae = timed(grid_map(gae, (both, cfg), block), traj, sweep, repeats=repeats)

    n_actions = env.action_space(env_params).n

    def env_only(key: jax.Array) -> jax.Array:
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, static.num_envs),
                                                  env_params)  # fmt: skip

        # as the rollout steps it: the env's own draws made before the loop where it offers them
        k_act, k_step = jax.random.split(k_run)
        acts = jax.random.randint(k_act, (static.num_steps, static.num_envs), 0, n_actions)
        step_keys = jax.random.split(k_step, (static.num_steps, static.num_envs))
        draw_step, env_step = ppo.env_step_fns(env)
        draws = jax.vmap(jax.vmap(draw_step))(step_keys)
        step = jax.vmap(env_step, (0, 0, 0, None))

        def body(state: tp.Any, x: tuple) -> tuple[tp.Any, jax.Array]:
            _, state, reward, *_ = step(x[0], state, x[1], env_params)
            return state, reward

        return jax.lax.scan(body, state, (draws, acts))[1].sum()

    t_env = timed(grid_map(env_only, (both,), block), keys, repeats=repeats)

    # FLOPs of the loop-free pieces (one run), times the update's trip counts
    one = jax.tree.map(lambda x: x[0, 0], runner)
    net = make_network(static.memoryless, ActionSpec(n_actions), static.hidden_size)
    step_in = (one.loop.obs[None], one.loop.reset[None])
    f_fwd = flops(lambda p: net.apply(p, one.loop.hidden, step_in), one.params)

    def loss(p: tp.Any) -> jax.Array:
        _, logits, value = net.apply(p, one.loop.hidden, step_in)
        return jnp.sum(logits) + jnp.sum(value)

    f_train = flops(jax.grad(loss), one.params)
    env_state = jax.tree.map(lambda x: x[0, 0], runner.loop.env_state)
    act = jnp.zeros((static.num_envs,), jnp.int32)
    f_env = flops(
        lambda s: jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(jax.random.PRNGKey(0), static.num_envs), s, act, env_params
        ),
        env_state,
    )
    # rollout (policy + env, num_envs per step), the bootstrap value, the epochs' fwd+bwd
    rollout_flops = static.num_steps * (f_fwd + f_env) + f_fwd
    per_run = rollout_flops + static.update_epochs * static.num_steps * f_train
    in_dim = int(one.loop.obs.shape[-1])
    hand = hand_flops(static, in_dim, n_actions)
    runs = configs * seeds
    xla_update = per_run * runs
    t_epochs = max(t_update - t_rollout - t_gae, 0.0)
    steps = static.num_steps * static.num_envs * runs
    block_runs = ppo.block_size(runs // devices, block)
    blocks = runs // devices // block_runs  # each device's rollout loops once per block
    return {
        "variant": variant,
        "grid": spec,
        "devices": devices,
        "runs_per_block": block_runs,
        "update_s": t_update,
        "env_steps_per_s": steps / t_update,
        "flops_update_xla": xla_update,
        "flops_update_hand": hand["update"] * runs,
        "xla_over_hand": xla_update / (hand["update"] * runs),
        "flops_per_s": xla_update / t_update,
        "fraction_of_peak": xla_update / t_update / peak,
        "kernels_per_env_step": kernels,
        "launches_per_update": launches_per_update,
        "us_per_launch": 1e6 * t_update / launches_per_update,
        "us_per_kernel": 1e6 * t_rollout / (static.num_steps * blocks * max(1, kernels)),
        "share_env": t_env / t_update,
        "share_rollout": t_rollout / t_update,
        "share_gae": t_gae / t_update,
        "share_epochs": t_epochs / t_update,
    }


def table(rows: list[dict[str, tp.Any]], peak: float) -> str:
    """The rows as a Markdown table, with the machine's peak in the heading."""
    lines = [
        f"peak float32 matmul: {peak / 1e9:.1f} GFLOP/s ({jax.devices()[0].platform}, "
        f"{jax.device_count()} device(s))",
        "",
        "| variant | grid | devices | runs per block | update ms | env steps/s "
        "| GFLOP/update (xla / hand) | GFLOP/s | % of peak | env | rollout | GAE | epochs "
        "| kernels per env step | us per kernel | launches per update | us per launch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['grid']} | {r['devices']} | {r['runs_per_block']} | "
            f"{r['update_s'] * 1e3:.2f} | "
            f"{r['env_steps_per_s']:,.0f} | {r['flops_update_xla'] / 1e9:.4f} / "
            f"{r['flops_update_hand'] / 1e9:.4f} | {r['flops_per_s'] / 1e9:.2f} | "
            f"{100 * r['fraction_of_peak']:.2f} | {100 * r['share_env']:.0f}% | "
            f"{100 * r['share_rollout']:.0f}% | {100 * r['share_gae']:.0f}% | "
            f"{100 * r['share_epochs']:.0f}% | {r['kernels_per_env_step']} | "
            f"{r['us_per_kernel']:.2f} | {r['launches_per_update']:,.0f} | "
            f"{r['us_per_launch']:.2f} |"
        )
    lines.append("")
    lines.append("env: the env step alone (part of rollout); epochs = update - rollout - GAE.")
    lines.append(
        "kernels per env step: what XLA launches in each iteration of the rollout's loop (a block "
        "of runs); us per kernel: the rollout's time over those launches."
    )
    lines.append(
        "launches per update: every kernel the update program launches, loops counted per trip "
        "(each device's, when the runs are split), over the updates of one call; us per launch: "
        "the update's time over them."
    )
    return "\n".join(lines)


def main(argv: tp.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="recurrent,memoryless")
    parser.add_argument("--grids", default="24x10,1x1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    use_cpu_devices()  # one CPU device per core, as a training task has
    peak = peak_flops()
    rows = [
        account(variant, spec, args.repeats, peak)
        for variant in args.variants.split(",")
        for spec in args.grids.split(",")
    ]
    print(table(rows, peak))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_flops": peak, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    raise SystemExit(main())
