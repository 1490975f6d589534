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
    uv = [str(VENV / "bin" / "uv"), "pip", "install", "--python", str(python)]
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
    select = [] if "-m" in session.posargs else ["-m", "not slurm and not slow"]
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
    """Ours vs POBAX 0.0.1 (own venv in build/): env steps/s, fixed costs, ratios (~15 min CPU)."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "throughput.py"), *session.posargs, external=True)


@nox.session(python=False, default=False)
def bench_mjx(session: nox.Session) -> None:
    """MJX env steps/s on CPU per model for 1, 64, 1024 worlds [--models M,..] [--worlds N,..]."""
    python = venv(session)
    session.run(python, str(ROOT / "bench" / "mjx_steps.py"), *session.posargs, external=True)


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
def bench_slurm(session: nox.Session) -> None:
    """Submit cost on the local cluster: one 1000-task array vs 1000 sbatch calls."""
    python = venv(session)
    _start_local_slurm(session)
    env = path_env(python)
    bench = str(ROOT / "bench" / "slurm_submit.py")
    session.run(python, bench, *session.posargs, external=True, env=env)


# --- containers and reproduction ------------------------------------------------------------------
CONTAINER_FILES = ("Containerfile", "apptainer.def", "pyproject.toml", "README.md",
                   "requirements.lock", "container", "src")  # fmt: skip
CPU_BASE = "localhost/sweepax-base:bookworm"  # container/debian-base.sh makes it
INSTALL_HINTS = {
    "apptainer": "apptainer: not found (on a cluster: `module load apptainer`; else "
    "https://apptainer.org/docs/admin/main/installation.html; Debian 12 has no package)",
    "podman": "podman: not found (`apt-get install podman buildah runc`; with Debian's default "
    "runtime crun builds fail here, runc works)",
    "docker": "docker: not found (https://docs.docker.com/engine/install/)",
}


def _container_tool(wanted: str | None) -> tuple[str | None, list[str]]:
    """(tool, why-not lines): the asked-for tool, else the first of apptainer, podman, docker."""
    import subprocess

    missing = []
    for tool in [wanted] if wanted else ["apptainer", "podman", "docker"]:
        exe = shutil.which(tool) or (tool == "apptainer" and shutil.which("singularity"))
        if not exe:
            missing.append(INSTALL_HINTS[tool])
        elif (
            tool == "docker"
            and subprocess.run([exe, "info"], capture_output=True, timeout=60).returncode
        ):
            missing.append("docker: found, but its daemon does not answer (`docker info` fails)")
        else:
            return exe, missing
    return None, missing


def _container_build_args(madrona: bool, cpu_base: str | None = None) -> dict[str, str]:
    """The recipes' build args: what the image's labels say about it. ``cpu_base``: the CPU
    variant of the Containerfile, on that local base image (container/debian-base.sh)."""
    import datetime
    import re
    import subprocess

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    setup = (ROOT / "container" / "setup.sh").read_text()
    lock = LOCK.read_text()
    dirty = bool(git("status", "--porcelain", "--untracked-files=normal"))
    args = {
        "GIT_COMMIT": git("rev-parse", "HEAD") or "unknown",
        "GIT_DIRTY": str(dirty).lower(),
        "LOCK_SHA256": sha(LOCK),
        "GPU_LOCK_SHA256": sha(ROOT / "container" / "requirements-gpu.lock"),
        "JAX_VERSION": re.search(r"^jax==(\S+)", lock, re.M).group(1),
        "MADRONA_MJX_COMMIT": re.search(r"^MADRONA_MJX_COMMIT=(\w+)", setup, re.M).group(1)
        if madrona
        else "none",
        "WITH_MADRONA": "1" if madrona else "0",
        "BUILD_DATE": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if cpu_base:  # the same Containerfile on a local Debian 12 base, with Debian's python3.11
        args |= {
            "VARIANT": "cpu",
            "PYTHON": "/usr/bin/python3.11",
            "BUILD_BASE": cpu_base,
            "RUNTIME_BASE": cpu_base,
            "CUDA_VERSION_LABEL": "none",
            "GPU_LOCK_SHA256": "none",
        }
    return args


def cmd_for(tool: str, exe: str, ns, args: dict[str, str], build_args: list[str]) -> list[str]:
    """The build command, run in the build context (a copy of CONTAINER_FILES)."""
    if tool == "apptainer":
        output = Path(ns.output).expanduser().resolve()
        fakeroot = [] if os.geteuid() == 0 else ["--fakeroot"]
        return [exe, "build", *fakeroot, *build_args, str(output), "apptainer.def"]
    variant = "-cpu" if args.get("VARIANT") == "cpu" else ""
    tag = ns.tag or f"localhost/sweepax:{args['GIT_COMMIT'][:12]}{variant}"
    ca = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
    extra = []
    if tool == "podman":
        # a site's TLS-intercepting CA must reach pip/uv inside the build; the docker format keeps
        # SHELL (OCI drops it); runc where present (Debian's default crun fails on cgroup-v1
        # hybrid hosts and without CAP_SYS_RESOURCE: HPC notes)
        extra = ["--format", "docker"]
        if ca:
            extra += ["--volume", f"{ca}:/etc/ssl/certs/ca-certificates.crt:ro"]
        if shutil.which("runc"):
            extra += ["--runtime", "runc"]
    return [exe, "build", "-f", "Containerfile", *build_args, *extra, "-t", tag, "."]


@nox.session(python=False, default=False)
def container(session: nox.Session) -> None:
    """Build the GPU image: [--apptainer | --podman | --docker] [--output sweepax.sif | --tag T]
    [--madrona] [--dry-run]; --cpu [--base IMAGE]: the CPU variant (podman/docker) on a local
    Debian base made by container/debian-base.sh; --relock regenerates the GPU extras lock."""
    import argparse
    import tempfile

    p = argparse.ArgumentParser(prog="nox -s container --")
    tool_arg = p.add_mutually_exclusive_group()
    for tool in ("apptainer", "podman", "docker"):
        tool_arg.add_argument(f"--{tool}", dest="tool", action="store_const", const=tool)
    p.add_argument("--output", default="sweepax.sif", help="the SIF file (apptainer)")
    p.add_argument("--tag", default=None, help="image tag (podman/docker)")
    p.add_argument(
        "--madrona",
        action="store_true",
        help="build Madrona-MJX (off by default: its JAX bridge does not work with jax >= 0.6)",
    )
    p.add_argument("--no-madrona", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument(
        "--cpu", action="store_true", help="the CPU variant (podman/docker), tested on CPU machines"
    )
    p.add_argument("--base", default=CPU_BASE, help="--cpu: the local base image")
    p.add_argument("--dry-run", action="store_true", help="print the build command only")
    p.add_argument("--relock", action="store_true", help="recompile the GPU extras lock, then stop")
    ns = p.parse_args(session.posargs)

    if ns.relock:  # the command is also in the lock's header
        uv = str(VENV / "bin" / "uv") if (VENV / "bin" / "uv").exists() else "uv"
        compile_ = ["pip", "compile", "container/requirements-gpu.in", "-c", "requirements.lock",
                    "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11",
                    "-o", "container/requirements-gpu.lock"]  # fmt: skip
        session.run(uv, *compile_, external=True)
        return
    if ns.cpu and ns.tool == "apptainer":
        session.error("--cpu builds the Containerfile (--podman or --docker); apptainer.def is GPU")
    if ns.cpu and ns.madrona:
        session.error("--cpu --madrona: Madrona-MJX needs the CUDA devel image")
    wanted = ns.tool
    if ns.cpu and wanted is None:  # an OCI build: podman, else docker
        wanted = "podman" if shutil.which("podman") or not shutil.which("docker") else "docker"
    if ns.dry_run:
        exe = wanted or "apptainer"
    else:
        exe, missing = _container_tool(wanted)
        if exe is None:
            session.error(
                "no container build tool here: " + "; ".join(missing) + ". Or build on a cluster "
                "login node (README, 'Containers'), or with --dry-run see the command"
            )
    tool = "apptainer" if Path(exe).name in ("apptainer", "singularity") else Path(exe).name
    args = _container_build_args(ns.madrona and not ns.no_madrona, ns.base if ns.cpu else None)
    build_args = [a for k, v in args.items() for a in ("--build-arg", f"{k}={v}")]
    if args["GIT_DIRTY"] == "true":
        session.warn("the checkout has uncommitted changes: the image is labelled git.dirty=true")
    if ns.dry_run:
        print(" ".join(cmd_for(tool, exe, ns, args, build_args)))
        return
    context = Path(tempfile.mkdtemp(prefix="sweepax-image-"))
    for name in CONTAINER_FILES:  # a small, clean build context (no .venv, results, .git)
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, context / name)
    cmd = cmd_for(tool, exe, ns, args, build_args)
    if ns.cpu:  # debootstrap + import, once (kept while the image exists)
        script = str(ROOT / "container" / "debian-base.sh")
        session.run("bash", script, "--tool", tool, "--tag", ns.base, external=True)
    session.log(f"build context {context}")
    with session.chdir(str(context)):  # apptainer.def's %files paths are relative to it
        session.run(*cmd, external=True)
    shutil.rmtree(context, ignore_errors=True)
    if tool == "apptainer":
        session.log(f"built {cmd[-2]}; check it on a GPU node: apptainer test --nv {cmd[-2]}")
    elif ns.cpu:
        tag = cmd[-2]
        session.log(
            f"built {tag}; run it: {tool} run --rm [--runtime runc --ulimit nofile=4096:4096 "
            f"--ulimit nproc=4096:4096] {tag} -m sweepax.train ppo --env tmaze_5 ..."
        )
    else:
        tag = cmd[-2]
        session.log(
            f"built {tag}; to a SIF: apptainer build sweepax.sif docker-daemon://{tag} (docker) "
            f"or {tool} save --format oci-archive -o sweepax.tar {tag} && "
            "apptainer build sweepax.sif oci-archive://sweepax.tar"
        )


@nox.session(python=False, default=False)
def reproduce(session: nox.Session) -> None:
    """How a result store was made: results/<study>/<task_id>.zarr [--run] [--results_dir DIR]."""
    sweepax(session, "reproduce")


if __name__ == "__main__":
    nox.main()
