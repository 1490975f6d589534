"""``nox -s sync -- HOST:PATH``: rsync a cluster checkout's results into this project.

By default: the parsed tensors (``results/<study>/scores.zarr``), the best files
(``results/<study>/best_*``, ``results/best_*``) and ``runs/`` (manifests, job-array lines,
submission records). ``--raw`` adds every complete task store (``results/<study>/<task>.zarr``);
stores still being written (hidden names) never travel.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import typing as tp
from pathlib import Path

from sweepax.errors import UserError, cli


def filters(raw: bool) -> list[str]:
    """rsync include/exclude rules, first match wins (paths anchored at the source root)."""
    rules = [
        "--exclude=/results/*/.*",  # stores still being written (hidden names)
        "--exclude=/runs/.*",
        "--include=/runs/",
        "--include=/runs/*.json",
        "--include=/runs/*.txt",
        "--include=/results/",
        "--include=/results/best_*",
        "--include=/results/*/",
        "--include=/results/*/scores.zarr/***",
        "--include=/results/*/best_*",
        "--include=/results/*/parsed_hparam_scores*.pkl",
    ]
    if raw:
        rules.append("--include=/results/*/*.zarr/***")
    return [*rules, "--exclude=*"]


def rsync_command(source: str, dest: Path, *, raw: bool, dry_run: bool) -> list[str]:
    """``rsync -a ... SOURCE/ DEST/``: the project at ``source`` into ``dest``."""
    command = ["rsync", "-a", "--prune-empty-dirs", "--itemize-changes", "--stats"]
    if dry_run:
        command.append("--dry-run")
    return [*command, *filters(raw), source.rstrip("/") + "/", str(dest).rstrip("/") + "/"]


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Fetch results from a cluster checkout of the project."""
    parser = argparse.ArgumentParser(
        prog="nox -s sync --",
        description="rsync results back from a cluster: parsed tensors, best files and runs/ "
        "by default; task stores with --raw.",
    )
    parser.add_argument("source", help="HOST:PATH of the project on the cluster (or a local path)")
    parser.add_argument("--raw", action="store_true", help="also every task's result store")
    parser.add_argument("--dry-run", action="store_true", help="list what would be copied only")
    parser.add_argument("--dest", type=Path, default=Path("."), help="into (default: here)")
    args = parser.parse_args(argv)
    if shutil.which("rsync") is None:
        raise UserError("rsync not found: install it (apt-get install rsync) and rerun")
    if ":" not in args.source and not Path(args.source).is_dir():
        raise UserError(f"{args.source}: not HOST:PATH and not a local folder")
    command = rsync_command(args.source, args.dest, raw=args.raw, dry_run=args.dry_run)
    print("$ " + shlex.join(command), flush=True)
    proc = subprocess.run(command)
    if proc.returncode != 0:
        raise UserError(f"rsync exited with {proc.returncode} (see its message above)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
