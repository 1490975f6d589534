"""The POBAX 0.0.1 benchmark venv: build/pobax-venv, from PyPI, pinned by requirements.txt.

Created with uv (fallback: ``python -m venv`` + pip) and reused while the stamp file holds the hash
of requirements.txt plus the shim. The PyPI wheel does ``from definitions import ROOT_DIR`` (a
module of POBAX's repo root that the wheel does not ship) and reads ``ROOT_DIR/pobax/envs/...``:
the one-line shim ``definitions.py`` written into the venv's site-packages points ROOT_DIR at
site-packages itself, which holds ``pobax/``. No POBAX source is copied anywhere.

    python bench/pobax/pobax_venv.py          # create or reuse; prints the venv's python
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / "build" / "pobax-venv"
PINS = HERE / "requirements.txt"
SHIM = "import os; ROOT_DIR = os.path.dirname(os.path.abspath(__file__))\n"
PYTHON_VERSION = "3.11"  # the anchor's Python; jax 0.6.2 / the pinned wheels need 3.10-3.13


def _digest() -> str:
    return hashlib.sha256(PINS.read_bytes() + SHIM.encode()).hexdigest()


def _find_python() -> str | None:
    """A Python 3.11 on this machine (for the pip fallback), else None."""
    for name in (f"python{PYTHON_VERSION}",):
        found = shutil.which(name)
        if found:
            return found
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    return None


def _uv() -> str | None:
    local = Path(sys.executable).with_name("uv")
    return str(local) if local.exists() else shutil.which("uv")


def _site(py: Path) -> str:
    return subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _compile_bytecode(py: Path) -> None:
    """Write site-packages' .pyc files, as ``pip install`` (POBAX's own install) does and uv does
    not: without them, where PYTHONDONTWRITEBYTECODE is set, every POBAX process compiles jax,
    flax, ... from source, which the benchmark would count as POBAX's fixed cost."""
    subprocess.run([str(py), "-m", "compileall", "-q", "-j", "0", _site(py)], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def ensure(log=print) -> dict:
    """Create or reuse the venv; returns {python, created, install_s, how}."""
    py = VENV / "bin" / "python"
    stamp = VENV / ".sweepax-stamp"
    digest = _digest()
    if py.exists() and stamp.exists() and json.loads(stamp.read_text()).get("digest") == digest:
        if not json.loads(stamp.read_text()).get("bytecode"):  # made before bytecode was compiled
            _compile_bytecode(py)
            stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "bytecode": True}))
        return {"python": str(py), "created": False, "install_s": 0.0, "how": "reused"}
    log(f"POBAX venv: creating {VENV} from {PINS.relative_to(ROOT)} (a few minutes, ~1.4 GB)")
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    uv = _uv()
    logfile = VENV.parent / "pobax-venv-install.log"
    with logfile.open("w") as out:
        run = lambda argv: subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)  # noqa: E731
        ok = False
        how = ""
        if uv:
            how = "uv"
            ok = (
                run([uv, "venv", "--seed", "--python", PYTHON_VERSION, str(VENV)]).returncode == 0
                and run([uv, "pip", "install", "--python", str(py), "-r", str(PINS)]).returncode
                == 0
            )
        if not ok:
            base = _find_python()
            if base is None:
                raise SystemExit(f"POBAX venv: no uv and no python{PYTHON_VERSION} found")
            how = "venv+pip"
            shutil.rmtree(VENV, ignore_errors=True)
            ok = (
                run([base, "-m", "venv", str(VENV)]).returncode == 0
                and run([str(py), "-m", "pip", "install", "-q", "-r", str(PINS)]).returncode == 0
            )
    if not ok:
        raise SystemExit(f"POBAX venv: install failed, see {logfile}")
    site = _site(py)
    (Path(site) / "definitions.py").write_text(SHIM)
    _compile_bytecode(py)
    install_s = time.perf_counter() - t0
    record = {"digest": digest, "install_s": round(install_s, 1), "how": how, "bytecode": True}
    stamp.write_text(json.dumps(record))
    log(f"POBAX venv: ready in {install_s:.0f} s ({how})")
    return {"python": str(py), "created": True, "install_s": round(install_s, 1), "how": how}


if __name__ == "__main__":
    print(json.dumps(ensure(log=lambda m: print(m, file=sys.stderr))))
