"""What every result records about how it was made: code, packages, container, host, SLURM."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
import typing as tp
from pathlib import Path

PACKAGES = (
    "sweepax",
    "jax",
    "jaxlib",
    "jax-cuda12-plugin",
    "flax",
    "optax",
    "gymnax",
    "mujoco",
    "mujoco-mjx",
    "madrona_mjx",
    "numpy",
    "zarr",
    "xarray",
)
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_NODELIST",
    "SLURM_RESTART_COUNT",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def now() -> str:
    """UTC time, ISO 8601."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git() -> dict[str, tp.Any]:
    """Commit, branch, dirty flag and a hash of the uncommitted diff (None outside a checkout)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "diff_sha256": None}
    diff = _git("diff", "HEAD") or ""
    return {
        "commit": commit,
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(diff),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }


def lock_hash() -> str | None:
    """sha256 of the project's requirements.lock, when running from a checkout."""
    lock = PROJECT_ROOT / "requirements.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None


def packages() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def container() -> dict[str, str | None]:
    """The Apptainer/Singularity image this process runs in, if any, and its digest if known."""
    path = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    return {"image": path, "digest": os.environ.get("SWEEPAX_IMAGE_DIGEST") if path else None}


def collect() -> dict[str, tp.Any]:
    """Everything known before JAX starts; ``train`` adds device and timings."""
    return {
        "git": git(),
        "lock_sha256": lock_hash(),
        "packages": packages(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "container": container(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "cwd": os.getcwd(),
        "argv": sys.argv,
        "command": shlex.join(["python", "-m", "sweepax.train", *sys.argv[1:]]),
        "slurm": {k.removeprefix("SLURM_").lower(): os.environ.get(k) for k in SLURM_VARS},
        "started_at": now(),
    }
