"""The recorded Craftax experiment: a short run of recurrent PPO at POBAX's own ``best/`` settings
on symbolic Craftax-Classic, run with sweepax's own commands, beside a uniform random policy.

The sweep file is POBAX 0.0.1's, verbatim (``craftax_short/pobax_best/``, from its sdist): lr
2.5e-4 annealed, hidden 512, 256 envs x 64 steps, 4 minibatches, lambda0 0.5, entropy 0.01,
POBAX's defaults for the rest. POBAX runs it on ``craftax_pixels`` (No-Inventory Crafter); this
experiment runs it on symbolic Craftax-Classic (``craftax_classic``, 1345 floats, 17 actions;
``--env craftax`` for the full game, Craftax-Symbolic-v1, 8268 floats), and changes the budget,
written as overrides at the end of the copy under ``craftax_short/sweeps/``:
``env``, ``n_seeds`` and ``seed`` (POBAX: 10 tasks of 3 vmapped seeds from 2050; here one task
of ``--seeds`` seeds from 2050), ``total_steps`` (POBAX: 5e8) and ``platform`` (POBAX: gpu).
Then ``write_jobs``, ``run_local``, ``parse``, ``compare`` and ``results.md`` /
``results.csv``.

The expectation for a short run: the trained policy's return, and its learning curve (mean
return of the episodes that ended in each update), rise above a uniform random policy's mean
episode return, measured here on the same env as the evaluation rollout is (``random_policy``:
``RANDOM_ENVS`` fresh envs x ``RANDOM_STEPS`` steps, the evaluation rollout's length, complete
episodes only; kept in ``random_policy.json``).

Cost here: counting multiply-adds, one update of the full game (16,384 env steps, 4 epochs, its
8268-float observation into hidden 512, then a GRU 512) is about 2.7 TFLOP per seed, Classic's
about 45% of that; at the 10-25 GFLOP/s one shared core of this machine gave PPO on the Navix
maze, the full game takes minutes per seed and update, too slow here, so the default is Classic
(``results.md`` gives its measured env steps/s). 5e8 steps x 30 seeds is a GPU budget
(``--env craftax_pixels --steps 500000000 --seeds 30 --platform gpu``).

    PYTHONPATH=src python experiments/craftax_short.py [--seeds N] [--steps N] [--env ID]

Complete tasks are skipped on a re-run (``run_local``); interrupted ones resume from checkpoints.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from commands import ROOT, best_head, run_best, write_best_sweeps, write_results

OUT = ROOT / "experiments" / "craftax_short"
STUDY = "craftax_ppo_best"
NOTE = (
    "POBAX's published values are in its README's figure (`images/all_envs.png`), which could "
    "not be read where this ran, and are for `craftax_pixels` at 5e8 steps; this run is a short "
    "one on a symbolic id. The expectation is only that the trained policy's return and its "
    "learning curve rise above a uniform random policy's return (below)."
)
SEEDS, STEPS, FIRST_SEED, ENV = 3, 49_152, 2050, "craftax_classic"
RANDOM_ENVS, RANDOM_STEPS, RANDOM_SEED = 32, 1000, 0


def write_sweep_files(seeds: int, steps: int, platform: str, env: str) -> list[str]:
    """``sweeps/<study>.py``: POBAX's file with the experiment's env and budget."""
    budget = {"env": env, "seed": FIRST_SEED, "n_seeds": seeds, "total_steps": steps,
              "platform": platform}  # fmt: skip
    why = "experiments/craftax_short.py: a symbolic Craftax id, the experiment's budget"
    return write_best_sweeps(OUT, [STUDY], budget, why)


def random_policy(env_id: str, envs: int, steps: int, seed: int) -> dict:
    """Mean return of the episodes a uniform random policy completes in ``envs`` x ``steps``
    steps of ``env_id`` (sweepax's env, auto-reset as in training), and their number."""
    import jax
    import jax.numpy as jnp

    from sweepax.envs.registry import make

    env, params = make(env_id)
    key_reset, key_run = jax.random.split(jax.random.PRNGKey(seed))
    _, state = jax.vmap(env.reset, (0, None))(jax.random.split(key_reset, envs), params)

    def step(carry, key):
        state, running, total, count = carry
        key_act, key_step = jax.random.split(key)
        action = jax.random.randint(key_act, (envs,), 0, env.num_actions)
        keys = jax.random.split(key_step, envs)
        _, state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
            keys, state, action, params
        )
        running = running + reward
        done = term | trunc
        total = total + jnp.where(done, running, 0.0).sum()
        return (state, jnp.where(done, 0.0, running), total, count + done.sum()), None

    init = (state, jnp.zeros(envs), jnp.zeros(()), jnp.zeros((), jnp.int32))
    run = jax.jit(lambda init, keys: jax.lax.scan(step, init, keys)[0])
    _, _, total, count = run(init, jax.random.split(key_run, steps))
    return {"env": env_id, "envs": envs, "steps": steps, "seed": seed,
            "episodes": int(count), "mean_return": float(total / max(int(count), 1))}  # fmt: skip


def reference(env_id: str) -> dict:
    """``random_policy`` for ``env_id``, measured once and kept in ``random_policy.json``."""
    path = OUT / "random_policy.json"
    if path.exists() and json.loads(path.read_text())["env"] == env_id:
        return json.loads(path.read_text())
    print(f"measuring a uniform random policy on {env_id}", flush=True)
    ref = random_policy(env_id, RANDOM_ENVS, RANDOM_STEPS, RANDOM_SEED)
    path.write_text(json.dumps(ref, indent=1) + "\n")
    return ref


def learning_curve() -> tuple[np.ndarray, np.ndarray]:
    """Env steps (update,) and the mean return of the episodes that ended in each update
    (seed, update; NaN where none ended)."""
    from sweepax.results.store import complete_stores, open_store

    (store,) = complete_stores(OUT / "results" / STUDY).values()
    ds = open_store(store)
    return ds["env_steps"].values, ds["episode_return"].values[0]


def curve_figure(ref: dict) -> None:
    """``curve.png`` / ``curve.svg``: the learning curve (mean, 95% t interval over seeds) and
    the random policy's mean episode return."""
    from matplotlib.figure import Figure

    from sweepax.results.compare import save_figure
    from sweepax.results.stats import t_interval

    steps, curve = learning_curve()
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    mean, low, high = t_interval(curve)  # over seeds, at each update
    ax.plot(steps, mean, label=f"{STUDY} ({curve.shape[0]} seeds)")
    ax.fill_between(steps, low, high, alpha=0.25, linewidth=0)
    ax.axhline(ref["mean_return"], color="k", linestyle="--", label="uniform random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(f"{ref['env']}: mean, 95% CI over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    save_figure(fig, OUT / "curve")


def curve_table(ref: dict) -> str:
    """The learning curve at its first and last quarter against the random policy's return."""
    from sweepax.results.stats import mean_ci
    from sweepax.results.store import complete_stores, open_store

    steps, curve = learning_curve()
    quarter = max(curve.shape[1] // 4, 1)
    cells = []
    for part in (curve[:, :quarter], curve[:, -quarter:]):
        ci = mean_ci(np.nanmean(part, axis=1))
        cells.append(f"{ci.value:.2f} [{ci.low:.2f}, {ci.high:.2f}]")
    (store,) = complete_stores(OUT / "results" / STUDY).values()
    final = mean_ci(open_store(store)["final_return"].values[0])
    side = "above" if final.low > ref["mean_return"] else "not clearly above"
    return (
        f"\nThe evaluation rollout after training (fresh envs, 1000 steps, complete episodes, as "
        f"the random policy's below) returns {final.value:.2f} [{final.low:.2f}, "
        f"{final.high:.2f}]: {side} the random policy's {ref['mean_return']:.2f}. The training "
        "curve's first updates see only the episodes that ended early (deaths), so it starts low.\n"
        f"\nLearning curve (mean return of the episodes ending in each update, mean over "
        f"updates then over seeds [95% t interval]), against a uniform random policy on "
        f"`{ref['env']}` ({ref['envs']} envs x {ref['steps']} steps, {ref['episodes']} "
        f"complete episodes):\n\n| study | first {quarter} updates (to {steps[quarter - 1]:,} "
        f"steps) | last {quarter} updates (to {steps[-1]:,} steps) | random policy |\n"
        f"|---|---|---|---|\n| {STUDY} | {cells[0]} | {cells[1]} | {ref['mean_return']:.2f} |\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=SEEDS, help="seeds (POBAX: 30)")
    p.add_argument("--steps", type=int, default=STEPS, help="env steps per run (POBAX: 5e8)")
    p.add_argument("--env", default=ENV, help="craftax_classic or craftax (POBAX: pixels)")
    p.add_argument("--platform", default="cpu", help="cpu or gpu (POBAX: gpu)")
    p.add_argument("--parallel", default="1", help="tasks at once (run_local --parallel)")
    args = p.parse_args()
    sweeps = write_sweep_files(args.seeds, args.steps, args.platform, args.env)
    run_best(OUT, [STUDY], sweeps, args.parallel)
    title = f"POBAX's Craftax PPO (best settings) on `{args.env}`"
    figures = "Learning curve: [curve.png](curve.png)."
    head = best_head(title, "craftax_short.py", NOTE, "expected", figures)
    write_results(OUT, {STUDY: "above a random policy"}, head)
    ref = reference(args.env)
    curve_figure(ref)
    with (OUT / "results.md").open("a") as f:
        f.write(curve_table(ref))
    print((OUT / "results.md").read_text())


if __name__ == "__main__":
    main()
