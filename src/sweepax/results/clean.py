"""Remove what killed writers and finished re-runs left in study folders, if provably dead.

Usage: ``python -m sweepax.results.clean [STUDY_DIR ...] [--corrupt] [--dry-run]``
(``nox -s clean -- ...``). It removes the leftovers ``store.leftovers`` calls removable: temporary
folders and files of processes that ran on this host and have ended, ``reproduce --run`` scratch
folders of finished re-runs, copies already replaced, stores whose root ``zarr.json`` is gone or
unreadable. Everything else is kept and listed with the reason. With ``--corrupt`` it also removes
every store that fails its full check (``store_state``), so ``run_local`` and
``submit --missing`` re-run its task. A ``scores.zarr`` parsed from a store it removes goes too,
with the POBAX pickles parse made from it (``parsed_hparam_scores[_discounted].pkl``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweepax import files
from sweepax.errors import cli
from sweepax.results import pobax_pickles
from sweepax.results.parse import SCORES, add_study_arguments
from sweepax.results.store import (
    CORRUPT,
    Leftover,
    leftovers,
    read_attrs,
    store_state,
    study_stores,
)
from sweepax.results.verify import targets


def corrupt_leftovers(study_dir: Path, known: set[Path]) -> list[Leftover]:
    """Every task store failing its full check (not already in ``known``), as removable."""
    return [
        Leftover(s.path, "corrupt store", s.reason, True)
        for s in study_stores(study_dir, full=True)
        if s.state == CORRUPT and s.path not in known
    ]


STALE_SCORES = "stale scores"


def stale_scores(study_dir: Path, removed: set[str]) -> list[Leftover]:
    """``scores.zarr``, as removable, when it was parsed from a store being removed: with no
    store left, ``best`` would take it for results synced without their stores."""
    path = Path(study_dir) / SCORES
    attrs = (store_state(path, full=False).complete and read_attrs(path)) or {}
    used = {Path(s.get("path", "")).name for s in attrs.get("stores") or []}
    if not used & removed:
        return []
    return [Leftover(path, STALE_SCORES, f"parsed from {sorted(used & removed)[0]}", True)]


def clean_study(
    study_dir: Path, corrupt: bool = False, dry_run: bool = False
) -> tuple[list[Leftover], list[Leftover]]:
    """``(removed, kept)`` leftovers of ``study_dir``; with ``dry_run`` nothing is removed."""
    found = leftovers(study_dir)
    if corrupt:
        found += corrupt_leftovers(study_dir, {x.path for x in found})
    removed = [x for x in found if x.removable]
    removed += stale_scores(study_dir, {x.path.name for x in removed})
    if not dry_run:
        for x in removed:
            files.remove(x.path)
            if x.kind == STALE_SCORES:
                for path in pobax_pickles.parsed_paths(study_dir):
                    files.remove(path)
    return removed, [x for x in found if not x.removable]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweepax.results.clean",
        description="Remove leftovers of killed writers and finished re-runs that are provably "
        "dead (this host, process ended); list what is kept and why.",
    )
    add_study_arguments(p)
    p.add_argument(
        "--corrupt",
        action="store_true",
        help="also remove stores that fail their checksums, so their tasks re-run",
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    verb = "would remove" if args.dry_run else "removed"
    for study_dir in targets(args.study_dirs, args.results_dir):
        removed, kept = clean_study(study_dir, corrupt=args.corrupt, dry_run=args.dry_run)
        for x in removed:
            print(f"{verb} {x.path} ({x.kind}: {x.reason})")
        for x in kept:
            print(f"kept {x.path} ({x.kind}: {x.reason})")
        if not removed and not kept:
            print(f"{study_dir}: nothing to clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
