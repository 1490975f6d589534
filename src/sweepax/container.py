"""``python -m sweepax.container`` (``nox -s container``): build the image from this checkout.

One GPU image from two recipes, ``Containerfile`` (podman/docker) and ``apptainer.def``; ``--cpu``
builds the Containerfile's CPU variant on a local Debian base (container/debian-base.sh). The
steps: choose the build tool (``find_tool``), fill the build args the image's labels show
(``build_args``), make the build command (``build_command`` -> ``Build``), copy the recipe inputs
into a clean build context (``copy_context``) and run the build there (``run_build``). Only the
standard library: building an image needs no project environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import typing as tp
from pathlib import Path

from sweepax.errors import UserError, cli
from sweepax.files import sha256_file, utc_now
from sweepax.provenance import PROJECT_ROOT, git_output

TOOLS = ("apptainer", "podman", "docker")
# the build context: the recipes and what they copy into the image (no .venv, results, .git)
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
DOCKER_DOWN = "docker: found, but its daemon does not answer (`docker info` fails)"
# the GPU extras lock, compiled against the project lock (the command is also in its header)
RELOCK = ["pip", "compile", "container/requirements-gpu.in", "-c", "requirements.lock",
          "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11",
          "-o", "container/requirements-gpu.lock"]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Build:
    """One image build: the command to run in the build context and the image it makes."""

    tool: str  # apptainer, podman or docker
    argv: tuple[str, ...]
    output: Path | None = None  # the SIF file (apptainer)
    tag: str | None = None  # the image tag (podman/docker)

    @property
    def image(self) -> str:
        return str(self.output) if self.output is not None else str(self.tag)

    def __str__(self) -> str:
        return shlex.join(self.argv)


# --- choose the build tool --------------------------------------------------------------------
def tool_name(exe: str) -> str:
    """apptainer, podman or docker for an executable (singularity is apptainer)."""
    name = Path(exe).name
    return "apptainer" if name in ("apptainer", "singularity") else name


def locate(tool: str) -> tuple[str | None, str | None]:
    """(executable, None) when ``tool`` can build here, else (None, why not and where to get it).

    apptainer may go by its older name, singularity; docker must have a daemon that answers."""
    exe = shutil.which(tool) or (shutil.which("singularity") if tool == "apptainer" else None)
    if exe is None:
        return None, INSTALL_HINTS[tool]
    if tool == "docker" and not daemon_answers(exe):
        return None, DOCKER_DOWN
    return exe, None


def daemon_answers(docker: str) -> bool:
    """Does ``docker info`` succeed (a docker client without its daemon cannot build)?"""
    return subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode == 0


def find_tool(wanted: str | None) -> str:
    """The executable of the asked-for tool, else of the first of apptainer, podman, docker that
    can build here; a ``UserError`` naming what is missing when none can."""
    missing = []
    for tool in [wanted] if wanted else TOOLS:
        exe, reason = locate(tool)
        if exe is not None:
            return exe
        missing.append(reason)
    raise UserError(
        "no container build tool here: " + "; ".join(missing) + ". Or build on a cluster "
        "login node (README, 'Containers'), or with --dry-run see the command"
    )


def oci_tool() -> str:
    """The tool for a Containerfile-only build (--cpu): podman, else docker."""
    return "podman" if shutil.which("podman") or not shutil.which("docker") else "docker"


def locked_version(lock: str, package: str, root: Path = PROJECT_ROOT) -> str:
    """``package``'s pinned version in the text of ``root``'s requirements.lock."""
    found = re.search(rf"^{re.escape(package)}==(\S+)", lock, re.M)
    if found is None:
        raise UserError(
            f"{root / 'requirements.lock'}: no pin of {package}; regenerate the lock with the "
            "command in the README (Environment and pins)"
        )
    return found.group(1)


# --- build args: what the image's labels say about it -----------------------------------------
def build_args(root: Path = PROJECT_ROOT, *, cpu_base: str | None = None) -> dict[str, str]:
    """The recipes' build args, which become the image's labels. ``cpu_base``: the CPU variant
    of the Containerfile, on that local base image (container/debian-base.sh)."""
    lock = (root / "requirements.lock").read_text()
    status = git_output("status", "--porcelain", "--untracked-files=normal", repo=root)
    args = {
        "GIT_COMMIT": git_output("rev-parse", "HEAD", repo=root) or "unknown",
        "GIT_DIRTY": str(bool(status)).lower(),
        "LOCK_SHA256": sha256_file(root / "requirements.lock"),
        "GPU_LOCK_SHA256": sha256_file(root / "container" / "requirements-gpu.lock"),
        "JAX_VERSION": locked_version(lock, "jax", root),
        # the renderers' versions: MJX (ray casting, Warp renderer) and warp-lang (its kernels)
        "MJX_VERSION": locked_version(lock, "mujoco-mjx", root),
        "WARP_VERSION": locked_version(lock, "warp-lang", root),
        "BUILD_DATE": utc_now(),
    }
    if cpu_base:  # the same Containerfile on a local Debian 12 base, with Debian's python3.11
        args |= {
            "VARIANT": "cpu",
            "PYTHON": "/usr/bin/python3.11",
            "RUNTIME_BASE": cpu_base,
            "CUDA_VERSION_LABEL": "none",
            "GPU_LOCK_SHA256": "none",
        }
    return args


def build_arg_flags(args: dict[str, str]) -> list[str]:
    """``--build-arg KEY=VALUE`` for each build arg, in order."""
    return [flag for key, value in args.items() for flag in ("--build-arg", f"{key}={value}")]


# --- the build command --------------------------------------------------------------------------
def build_command(
    exe: str, args: dict[str, str], *, output: str = "sweepax.sif", tag: str | None = None
) -> Build:
    """The build command for the tool ``exe``, to run in the build context.

    apptainer: ``apptainer.def`` into the SIF ``output`` (``--fakeroot`` unless root);
    podman/docker: the ``Containerfile`` tagged ``tag``, by default
    ``localhost/sweepax:<commit[:12]>[-cpu]``."""
    tool, flags = tool_name(exe), build_arg_flags(args)
    if tool == "apptainer":
        sif = Path(output).expanduser().resolve()
        fakeroot = [] if os.geteuid() == 0 else ["--fakeroot"]
        argv = (exe, "build", *fakeroot, *flags, str(sif), "apptainer.def")
        return Build(tool, argv, output=sif)
    variant = "-cpu" if args.get("VARIANT") == "cpu" else ""
    tag = tag or f"localhost/sweepax:{args['GIT_COMMIT'][:12]}{variant}"
    argv = (exe, "build", "-f", "Containerfile", *flags, *podman_options(tool), "-t", tag, ".")
    return Build(tool, argv, tag=tag)


def podman_options(tool: str) -> list[str]:
    """podman's extra build options: the docker format keeps SHELL (OCI drops it); a site's
    TLS-intercepting CA (``SSL_CERT_FILE``/``PIP_CERT``) must reach pip/uv inside the build; runc
    where present (Debian's default crun fails on cgroup-v1 hybrid hosts and without
    CAP_SYS_RESOURCE: HPC notes)."""
    if tool != "podman":
        return []
    options = ["--format", "docker"]
    if ca := os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT"):
        options += ["--volume", f"{ca}:/etc/ssl/certs/ca-certificates.crt:ro"]
    if shutil.which("runc"):
        options += ["--runtime", "runc"]
    return options


# --- the build context and the build ------------------------------------------------------------
def copy_context(root: Path, dest: Path) -> Path:
    """Copy ``CONTAINER_FILES`` of ``root`` into ``dest``: a small, clean build context."""
    for name in CONTAINER_FILES:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def run(argv: tp.Sequence[str], what: str, cwd: Path | None = None) -> None:
    """Run a command in the open; a ``UserError`` naming ``what`` when it fails."""
    print("$ " + shlex.join(argv), flush=True)
    if (code := subprocess.run(list(argv), cwd=cwd).returncode) != 0:
        raise UserError(f"{what} exited with {code} (its output is above)")


def run_build(build: Build, root: Path = PROJECT_ROOT, cpu_base: str | None = None) -> None:
    """Make the CPU base first when ``cpu_base`` is given (debootstrap + import, once: kept while
    the image exists), then run the build in a fresh build context, removed afterwards."""
    if cpu_base:
        script = str(root / "container" / "debian-base.sh")
        run(["bash", script, "--tool", build.tool, "--tag", cpu_base], "container/debian-base.sh")
    context = Path(tempfile.mkdtemp(prefix="sweepax-image-"))
    try:
        copy_context(root, context)
        print(f"build context {context}", flush=True)
        # apptainer.def's %files paths are relative to the context
        run(build.argv, f"{build.tool} build", cwd=context)
    finally:
        shutil.rmtree(context, ignore_errors=True)


def next_steps(build: Build, cpu: bool) -> str:
    """What to do with the image just built."""
    image, tool = build.image, build.tool
    if tool == "apptainer":
        return f"built {image}; check it on a GPU node: apptainer test --nv {image}"
    if cpu:
        return (
            f"built {image}; run it: {tool} run --rm [--runtime runc --ulimit nofile=4096:4096 "
            f"--ulimit nproc=4096:4096] {image} -m sweepax.train ppo --env tmaze_5 ..."
        )
    return (
        f"built {image}; to a SIF: apptainer build sweepax.sif docker-daemon://{image} (docker) "
        f"or {tool} save --format oci-archive -o sweepax.tar {image} && "
        "apptainer build sweepax.sif oci-archive://sweepax.tar"
    )


def relock(root: Path = PROJECT_ROOT) -> None:
    """Recompile the GPU extras lock (container/requirements-gpu.lock) with uv."""
    beside = [Path(sys.executable).parent / "uv", root / ".venv" / "bin" / "uv"]
    uv = next((str(p) for p in beside if p.exists()), None) or shutil.which("uv")
    if uv is None:
        raise UserError("uv: not found (`python -m pip install uv`, or run `nox -s tests` once)")
    run([uv, *RELOCK], "uv pip compile", cwd=root)


# --- command line -------------------------------------------------------------------------------
def parse_args(argv: tp.Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="nox -s container --",
        description="Build the GPU image (apptainer, podman or docker), or its CPU variant.",
    )
    tool = p.add_mutually_exclusive_group()
    for name in TOOLS:
        tool.add_argument(f"--{name}", dest="tool", action="store_const", const=name)
    p.add_argument("--output", default="sweepax.sif", help="the SIF file (apptainer)")
    p.add_argument("--tag", default=None, help="image tag (podman/docker)")
    p.add_argument("--madrona", action="store_true", help=argparse.SUPPRESS)  # refused
    p.add_argument("--no-madrona", action="store_true", help=argparse.SUPPRESS)  # the default
    p.add_argument(
        "--cpu", action="store_true", help="the CPU variant (podman/docker), tested on CPU machines"
    )
    p.add_argument("--base", default=CPU_BASE, help="--cpu: the local base image")
    p.add_argument("--dry-run", action="store_true", help="print the build command only")
    p.add_argument("--relock", action="store_true", help="recompile the GPU extras lock, then stop")
    return p.parse_args(argv)


def check_options(ns: argparse.Namespace, root: Path) -> None:
    """Refuse a folder without the recipes and option combinations no recipe builds."""
    if not (root / "Containerfile").is_file():
        raise UserError(f"{root}: no Containerfile here; build the image from a project checkout")
    if ns.cpu and ns.tool == "apptainer":
        raise UserError(
            "--cpu builds the Containerfile (--podman or --docker); apptainer.def is GPU"
        )
    if ns.madrona:
        raise UserError(
            "--madrona: the image has no Madrona-MJX build (Madrona-MJX is unmaintained upstream "
            "and its JAX bridge needs jax < 0.6); build without --madrona and use renderer "
            '"jax" (README, "Containers")'
        )


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Build the image: [--apptainer | --podman | --docker] [--output sweepax.sif | --tag T]
    [--dry-run]; --cpu [--base IMAGE]: the CPU variant (podman/docker) on a local
    Debian base made by container/debian-base.sh; --relock regenerates the GPU extras lock."""
    ns, root = parse_args(argv), PROJECT_ROOT
    check_options(ns, root)
    if ns.relock:
        relock(root)
        return 0
    wanted = ns.tool or (oci_tool() if ns.cpu else None)
    exe = (wanted or "apptainer") if ns.dry_run else find_tool(wanted)
    cpu_base = ns.base if ns.cpu else None
    args = build_args(root, cpu_base=cpu_base)
    if args["GIT_DIRTY"] == "true":
        print("warning: the checkout has uncommitted changes: the image is labelled "
              "git.dirty=true", file=sys.stderr)  # fmt: skip
    build = build_command(exe, args, output=ns.output, tag=ns.tag)
    if ns.dry_run:
        print(build, flush=True)
        return 0
    run_build(build, root, cpu_base=cpu_base)
    print(next_steps(build, ns.cpu), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
