"""The program each job-array line runs: ``python -m sweepax.train <entry> [--hyperparameter ...]``.

It trains every (config, seed) of one task in ONE jitted program (vmap over seeds inside vmap over
configs) and writes ``<results_dir>/<study>/<task_id>.zarr`` atomically.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import typing as tp  # noqa: E402
from pathlib import Path  # noqa: E402

from sweepax import entries, provenance  # noqa: E402
from sweepax.errors import UserError, cli  # noqa: E402
from sweepax.sweep import args as task_args  # noqa: E402

PROGRESS_TIMES = 20  # progress lines per run


class Progress:
    """Prints ``progress: update u/U`` lines (once per update, whatever the vmap width)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.last = -1
        self.start = time.perf_counter()

    def __call__(self, done: tp.Any, num_updates: tp.Any) -> None:
        """``done`` updates of ``num_updates`` are complete."""
        done, num_updates = int(done), int(num_updates)
        if done <= self.last:
            return
        self.last = done
        elapsed = time.perf_counter() - self.start
        print(
            f"progress: task {self.task_id} update {done}/{num_updates} "
            f"({100 * done / num_updates:.0f}%) {elapsed:.1f}s",
            file=sys.stderr,
            flush=True,
        )


def _use_platform(platform: str | None) -> None:
    """Fail fast when a GPU was asked for and JAX sees none (instead of training on the CPU)."""
    import jax

    if platform is None:
        return
    backends = {d.platform for d in jax.devices()}
    wanted = {"gpu": {"gpu", "cuda", "rocm"}, "cpu": {"cpu"}}.get(platform)
    if wanted is None:
        raise UserError(f"--platform {platform!r}: use cpu or gpu")
    if not backends & wanted:
        raise UserError(
            f"--platform {platform}: JAX sees only {sorted(backends)} devices; run on a {platform} "
            "node (check the container's --nv and jax[cuda12]) or drop 'platform' from the "
            "sweep file"
        )


def _use_compilation_cache() -> dict[str, tp.Any]:
    """Switch on JAX's persistent compilation cache; its counters fill in during compilation.

    ``$SWEEPAX_JAX_CACHE`` names the folder (``off`` disables it); default
    ``$XDG_CACHE_HOME/sweepax/jax`` (``~/.cache/sweepax/jax``). Every task of a study with the same
    shapes compiles the same programs, so on a shared home or project folder only the first task
    compiles; the others load the executables (the key covers jax/jaxlib versions, device and
    XLA flags, so a different image or GPU compiles afresh).
    """
    import jax

    where = os.environ.get("SWEEPAX_JAX_CACHE", "")
    info: dict[str, tp.Any] = {"dir": None, "hits": 0, "misses": 0}
    if where.lower() == "off":
        return info
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(where) if where else cache_home / "sweepax" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    info["dir"] = str(path)

    def _count(event: str, **_: tp.Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            info["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            info["misses"] += 1

    jax.monitoring.register_event_listener(_count)
    return info


def _summary(metrics: dict, rows: list[dict], keys: list[str]) -> str:
    import numpy as np

    lines = []
    for i, row in enumerate(rows):
        label = " ".join(f"{k}={row[k]:g}" for k in keys) or "config"
        finals = metrics["final_return"][i]
        lines.append(
            f"  {label}: final_return {np.nanmean(finals):.3f} (seeds: "
            + ", ".join(f"{x:.2f}" for x in finals)
            + ")"
        )
    return "\n".join(lines)


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Parse one task's arguments, train it, write its store."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(f"usage: python -m sweepax.train {{{','.join(entries.names())}}} [--help] [...]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    entry = entries.get(argv[0])
    parser = task_args.parser(entry)
    ns = parser.parse_args(argv[1:])
    static_values, rows = task_args.resolve(entry, ns, parser.error)
    from sweepax.envs import registry

    registry.check(static_values["env"])
    if problems := entry.static_cls(**static_values).problems():
        raise UserError("; ".join(problems))
    task_id = task_args.task_id(entry, static_values, rows)
    prov = provenance.collect(argv, spec=ns.spec)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from sweepax.results import store

    import_s = time.perf_counter() - _T0
    _use_platform(ns.platform)
    cache = _use_compilation_cache()
    static = entry.static_cls(**static_values)
    swept = [f.name for f in entry.sweep_fields]
    varying = [k for k in swept if len({r[k] for r in rows}) > 1]
    seeds = list(range(static.seed, static.seed + static.n_seeds))
    print(
        f"task {task_id}: {entry.name} on {static.env}, {len(rows)} configs x {len(seeds)} seeds, "
        f"{static.total_steps} steps each, devices {jax.devices()}",
        file=sys.stderr,
        flush=True,
    )

    try:
        sweep_fn = entry.make_sweep_fn(static, on_progress=Progress(task_id))
    except NotImplementedError as err:
        raise UserError(f"{entry.name}: {err}") from None
    sweep = entry.sweep_cls(
        **{k: jnp.asarray([r[k] for r in rows], dtype=jnp.float32) for k in swept}
    )
    seed_array = jnp.asarray(seeds, dtype=jnp.int32)
    t_compile = time.perf_counter()
    compiled = sweep_fn.compile(sweep, seed_array)
    compile_s = time.perf_counter() - t_compile
    t_run = time.perf_counter()
    out = jax.block_until_ready(compiled(sweep, seed_array))
    run_s = time.perf_counter() - t_run
    metrics = {k: np.asarray(v) for k, v in out._asdict().items()}

    num_updates = metrics["episode_return"].shape[-1]
    env_steps = (np.arange(num_updates) + 1) * static.num_steps * static.num_envs
    runs = len(rows) * len(seeds)
    prov.update(
        **provenance.devices(),
        import_seconds=round(import_s, 3),
        compile_seconds=round(compile_s, 3),
        compilation_cache=cache,
        run_seconds=round(run_s, 3),
        env_steps_per_second=round(runs * num_updates * static.num_steps * static.num_envs / run_s),
        finished_at=provenance.now(),
    )
    attrs = {
        "study": ns.study,
        "task_id": task_id,
        "entry": entry.name,
        "static": static_values,
        "args": {**static_values, **{k: [r[k] for r in rows] for k in swept}, "grid": ns.grid},
        "spec_path": ns.spec,
        "spec_hash": ns.spec_hash,
        "hparams_static": entry.label_static,
        "provenance": prov,
    }
    study_dir = Path(ns.results_dir) / ns.study
    study_dir.mkdir(parents=True, exist_ok=True)
    path = store.write_task_store(
        study_dir,
        task_id,
        metrics,
        vmapped={k: [r[k] for r in rows] for k in swept},
        seeds=seeds,
        env_steps=env_steps,
        attrs=json.loads(json.dumps(attrs)),
    )
    print(
        f"wrote {path}\n"
        f"  import {import_s:.1f}s, trace+compile {compile_s:.1f}s "
        f"(compilation cache: {cache['hits']} hits, {cache['misses']} misses), run {run_s:.1f}s "
        f"({prov['env_steps_per_second']} env steps/s)\n" + _summary(metrics, rows, varying),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
