#!/usr/bin/env bash
# The ONE install script of the sweepax images: Containerfile and apptainer.def both run it, and so
# can a laptop or CI (the CPU path is tested, marked slow: into a venv in
# tests/container/test_recipes.py, as a podman image in tests/container/test_cpu_image.py).
#
#   container/setup.sh system-deps              apt packages of the image
#   container/setup.sh install [--cpu|--gpu] [--venv DIR] [--python SPEC] [--project DIR]
#                              [--info FILE]
#                                               a fresh venv with requirements.lock (+ with --gpu the
#                                               CUDA extras of container/requirements-gpu.lock) and
#                                               the project
#   container/setup.sh check [--venv DIR]       import sweepax, jax (+ mujoco.mjx) and print
#                                               jax.devices()
#
# Pins that are not Python packages of the project live here, once; the recipes get them from
# here (nox -s container reads them for the image labels):
set -euo pipefail

UV_VERSION=0.13.9           # the same uv as noxfile.py's UV (a test checks)
PYTHON_VERSION=3.11.18      # uv-managed CPython (python-build-standalone); jax 0.10.2 needs >= 3.11
# No Madrona-MJX: it is unmaintained upstream and its JAX bridge needs jax < 0.6 (the lock has
# 0.10.2), so an image build of it would be a renderer nothing can call.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "setup.sh: $*" >&2; exit 2; }
log() { echo "setup.sh: $*" >&2; }

# uv uses the system CA store (and SSL_CERT_FILE), so a site's TLS-intercepting CA works
# (UV_SYSTEM_CERTS: uv >= 0.13 name of the deprecated UV_NATIVE_TLS)
export UV_SYSTEM_CERTS=1 UV_LINK_MODE=${UV_LINK_MODE:-copy}

find_uv() {
  # $UV, else a uv of the pinned version on PATH, else install that uv into $UV_BOOTSTRAP
  if [ -n "${UV:-}" ]; then echo "$UV"; return; fi
  if command -v uv >/dev/null && [ "$(uv --version | cut -d' ' -f2)" = "$UV_VERSION" ]; then
    command -v uv; return
  fi
  local boot=${UV_BOOTSTRAP:-/opt/uv}
  if [ ! -x "$boot/bin/uv" ]; then
    command -v python3 >/dev/null || die "no uv $UV_VERSION and no python3 to install it with"
    log "installing uv==$UV_VERSION into $boot"
    python3 -m venv "$boot" >&2
    "$boot/bin/python" -m pip install --quiet --no-cache-dir "uv==$UV_VERSION" >&2
  fi
  echo "$boot/bin/uv"
}

cmd_system_deps() {
  # Ubuntu 22.04 (the CUDA images). python3-venv only bootstraps uv; the project's Python is
  # uv's CPython $PYTHON_VERSION. git: provenance reads the bound checkout's commit.
  local pkgs=(ca-certificates git python3-venv libegl1 libgl1 libglib2.0-0)
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${pkgs[@]}"
  rm -rf /var/lib/apt/lists/*
  # git in a container refuses checkouts owned by another uid ("dubious ownership")
  git config --system --add safe.directory '*'
}

cmd_install() {
  local variant=cpu venv=/opt/venv python=$PYTHON_VERSION project info=""
  project=$(cd "$HERE/.." && pwd)
  while [ $# -gt 0 ]; do
    case $1 in
      --cpu) variant=cpu ;;
      --gpu) variant=gpu ;;
      --venv) venv=$2; shift ;;
      --python) python=$2; shift ;;
      --project) project=$2; shift ;;
      --info) info=$2; shift ;;
      *) die "install: unknown option $1" ;;
    esac
    shift
  done
  local lock=$project/requirements.lock gpu=$project/container/requirements-gpu.lock
  [ -f "$lock" ] || die "no $lock"
  local uv; uv=$(find_uv)
  [ -e "$venv" ] && die "$venv exists; setup.sh install makes a fresh venv"
  # uv's own CPython when $python is a version (downloaded to UV_PYTHON_INSTALL_DIR: in the image
  # /opt/python, readable by every user, unlike /root); a path is used as is
  local reqs=(-r "$lock")
  [ "$variant" = gpu ] && reqs+=(-r "$gpu")
  "$uv" venv --python "$python" "$venv"
  # --no-deps: the locks are complete; nothing is resolved here, every version is the lock's.
  # --compile-bytecode: uv (unlike pip) writes no .pyc, and Python writes none where
  # PYTHONDONTWRITEBYTECODE is set or site-packages is read-only (an image): every task would
  # compile jax, flax, ... from source again (about 5 s of each task's start)
  "$uv" pip install --python "$venv/bin/python" --no-deps --compile-bytecode "${reqs[@]}"
  "$uv" pip install --python "$venv/bin/python" --no-deps --compile-bytecode "$project"
  "$uv" pip check --python "$venv/bin/python"
  if [ -n "$info" ]; then
    # what the image knows about itself; sweepax.provenance records it in every store
    "$venv/bin/python" - "$info" "$variant" "$project" <<'PY'
import hashlib, importlib.metadata as md, json, os, sys
info, variant, project = sys.argv[1:4]
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.isfile(p) else None
names = ("sweepax", "jax", "jaxlib", "jax-cuda12-plugin", "mujoco", "mujoco-mjx")
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
json.dump({
    "variant": variant,
    "python": sys.version.split()[0],
    "lock_sha256": sha(os.path.join(project, "requirements.lock")),
    "gpu_lock_sha256": sha(os.path.join(project, "container", "requirements-gpu.lock")) if variant == "gpu" else None,
    "packages": {n: version(n) for n in names},
}, open(info, "w"), indent=1, sort_keys=True)
PY
  fi
  log "installed the $variant environment into $venv"
}

cmd_check() {
  local venv=/opt/venv
  [ "${1:-}" = --venv ] && venv=$2
  "$venv/bin/python" - <<'PY'
import importlib.util, sweepax, jax
print("sweepax", sweepax.__file__, "jax", jax.__version__)
if importlib.util.find_spec("mujoco") is not None:
    import mujoco, mujoco.mjx  # noqa: E401
    print("mujoco", mujoco.__version__, "+ mjx")
print("jax.devices():", jax.devices())
PY
}

case ${1:-} in
  system-deps) shift; cmd_system_deps "$@" ;;
  install) shift; cmd_install "$@" ;;
  check) shift; cmd_check "$@" ;;
  *) die "usage: setup.sh {system-deps | install [...] | check [--venv DIR]}" ;;
esac
