# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""sweepax sessions: ``nox -l`` lists them; arguments after ``--`` go to the command.

Every session runs in ONE project environment, ``.venv``, installed from ``requirements.lock``
(+ the project, editable) and reinstalled only when the lock or ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.02.09"
nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests"]

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
    if sys.version_info >= (3, 11):  # noqa: UP036 (nox itself may run on an older Python)
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
    # --compile-bytecode: uv writes no .pyc (pip does), and with PYTHONDONTWRITEBYTECODE set (or
    # a read-only venv) Python then compiles jax, flax, ... from source in every process: about
    # 5 s of every task's and every test subprocess's start
    uv = [str(VENV / "bin" / "uv"), "pip", "install", "--python", str(python), "--compile-bytecode"]
    try:
        session.run(*uv, "-r", str(LOCK), "-e", str(ROOT), external=True)
    except nox.command.CommandFailed:  # e.g. an index only pip is configured for: use pip
        session.run(
            str(python), "-m", "pip", "install", "-r", str(LOCK), "-e", str(ROOT), external=True
        )
    stamp.write_text(_lock_hash())
    return str(python)


def path_env(python: str) -> dict[str, str]:
    """Environment putting the project environment's bin/ first, so ``python`` is its python."""
    return {"PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")])}


def sweepax(session: nox.Session, module: str, *args: str) -> None:
    """Run ``python -m sweepax.<module>`` in the project environment with the session's args."""
    python = venv(session)
    env = path_env(python)
    session.run(python, "-m", f"sweepax.{module}", *args, *session.posargs, external=True, env=env)


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest); pass pytest arguments after --, e.g. -m slow."""
    python = venv(session)
    env = path_env(python)
    # real-cluster tests have their own session (slurm_tests) and long learning checks run with
    # `-- -m slow`: by default neither runs, unless -m asks for them
    default = "not slurm and not slow and not pobax and not renderer and not craftax"
    select = [] if "-m" in session.posargs else ["-m", default]
    # one worker per core (pytest-xdist); a test file's tests share a worker, so its module
    # fixtures (a trained store, a built env) are made once
    if not any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in session.posargs):
        select += ["-n", str(min(os.cpu_count() or 1, 4)), "--dist", "loadfile"]
    session.run(python, "-m", "pytest", *select, *session.posargs, external=True, env=env)


LINTED = ("src", "tests", "bench", "experiments", "hyperparams", "noxfile.py")


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check on the project's Python (``-- --fix`` rewrites)."""
    python = venv(session)
    ruff = str(Path(python).parent / "ruff")
    fix = "--fix" in session.posargs
    session.run(ruff, "check", *(["--fix"] if fix else []), *LINTED, external=True)
    session.run(ruff, "format", *([] if fix else ["--check"]), *LINTED, external=True)


@nox.session(python=False, default=False)
def craftax_tests(session: nox.Session) -> None:
    """Training on POBAX's Craftax ids (pytest -m craftax; craftax compiles for minutes)."""
    python = venv(session)
    env = path_env(python)
    session.run(python, "-m", "pytest", "-m", "craftax", *session.posargs, external=True, env=env)


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
    """Best per env, P(best), CIs [--measure auc|final|last-k] [--confirm]: JSON, table, plots."""
    sweepax(session, "results.best")


@nox.session(python=False, default=False)
def compare(session: nox.Session) -> None:
    """Compare studies per env and across envs [--measure final|auc] [--out DIR]: table, curves."""
    sweepax(session, "results.compare")


@nox.session(python=False, default=False)
def demo(session: nox.Session) -> None:
    """A small T-Maze sweep end to end: plan, run here, parse, best (table + learning curves)."""
    python = venv(session)
    env = path_env(python)
    results = "results"
    run = lambda *args: session.run(python, "-m", *args, external=True, env=env)  # noqa: E731
    run("sweepax.sweep.write_jobs", "hyperparams/demo")
    run("sweepax.launch.local", "hyperparams/demo", "--parallel", str(min(2, os.cpu_count() or 1)))
    run(
        "sweepax.results.best",
        f"{results}/demo_tmaze_5_ppo",
        f"{results}/demo_tmaze_5_ppo_memoryless",
    )
    session.log(
        f"demo done: tables above; plots: {results}/best_auc.png and {results}/<study>/best_auc.png"
    )


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Ours vs POBAX 0.0.1 (own venv in build/): env steps/s, fixed costs, ratios (~5 min CPU)."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "throughput.py"), *session.posargs, external=True)


@nox.session(python=False, default=False)
def bench_roofline(session: nox.Session) -> None:
    """PPO update FLOPs (XLA + by hand), fraction of measured peak, time per piece (~7 min CPU)."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "roofline.py"), *session.posargs, external=True)


@nox.session(python=False, default=False)
def bench_checkpoint(session: nox.Session) -> None:
    """Checkpoint overhead (off / default / every chunk) and size on the tmaze_10_ppo shape."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "checkpoint_overhead.py"), *session.posargs,
                external=True)  # fmt: skip


@nox.session(python=False, default=False)
def bench_mjx(session: nox.Session) -> None:
    """MJX env steps/s on CPU per model for 1, 64, 1024 worlds [--models M,..] [--worlds N,..]."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "mjx_steps.py"), *session.posargs, external=True)


@nox.session(python=False, default=False)
def bench_scale(session: nox.Session) -> None:
    """parse and best on studies of 1,000 / 3,000 / 10,000 synthetic task stores: time, memory."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "scale_results.py"), *session.posargs, external=True)


@nox.session(python=False, default=False)
def bench_gpu(session: nox.Session) -> None:
    """GPU figures: tmaze_10_ppo on one device, the largest grid, MJX at 1,024/4,096 worlds."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "gpu_study.py"), *session.posargs,
                env=path_env(python), external=True)  # fmt: skip


# --- SLURM ----------------------------------------------------------------------------------------
def _slurm_up() -> bool:
    """Does a SLURM controller answer here?"""
    if shutil.which("sinfo") is None:
        return False
    import subprocess

    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


def _start_local_slurm(session: nox.Session) -> None:
    """Start the one-node test cluster (launching/start-local-slurm.sh) unless one answers."""
    if _slurm_up():
        session.log("a SLURM cluster answers (sinfo): using it")
        return
    session.run("bash", str(ROOT / "launching" / "start-local-slurm.sh"), external=True)


@nox.session(python=False, default=False)
def submit(session: nox.Session) -> None:
    """Submit studies as SLURM job arrays: files, folders or study names (see --help)."""
    sweepax(session, "launch.slurm")


@nox.session(python=False, default=False)
def status(session: nox.Session) -> None:
    """Per study: tasks complete / running / pending / failed / missing [study ...]."""
    sweepax(session, "launch.status")


@nox.session(python=False, default=False)
def sync(session: nox.Session) -> None:
    """rsync results back from a cluster: HOST:PATH [--raw] [--dry-run]."""
    sweepax(session, "launch.sync")


@nox.session(python=False, default=False)
def slurm_tests(session: nox.Session) -> None:
    """Real-cluster tests (pytest -m slurm); starts the local cluster when none answers (root)."""
    python = venv(session)
    _start_local_slurm(session)
    env = path_env(python)
    session.run(python, "-m", "pytest", "-m", "slurm", *session.posargs, external=True, env=env)


@nox.session(python=False, default=False)
def pobax_tests(session: nox.Session) -> None:
    """Agreement with POBAX 0.0.1 (pytest -m pobax); makes build/pobax-venv first (minutes)."""
    python = venv(session)
    env = path_env(python)
    session.run(python, str(ROOT / "bench" / "pobax" / "pobax_venv.py"), external=True, env=env)
    session.run(python, "-m", "pytest", "-m", "pobax", *session.posargs, external=True, env=env)


@nox.session(python=False, default=False)
def renderer_tests(session: nox.Session) -> None:
    """MJX's Warp batch renderer on CPU (pytest -m renderer): Warp compiles its kernels once."""
    python = venv(session)
    env = path_env(python)
    session.run(python, "-m", "pytest", "-m", "renderer", *session.posargs, external=True, env=env)


@nox.session(python=False, default=False)
def bench_slurm(session: nox.Session) -> None:
    """Submit cost on the local cluster: one 1000-task array vs 1000 sbatch calls."""
    python = venv(session)
    _start_local_slurm(session)
    env = path_env(python)
    bench = str(ROOT / "bench" / "slurm_submit.py")
    session.run(python, bench, *session.posargs, external=True, env=env)


# --- containers and reproduction ------------------------------------------------------------------
@nox.session(python=False, default=False)
def container(session: nox.Session) -> None:
    """Build the GPU image: [--apptainer | --podman | --docker] [--output sweepax.sif | --tag T]
    [--dry-run]; --cpu [--base IMAGE]: the CPU variant (podman/docker) on a local
    Debian base made by container/debian-base.sh; --relock regenerates the GPU extras lock."""
    # sweepax.container needs only the standard library: no project environment to install first
    env = {"PYTHONPATH": str(ROOT / "src")}
    command = [_base_python(), "-m", "sweepax.container", *session.posargs]
    session.run(*command, external=True, env=env)


@nox.session(python=False, default=False)
def reproduce(session: nox.Session) -> None:
    """How a result store was made: results/<study>/<task_id>.zarr [--run] [--results_dir DIR]."""
    sweepax(session, "reproduce")


@nox.session(python=False, default=False)
def verify(session: nox.Session) -> None:
    """Check every result store against its checksums: results/<study> ... (exit 1 if corrupt)."""
    sweepax(session, "results.verify")


@nox.session(python=False, default=False)
def clean(session: nox.Session) -> None:
    """Remove provably dead leftovers (killed writers, finished re-runs): results/<study> ..."""
    sweepax(session, "results.clean")


if __name__ == "__main__":
    nox.main()
