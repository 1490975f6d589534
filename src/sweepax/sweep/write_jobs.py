"""``nox -s write_jobs``: plan every study named and write ``runs/<study>.txt`` and ``.json``."""

from __future__ import annotations

import argparse
import functools
import sys
import typing as tp
from pathlib import Path

from rich.table import Table

from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.sweep import load, plan


def plan_targets(
    targets: tp.Sequence[str], max_vmap: int | None, max_configs: int = plan.MAX_CONFIGS
) -> list[plan.Plan]:
    """Load and plan every sweep file under ``targets``; fail on the first bad one.

    A study of more than ``plan.PROGRESS_EVERY`` configs reports its progress on stderr.
    """
    plans = []
    for path in load.find_sweep_files(targets):
        study = load.load(path)
        progress = functools.partial(_report_progress, study.name)
        plans.append(plan.plan(study, max_vmap, max_configs, on_progress=progress))
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


def plan_notes(plans: tp.Sequence[plan.Plan]) -> list[str]:
    """One line per note of any plan (e.g. an env that cannot vmap and was split into tasks)."""
    return [f"note: {p.study.name}: {note}" for p in plans for note in p.notes]


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Plan sweep files and write the job arrays."""
    parser = argparse.ArgumentParser(
        prog="nox -s write_jobs --",
        description="Plan sweep files and write runs/<study>.txt + .json",
    )
    parser.add_argument("targets", nargs="+", help="sweep files or folders of them")
    parser.add_argument(
        "--max-vmap", type=int, default=None, help="at most N vmapped configs per task"
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
    parser.add_argument(
        "--onager",
        action="store_true",
        help="also prelaunch the tasks for onager (.onager/scripts/<study>/jobs.json)",
    )
    args = parser.parse_args(argv)
    # everything validated before anything is written
    plans = plan_targets(args.targets, args.max_vmap, args.max_configs)
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
    for note in plan_notes(plans):
        console.print(note, soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
