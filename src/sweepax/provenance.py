"""What every result records about how it was made: code, packages, container, host, SLURM."""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import typing as tp
from pathlib import Path

from sweepax.files import sha256_file, utc_now, write_text

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
    "warp-lang",
    "madrona_mjx",
    "brax",
    "navix",
    "craftax",
    "numpy",
    "zarr",
    "xarray",
)
SLURM_VARS = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_JOB_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_NODELIST",
    "SLURMD_NODENAME",
    "SLURM_CLUSTER_NAME",
    "SLURM_CPUS_PER_TASK",
    "SLURM_JOB_GPUS",
    "SLURM_RESTART_COUNT",
)
# Environment variables that can change the numbers or where they ran (recorded as set; secrets
# do not live under these prefixes). XLA_FLAGS is also recorded on its own (``xla_flags``).
ENV_PREFIXES = ("XLA_", "JAX_", "TF_CPP_", "CUDA_", "NVIDIA_", "MUJOCO_", "MADRONA_", "OMP_",
                "SWEEPAX_")  # fmt: skip
ENV_NAMES = ("PYTHONHASHSEED", "PYTHONPATH")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


now = utc_now  # UTC time, ISO 8601 to the second: ``train`` records ``finished_at`` with it


def git_output(*args: str, repo: Path | None = None) -> str | None:
    """``git -C <repo> ARGS``'s output, stripped (``repo``: the project); None when git fails."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo or PROJECT_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


UNTRACKED_LISTED = 50  # untracked paths named in the record (all of them are hashed)


def _untracked() -> tuple[list[str], str | None]:
    """Untracked, not ignored files (e.g. a new module not yet added) and a hash of their names
    and contents: ``git diff HEAD`` does not see them, yet they change what runs."""
    out = git_output("ls-files", "--others", "--exclude-standard", "-z")
    names = sorted(n for n in (out or "").split("\0") if n)
    if not names:
        return [], None
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0")
        try:
            digest.update(bytes.fromhex(sha256_file(PROJECT_ROOT / name)))
        except OSError:
            digest.update(b"unreadable")
    return names, digest.hexdigest()


def git() -> dict[str, tp.Any]:
    """Commit, branch, dirty flag and a hash of the uncommitted diff (None outside a checkout).

    ``dirty`` also counts untracked files (``untracked``: the first ``UNTRACKED_LISTED`` paths,
    ``untracked_sha256``: a hash of all their names and contents)."""
    commit = git_output("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "diff_sha256": None}
    diff = git_output("diff", "HEAD") or ""
    untracked, untracked_sha256 = _untracked()
    return {
        "commit": commit,
        "branch": git_output("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(diff or untracked),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
        "untracked": untracked[:UNTRACKED_LISTED],
        "untracked_count": len(untracked),
        "untracked_sha256": untracked_sha256,
    }


def lock_hash() -> str | None:
    """sha256 of the project's requirements.lock, when running from a checkout."""
    lock = PROJECT_ROOT / "requirements.lock"
    return sha256_file(lock) if lock.is_file() else None


def lock() -> tuple[str | None, str | None]:
    """(sha256, where from): the checkout's requirements.lock, else the one the image was
    installed from (``image-info.json``, written by container/setup.sh), else (None, None)."""
    if (digest := lock_hash()) is not None:
        return digest, "checkout"
    info_path = os.environ.get("SWEEPAX_IMAGE_INFO")
    info = _read_json(Path(info_path)) if info_path else None
    if info and info.get("lock_sha256"):
        return info["lock_sha256"], "image"
    return None, None


def packages() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def madrona_mjx() -> dict[str, str | None] | None:
    """Madrona-MJX's version and build commit when installed (located, never imported: its JAX
    bridge predates jax 0.6 and may fail to import), else None."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("madrona_mjx")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    try:
        version = importlib.metadata.version("madrona_mjx")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit = None
    origin = Path(spec.origin or next(iter(spec.submodule_search_locations or []), "."))
    # an editable install from a checkout: <checkout>/src/madrona_mjx, commit in <checkout>/COMMIT
    for folder in list(origin.resolve().parents)[:4]:
        if (folder / "COMMIT").is_file():
            commit = (folder / "COMMIT").read_text().strip() or None
            break
    return {"version": version, "commit": commit, "path": str(origin)}


def environment() -> dict[str, str]:
    """The set environment variables named by ``ENV_PREFIXES`` / ``ENV_NAMES``, sorted."""
    return {
        k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES) or k in ENV_NAMES
    }


def spec_file(path: str | os.PathLike | None) -> dict[str, str | None] | None:
    """The sweep file as it is now: path and sha256 of its content (None when no path given)."""
    if not path:
        return None
    try:
        digest = sha256_file(path)
    except OSError:
        digest = None
    return {"path": os.fspath(path), "sha256": digest}


# --- container image: path, digest, labels -----------------------------------------------------
APPTAINER_LABELS = Path("/.singularity.d/labels.json")
PODMAN_CONTAINERENV = Path("/run/.containerenv")
DOCKERENV = Path("/.dockerenv")
DIGEST_CACHE_SUFFIX = ".sha256"


def _digest_cache_paths(image: Path) -> list[Path]:
    """Where a SIF's sha256 is cached: next to the image, else under ~/.cache/sweepax."""
    key = hashlib.sha256(str(image).encode()).hexdigest()[:32]
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return [
        image.with_name(image.name + DIGEST_CACHE_SUFFIX),
        home / "sweepax" / "sif-digests" / key,
    ]


def sif_digest(image: str | os.PathLike) -> str | None:
    """``sha256:<hex>`` of a SIF file, computed once and cached (keyed by size and mtime).

    The cache file (``<image>.sha256``, or ``~/.cache/sweepax/sif-digests/<key>`` when the image's
    folder is read-only) holds ``<hex> <size> <mtime_ns>``; a rebuilt image misses the cache.
    Array tasks that start together may each hash once; the cache write is atomic.
    """
    path = Path(image)
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None  # a sandbox directory has no file digest
    stamp = f"{st.st_size} {st.st_mtime_ns}"
    caches = _digest_cache_paths(path.resolve())
    for cache in caches:
        try:
            hexdigest, rest = cache.read_text().strip().split(" ", 1)
        except (OSError, ValueError):
            continue
        if rest == stamp and len(hexdigest) == 64:
            return f"sha256:{hexdigest}"
    try:
        hexdigest = sha256_file(path)
    except OSError:
        return None
    for cache in caches:  # the first that can be written
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_text(cache, f"{hexdigest} {stamp}\n")
            break
        except OSError:
            continue
    return f"sha256:{hexdigest}"


def _read_json(path: Path) -> dict[str, tp.Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _containerenv() -> dict[str, str]:
    """podman's ``/run/.containerenv`` (``key="value"`` lines: image, imageid, ...; podman writes
    them only for ``--privileged`` containers, else the file is empty)."""
    try:
        lines = PODMAN_CONTAINERENV.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


def container() -> dict[str, tp.Any]:
    """The image this process runs in, if any: path or name, digest and where the digest came from,
    the image's labels and the ``image-info.json`` that container/setup.sh wrote into it.

    Path, first that applies: the SIF (``APPTAINER_CONTAINER``), podman's image name, the
    ``SWEEPAX_IMAGE`` env var (a launcher's ``-e SWEEPAX_IMAGE=<name>``).
    Digest, first that applies: ``SWEEPAX_IMAGE_DIGEST`` (a launcher that knows it, e.g. the OCI
    digest from ``podman image inspect --format '{{.Digest}}'``); the SIF's sha256 (Apptainer,
    cached next to the image); podman's image id from ``/run/.containerenv``.
    """
    apptainer = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    containerenv = _containerenv()
    runtime = None
    if apptainer:
        runtime = "apptainer"
    elif os.environ.get("SWEEPAX_IMAGE_INFO"):  # set by the sweepax image (Containerfile ENV)
        podman = bool(containerenv) or PODMAN_CONTAINERENV.exists()
        runtime = "podman" if podman else "docker" if DOCKERENV.exists() else "oci"
    path = apptainer or containerenv.get("image") or os.environ.get("SWEEPAX_IMAGE") or None
    digest, source = os.environ.get("SWEEPAX_IMAGE_DIGEST") or None, "env SWEEPAX_IMAGE_DIGEST"
    if digest is None and apptainer:
        digest, source = sif_digest(apptainer), "sha256 of the SIF file"
    if digest is None and containerenv.get("imageid"):
        digest, source = f"sha256:{containerenv['imageid']}", "podman image id (/run/.containerenv)"
    if runtime is None and path is None and digest is None:
        return {"image": None, "digest": None}
    info_path = os.environ.get("SWEEPAX_IMAGE_INFO")
    labels = _read_json(APPTAINER_LABELS) if runtime == "apptainer" else None
    if labels is None and runtime in ("podman", "docker", "oci"):
        labels = {  # the OCI labels the Containerfile also puts into the environment
            "sweepax.git.commit": os.environ.get("SWEEPAX_IMAGE_GIT_COMMIT"),
            "sweepax.lock.sha256": os.environ.get("SWEEPAX_IMAGE_LOCK_SHA256"),
        }
    return {
        "image": path,
        "digest": digest,
        "digest_source": source if digest else None,
        "runtime": runtime,
        "labels": labels,
        "info": _read_json(Path(info_path)) if info_path else None,
    }


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (what a SLURM job or ``taskset``
    binds it to), or the machine's count where the system has no such mask."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def node() -> str:
    """The SLURM node name when in a job, else this host's name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def collect(
    argv: tp.Sequence[str] | None = None, spec: str | os.PathLike | None = None
) -> dict[str, tp.Any]:
    """Everything known before JAX starts; ``train`` adds device and timings.

    ``argv``: the ``sweepax.train`` arguments when they are not ``sys.argv[1:]`` (``main(argv)``
    called in-process); ``spec``: the sweep file, hashed as it is now (``spec``; the planner's
    hash of it travels in the arguments as ``--spec_hash``).
    """
    args = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
    lock_sha256, lock_source = lock()
    return {
        "git": git(),
        "lock_sha256": lock_sha256,
        "lock_source": lock_source,
        "packages": packages(),
        "madrona_mjx": madrona_mjx(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "environment": environment(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "container": container(),
        "host": socket.gethostname(),
        "node": node(),
        "user": getpass.getuser(),
        "cwd": os.getcwd(),
        "argv": [sys.argv[0] if sys.argv and sys.argv[0] else "sweepax.train", *args],
        "orig_argv": list(getattr(sys, "orig_argv", sys.argv)),
        "command": shlex.join(["python", "-m", "sweepax.train", *args]),
        "spec": spec_file(spec),
        "slurm": {
            k.removeprefix("SLURM_").removeprefix("SLURMD_").lower(): os.environ.get(k)
            for k in SLURM_VARS
        },
        "started_at": utc_now(),
    }


def renderer() -> dict[str, str] | None:
    """warp-lang's version and the device Warp rendered on, when this process rendered with MJX's
    Warp batch renderer (``renderer="warp"``: warp was imported), else None."""
    if sys.modules.get("warp") is None:
        return None
    from sweepax.envs import warp_render

    return {"warp-lang": warp_render.warp_version(), "device": warp_render.render_device()}


def devices() -> dict[str, tp.Any]:
    """The JAX devices this process computes on (imports jax) and the Warp renderer's, when it
    rendered: what ``train`` records."""
    import jax

    devs = jax.devices()
    return {
        "renderer": renderer(),
        "device": str(devs[0]),
        "devices": [str(d) for d in devs],
        "device_kind": devs[0].device_kind,
        "device_platform": devs[0].platform,
        "device_count": jax.device_count(),
        "jax_backend": jax.default_backend(),
        **device_memory(devs[0]),
    }


def device_memory(device: tp.Any) -> dict[str, int]:
    """``device_peak_bytes`` (the most this process has held on ``device`` so far) and
    ``device_bytes_limit``, where the device reports them (GPUs do; XLA's CPU client does not,
    and then both are absent)."""
    stats = device.memory_stats() or {}
    names = {"peak_bytes_in_use": "device_peak_bytes", "bytes_limit": "device_bytes_limit"}
    return {ours: int(stats[theirs]) for theirs, ours in names.items() if theirs in stats}
