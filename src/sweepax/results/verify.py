"""Check every result store against its completion record; list what killed writers left.

Usage: ``python -m sweepax.results.verify [STUDY_DIR | STORE ...]`` (``nox -s verify -- ...``).
One line per store: ``ok``, ``CORRUPT`` (with what is wrong: a chunk missing, a size or checksum
that differs from the record, an unreadable ``zarr.json``), ``incomplete`` (a store under a final
name without its completion record) or ``unverified`` (written before checksums), then one line
per leftover (``store.leftovers``) and a summary. Exit 1 when any store is corrupt or incomplete.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweepax.errors import UserError, cli
from sweepax.results.parse import add_study_arguments, named_folder
from sweepax.results.store import (
    COMPLETE,
    CORRUPT,
    INCOMPLETE,
    STORE_SUFFIX,
    Leftover,
    StoreState,
    leftovers,
    store_state,
)

LABELS = {COMPLETE: "ok", CORRUPT: "CORRUPT", INCOMPLETE: "incomplete"}


def store_paths(study_dir: Path) -> list[Path]:
    """Every store under a final name in ``study_dir``, ``scores.zarr`` included."""
    return sorted(
        p
        for p in Path(study_dir).iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name.endswith(STORE_SUFFIX)
    )


def state_line(state: StoreState) -> str:
    """``ok  path``, ``CORRUPT  path: reason``, ``incomplete  path: reason``, ``unverified ...``."""
    label = LABELS[state.state] if state.verified or not state.complete else "unverified"
    return f"{label:<11} {state.path}" + (f": {state.reason}" if state.reason else "")


def leftover_line(left: Leftover) -> str:
    """``leftover  path: kind, reason (removable by ...|kept)``."""
    verdict = "`nox -s clean` removes it" if left.removable else "kept by `nox -s clean`"
    return f"{'leftover':<11} {left.path}: {left.kind}, {left.reason} ({verdict})"


def summary_line(where: Path, states: list[StoreState], left: list[Leftover]) -> str:
    """``results/s: 4 stores: 2 ok, 1 corrupt, 1 unverified; 1 leftover (1 removable)``."""
    counts = {
        "ok": sum(s.verified for s in states),
        "corrupt": sum(s.state == CORRUPT for s in states),
        "incomplete": sum(s.state == INCOMPLETE for s in states),
        "unverified": sum(s.complete and not s.verified for s in states),
    }
    shown = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k == "ok")
    text = f"{where}: {len(states)} stores: {shown}"
    if left:
        text += f"; {len(left)} leftovers ({sum(x.removable for x in left)} removable)"
    return text


def verify_study(study_dir: Path) -> tuple[list[StoreState], list[Leftover]]:
    """Every store of the study checked in full (sha256 of every file), and its leftovers."""
    return [store_state(p, full=True) for p in store_paths(study_dir)], leftovers(study_dir)


def targets(args: list[str], results_dir: Path) -> list[Path]:
    """Study folders or single stores named on the command line (a path, or a study name under
    ``results_dir``); with none, every study folder under ``results_dir``."""
    if not args:
        found = sorted(
            p for p in results_dir.glob("*") if p.is_dir() and not p.name.startswith(".")
        )
        if not found:
            raise UserError(
                f"{results_dir}: no study folders; pass results/<study>, or --results-dir"
            )
        return found
    fix = (
        f"pass results/<study>, results/<study>/<task_id>.zarr or a study name under {results_dir}"
    )
    return [named_folder(arg, results_dir, fix, "study folder or store") for arg in args]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweepax.results.verify",
        description="Check every store (and scores.zarr) against its completion record: every "
        "file present, with its size and sha256. Exit 1 if any is corrupt or incomplete.",
    )
    add_study_arguments(p)
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    bad = 0
    for where in targets(args.study_dirs, args.results_dir):
        if where.name.endswith(STORE_SUFFIX):  # one store
            states, left = [store_state(where, full=True)], []
        else:
            states, left = verify_study(where)
        for state in states:
            print(state_line(state), flush=True)
        for x in left:
            print(leftover_line(x))
        print(summary_line(where, states, left))
        bad += sum(not s.complete for s in states)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
