"""Settings of the whole test session: every JAX program compiles fast, and at most once.

- XLA's backend optimisation level 0 (``XLA_FLAGS``, unless it already names a level): the same
  programs, with less LLVM optimisation of their machine code, which cuts a tiny PPO program's
  compile time to about a third; the few steps a test runs do not notice the slower code. Only
  when ``-m`` leaves out the slow tests and the POBAX agreement tests (as ``nox -s tests``
  does): the long training runs need the optimised code, their learning thresholds were measured
  with it, and the agreement tests compare with POBAX's programs at XLA's default level.
- One persistent compilation cache per session, in a temporary folder: in this process
  (``jax_compilation_cache_dir``, every program however small) and in every
  ``python -m sweepax.train`` a test starts (``SWEEPAX_JAX_CACHE``), so a program one test
  compiled is loaded by the next test that builds the same program (the same static config and
  shapes), and the user's own cache is left alone. Tests that check the cache itself set their
  own folder.

Both are set before anything compiles (``pytest_configure``: before collection) and undone when
the session ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# XLA flags of the fast compile: less LLVM optimisation, and the elemental emitter for fusions
# (XLA CPU's newer fusion emitters take about twice as long to compile a tiny PPO program)
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"

_SESSION = pytest.StashKey["_Session"]()
_CACHE_VAR = "SWEEPAX_JAX_CACHE"


class _Session:
    """What ``pytest_configure`` changed, to undo at the end: environment, JAX config, cache."""

    def __init__(self) -> None:
        self.env = pytest.MonkeyPatch()
        # pytest-xdist workers (``-n``) share the cache their controller made: one folder per run
        self.owned = not (os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(_CACHE_VAR))
        if self.owned:
            self.cache = Path(tempfile.mkdtemp(prefix="sweepax-tests-jax-cache-"))
        else:
            self.cache = Path(os.environ[_CACHE_VAR])
        self.jax_config: dict[str, object] = {}

    def set_jax(self, name: str, value: object) -> None:
        import jax

        self.jax_config.setdefault(name, getattr(jax.config, name))
        jax.config.update(name, value)

    def undo(self) -> None:
        import jax

        self.env.undo()
        for name, value in self.jax_config.items():
            jax.config.update(name, value)
        if self.owned:
            shutil.rmtree(self.cache, ignore_errors=True)


def _leaves_out_slow_tests(config: pytest.Config) -> bool:
    """Does ``-m`` deselect the tests marked ``slow`` and those marked ``pobax``? The agreement
    tests compare numbers with POBAX's own programs, compiled at XLA's default level: chaotic
    physics (brax's bodies) turns the last-bit differences of another level into different
    episodes."""
    from _pytest.mark.expression import Expression

    markexpr = config.getoption("markexpr", "") or ""
    if not markexpr:
        return False
    expression = Expression.compile(markexpr)
    return not any(
        expression.evaluate(lambda name, /, marker=marker, **_: name == marker)
        for marker in ("slow", "pobax")
    )


def pytest_configure(config: pytest.Config) -> None:
    session = _Session()
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags and _leaves_out_slow_tests(config):
        session.env.setenv("XLA_FLAGS", f"{flags} {FAST_COMPILE_FLAGS}".strip())
    session.env.setenv(_CACHE_VAR, str(session.cache))
    session.set_jax("jax_compilation_cache_dir", str(session.cache))
    session.set_jax("jax_persistent_cache_min_compile_time_secs", 0.0)
    config.stash[_SESSION] = session


def pytest_unconfigure(config: pytest.Config) -> None:
    if session := config.stash.get(_SESSION, None):
        session.undo()


@pytest.fixture(scope="session")
def jax_cache_dir(pytestconfig: pytest.Config) -> Path:
    """The session's persistent compilation cache (in-process and ``python -m sweepax.train``)."""
    return pytestconfig.stash[_SESSION].cache


@pytest.fixture(scope="session")
def pobax_python() -> str:
    """The python of build/pobax-venv, POBAX 0.0.1 in its own venv (``bench/pobax/pobax_venv.py``
    makes it on first use, a few minutes), for the agreement tests (``-m pobax``)."""
    venv = Path(__file__).resolve().parents[1] / "bench" / "pobax" / "pobax_venv.py"
    done = subprocess.run([sys.executable, str(venv)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["python"]


@pytest.fixture(scope="session")
def pobax_record(pobax_python: str):
    """``record(driver, jobs, out)``: run an agreement driver (a script of tests/envs/...) in
    POBAX's venv on ``jobs`` (written to ``out/request.json``; each job names its ``out`` .npz),
    and fail with the end of its stderr if it fails."""

    def record(driver: Path, jobs: list[dict], out: Path) -> None:
        request = out / "request.json"
        request.write_text(json.dumps(jobs))
        done = subprocess.run(
            [pobax_python, str(driver), str(request)], capture_output=True, text=True, cwd=out
        )
        assert done.returncode == 0, done.stderr[-3000:]

    return record


@pytest.fixture(scope="session")
def pobax_sdist() -> Path:
    """POBAX 0.0.1's sdist from PyPI (it has scripts/, the wheel does not), fetched once into
    build/pobax-sdist."""
    sdist = Path(__file__).resolve().parents[1] / "build" / "pobax-sdist" / "pobax-0.0.1.tar.gz"
    if not sdist.is_file():
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        subprocess.run([*pip, "pobax==0.0.1", "-d", str(sdist.parent)], check=True)
    return sdist
