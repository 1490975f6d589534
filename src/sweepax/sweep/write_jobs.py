"""``nox -s write_jobs``: plan every study named and write ``runs/<study>.txt`` and ``.json``."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import typing as tp
from pathlib import Path

from rich.table import Table

from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.sweep import load, memory, plan


def plan_targets(
    targets: tp.Sequence[str],
    max_vmap: int | str | None,
    max_configs: int = plan.MAX_CONFIGS,
    device_memory: int | None = None,
    platform: str | None = None,
) -> list[plan.Plan]:
    """Load and plan every sweep file under ``targets``; fail on the first bad one.

    A study of more than ``plan.PROGRESS_EVERY`` configs reports its progress on stderr;
    ``max_vmap="auto"`` sizes tasks by ``device_memory`` bytes (``plan.plan``). ``platform``
    ("cpu" / "gpu") replaces the sweep files' ``platform`` key (e.g. to debug a GPU study on a
    laptop), with a note in each plan whose file said otherwise.
    """
    plans = []
    for path in load.find_sweep_files(targets):
        study = load.load(path)
        written = study.platform
        if platform is not None:
            study = dataclasses.replace(study, platform=platform)
        progress = functools.partial(_report_progress, study.name)
        planned = plan.plan(
            study, max_vmap, max_configs, on_progress=progress, device_memory=device_memory
        )
        if platform is not None and platform != written:
            said = f"says {written!r}" if written else "names none"
            planned.notes.insert(0, f"platform {platform} (from --platform; the sweep file {said})")
        plans.append(planned)
    seen: dict[str, Path] = {}
    for p in plans:
        if p.study.name in seen:
            raise UserError(
                f"{p.study.path}: study name {p.study.name!r} is also used by "
                f"{seen[p.study.name]}; "
                "rename one file (or its study_name)"
            )
        seen[p.study.name] = p.study.path
    return plans


def _report_progress(study: str, done: int, total: int) -> None:
    print(f"planning {study}: {done:,} of {total:,} configs", file=sys.stderr, flush=True)


def plan_table(plans: tp.Sequence[plan.Plan]) -> Table:
    """study | tasks | vmapped configs per task | seeds | total training runs."""
    table = Table(title="plan", caption="configs and seeds: vmapped inside each task")
    for col in ("study", "entry", "tasks", "configs", "seeds", "runs"):
        table.add_column(
            col,
            justify="left" if col in ("study", "entry") else "right",
            no_wrap=True,
            min_width=len(col),
        )
    for p in plans:
        sizes = sorted({len(t.configs) for t in p.tasks})
        seeds = sorted({len(t.seeds) for t in p.tasks})
        span = lambda xs: str(xs[0]) if len(xs) == 1 else f"{xs[0]}-{xs[-1]}"  # noqa: E731
        table.add_row(
            p.study.name,
            p.study.entry.name,
            str(len(p.tasks)),
            span(sizes),
            span(seeds),
            str(p.n_runs),
        )
    return table


def memory_lines(plans: tp.Sequence[plan.Plan]) -> list[str]:
    """With ``--max-vmap auto``: the budget of each study, then one line per task's estimate."""
    lines = []
    for p in plans:
        if not p.memory:
            continue
        m = p.memory
        lines.append(
            f"memory: {p.study.name}: budget {memory.mib(m['budget_bytes'])} "
            f"({m['margin']:g} x {memory.mib(m['device_memory_bytes'])}, "
            f"{m['device_memory_source']})"
        )
        for fit in m["fits"]:
            lines.append(
                f"  fit: {memory.mib(fit['intercept_bytes'])} + "
                f"{memory.mib(fit['bytes_per_config'])} per config x {fit['seeds']} seeds"
            )
        for t in p.tasks:
            if t.memory_estimate_bytes is not None:
                lines.append(
                    f"  task {t.index} {t.task_id}: {len(t.configs)} configs x {len(t.seeds)} "
                    f"seeds, about {memory.mib(t.memory_estimate_bytes)}"
                )
    return lines


def plan_notes(plans: tp.Sequence[plan.Plan]) -> list[str]:
    """One line per note of any plan (e.g. an env that cannot vmap and was split into tasks)."""
    return [f"note: {p.study.name}: {note}" for p in plans for note in p.notes]


def add_platform_argument(parser: argparse.ArgumentParser) -> None:
    """``--platform cpu|gpu``: plan for that platform, whatever the sweep files say."""
    parser.add_argument(
        "--platform",
        choices=("cpu", "gpu"),
        default=None,
        help="plan every task for this JAX platform instead of the sweep files' 'platform' key "
        "(e.g. --platform cpu to debug a GPU study here; image envs then get the CPU renderer)",
    )


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Plan sweep files and write the job arrays."""
    parser = argparse.ArgumentParser(
        prog="nox -s write_jobs --",
        description="Plan sweep files and write runs/<study>.txt + .json",
    )
    parser.add_argument("targets", nargs="+", help="sweep files or folders of them")
    parser.add_argument(
        "--max-vmap",
        type=memory.max_vmap_arg,
        default=None,
        help="at most N vmapped configs per task, or 'auto': as many as fit --device-memory",
    )
    parser.add_argument(
        "--device-memory",
        type=memory.parse_size,
        default=None,
        help="with --max-vmap auto: the device's memory, e.g. 80GiB or 512MiB (default: what "
        f"the device reports, else {memory.mib(memory.DEFAULT_DEVICE_MEMORY)})",
    )
    parser.add_argument(
        "--max-configs",
        type=int,
        default=plan.MAX_CONFIGS,
        help=f"refuse a study of more configs than this (default {plan.MAX_CONFIGS:,})",
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="where to write (runs/)"
    )
    add_platform_argument(parser)
    parser.add_argument(
        "--onager",
        action="store_true",
        help="also prelaunch the tasks for onager (.onager/scripts/<study>/jobs.json)",
    )
    args = parser.parse_args(argv)
    # everything validated before anything is written
    plans = plan_targets(
        args.targets, args.max_vmap, args.max_configs, args.device_memory, args.platform
    )
    console = make_console()
    for p in plans:
        txt, manifest = plan.write(p, args.runs_dir)
        console.print(f"wrote {txt} and {manifest}", soft_wrap=True)
        if args.onager:
            from sweepax.launch import onager

            path = onager.prelaunch(p.manifest())
            hint = onager.launch_hint(p.study.name)
            console.print(f"onager: wrote {path}; {hint}", soft_wrap=True)
    console.print(plan_table(plans))
    for line in memory_lines(plans):
        console.print(line, soft_wrap=True, highlight=False)
    for note in plan_notes(plans):
        console.print(note, soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
