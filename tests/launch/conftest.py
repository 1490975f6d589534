"""Shared fixtures of the launch tests."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sweepax.results import store

TINY_SWEEP = """
from sweepax import vmap
hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{
        "env": "tmaze_5", "hidden_size": [8, 16], "lr": vmap([1e-3, 3e-3]),
        "total_steps": 1024, "num_steps": 32, "num_envs": 4, "eval_steps": 32,
        "seed": 3, "n_seeds": 2,
    }],
}
"""


@pytest.fixture
def tiny_sweep() -> str:
    """A sweep file of 2 tiny tmaze_5 tasks (hidden 8 and 16) x 2 vmapped lrs x 2 seeds."""
    return textwrap.dedent(TINY_SWEEP)


def tiny_store(study_dir: Path, task_id: str) -> Path:
    """A real, complete (sealed) task store of one config, one seed and two updates."""
    return store.write_task_store(
        study_dir,
        task_id,
        {"episode_return": np.zeros((1, 1, 2), np.float32)},
        {"lr": [0.1]},
        [0],
        np.arange(1, 3),
        {"study": study_dir.name},
    )


def damage(store_path: Path) -> None:
    """Grow one chunk of a store by a byte: its completion record no longer matches."""
    chunk = next(p for p in sorted(store_path.rglob("*")) if p.is_file() and "c" in p.parts)
    with chunk.open("ab") as f:
        f.write(b"x")


# --- the real cluster (tests marked slurm) ------------------------------------------------------
@functools.cache
def cluster_up() -> bool:
    """Does a SLURM controller answer? Asked once per process, and only when a test marked
    ``slurm`` runs: where SLURM is installed but not started, ``sinfo`` waits seconds to fail."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(autouse=True)
def _slurm_cluster(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slurm") and not cluster_up():
        pytest.skip("no SLURM cluster answers (nox -s slurm_tests)")


def sweepax(project: Path, env: dict, module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", f"sweepax.{module}", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"{module} {args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def task_states(ids: list[str]) -> dict[str, str]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%i %T"],
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())
