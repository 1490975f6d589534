# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""sweepax sessions: ``nox -l`` lists them; arguments after ``--`` go to the command.

Every session runs in ONE project environment, ``.venv``, installed from ``requirements.lock`` (+ the
project, editable) and reinstalled only when the lock or ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.02.09"
nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements.lock"
UV = "uv==0.13.9"


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _base_python() -> str:
    """A Python >= 3.11 to build .venv from: this one, else python3.11/3.12 on PATH."""
    if sys.version_info >= (3, 11):
        return sys.executable
    for name in ("python3.11", "python3.12", "python3.13"):
        if found := shutil.which(name):
            return found
    raise SystemExit("sweepax needs Python >= 3.11 (jax 0.10); install python3.11 and rerun nox")


def venv(session: nox.Session) -> str:
    """The project environment's python, (re)installed from the lock file when it changed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".sweepax-lock"
    if python.exists() and stamp.exists() and stamp.read_text() == _lock_hash():
        return str(python)
    session.log(f"installing the locked environment into {VENV} (once per lock change)")
    if not python.exists():
        session.run(_base_python(), "-m", "venv", str(VENV), external=True)
    session.run(str(python), "-m", "pip", "install", "--quiet", UV, external=True)
    uv = [str(VENV / "bin" / "uv"), "pip", "install", "--python", str(python)]
    try:
        session.run(*uv, "-r", str(LOCK), "-e", str(ROOT), external=True)
    except nox.command.CommandFailed:  # e.g. an index only pip is configured for: use pip
        session.run(str(python), "-m", "pip", "install", "-r", str(LOCK), "-e", str(ROOT), external=True)
    stamp.write_text(_lock_hash())
    return str(python)


def sweepax(session: nox.Session, module: str, *args: str) -> None:
    """Run ``python -m sweepax.<module>`` in the project environment with the session's args."""
    python = venv(session)
    env = {"PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])}
    session.run(python, "-m", f"sweepax.{module}", *args, *session.posargs, external=True, env=env)


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest); pass pytest arguments after --, e.g. -m slow."""
    python = venv(session)
    env = {"PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])}
    session.run(python, "-m", "pytest", *session.posargs, external=True, env=env)


@nox.session(python=False, default=False)
def write_jobs(session: nox.Session) -> None:
    """Plan sweep files (files or folders) into runs/<study>.txt + runs/<study>.json."""
    sweepax(session, "sweep.write_jobs")


@nox.session(python=False, default=False)
def run_local(session: nox.Session) -> None:
    """Run studies' tasks on this machine: files, folders or study names [--parallel N]."""
    sweepax(session, "launch.local")


@nox.session(python=False, default=False)
def parse(session: nox.Session) -> None:
    """Combine a study's result stores into results/<study>/scores.zarr [--discounted]."""
    sweepax(session, "results.parse")


@nox.session(python=False, default=False)
def best(session: nox.Session) -> None:
    """Best hyperparameters per env [--measure auc|final] [--discounted]: JSON, table, plot."""
    sweepax(session, "results.best")


@nox.session(python=False, default=False)
def demo(session: nox.Session) -> None:
    """A small T-Maze sweep end to end: plan, run here, parse, best (table + learning curves)."""
    python = venv(session)
    env = {"PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])}
    results = "results"
    run = lambda *args: session.run(python, "-m", *args, external=True, env=env)  # noqa: E731
    run("sweepax.sweep.write_jobs", "hyperparams/demo")
    run("sweepax.launch.local", "hyperparams/demo", "--parallel", str(min(2, os.cpu_count() or 1)))
    run("sweepax.results.best", f"{results}/demo_tmaze_5_ppo", f"{results}/demo_tmaze_5_ppo_memoryless")
    session.log(f"demo done: tables above; plots: {results}/best_auc.png and {results}/<study>/best_auc.png")


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Throughput benchmark (env steps/s) of the tmaze_10_ppo shape; prints ratios."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "throughput.py"), *session.posargs, external=True)


if __name__ == "__main__":
    nox.main()
