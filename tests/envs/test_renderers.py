"""``renderer: "madrona"`` where Madrona-MJX is not installed (as on these machines): a study
plans (every config and seed its own task, with the planner's note), and each of its tasks stops
in one line, exit code 2, before anything compiles."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sweepax.envs import registry, renderers
from sweepax.errors import UserError
from sweepax.sweep import load, plan, write_jobs

ROOT = Path(__file__).resolve().parents[2]
MADRONA_STUDY = ROOT / "hyperparams" / "visual_mujoco" / "ant_ppo_madrona.py"


def test_madrona_mjx_is_not_installed_on_these_machines() -> None:
    assert not renderers.installed(renderers.MADRONA_MODULE)


def test_madrona_message_says_why_and_names_the_renderer_to_use(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "madrona_mjx", None)  # missing, installed or not
    message = renderers.madrona_missing("ant-pixels")
    assert message == (
        "env 'ant-pixels': renderer 'madrona' needs Madrona-MJX (madrona_mjx), which is not "
        "installed here (it is unmaintained upstream and its JAX bridge needs jax < 0.6; this is "
        f'jax {renderers.jax_version()}): use renderer: "warp" (MJX\'s Warp batch renderer, CPU or '
        'NVIDIA GPU, vmappable) or "jax" (MJX ray casting, runs anywhere, vmappable)'
    )
    for call in (
        lambda: registry.check("ant-pixels", "madrona"),
        lambda: registry.make("ant-pixels", renderer="madrona"),
    ):
        with pytest.raises(UserError) as err:
            call()
        assert str(err.value) == message
    registry.check("ant-pixels")  # planning asks nothing about the renderer
    registry.check("ant-pixels", "jax")
    assert not registry.vmappable("ant-pixels", "madrona")
    known = "renderer 'opengl': known renderers are jax, warp, madrona"
    with pytest.raises(UserError, match=known):
        registry.check("ant-pixels-32", "opengl")
    with pytest.raises(UserError, match="renderer 'madrona' applies only to"):
        registry.check("CartPole-v1", "madrona")


def test_madrona_env_is_refused_before_mujoco_is_imported() -> None:
    code = (
        "import sys\n"
        "from sweepax.envs import registry\n"
        "from sweepax.errors import UserError\n"
        "try:\n"
        "    registry.make('hopper-pixels-16', renderer='madrona')\n"
        "except UserError as err:\n"
        "    print(str(err).split(':')[0])\n"
        "print('mujoco' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["env 'hopper-pixels-16'", "False"]


def test_madrona_study_plans_and_its_task_stops_in_one_line_before_compiling(tmp_path) -> None:
    """The repository's Madrona study: 6 configs x 3 seeds -> 18 tasks with a note; its first
    task, run as the job array runs it, exits 2 with the one-line reason and writes nothing."""
    study = plan.plan(load.load(MADRONA_STUDY))
    assert len(study.tasks) == 18
    assert all(len(t.configs) == 1 and len(t.seeds) == 1 for t in study.tasks)
    note = "ant-pixels (renderer madrona) cannot vmap: 6 configs x 3 seeds -> 18 tasks"
    assert study.notes == [note]
    assert write_jobs.plan_notes([study]) == [f"note: ant_ppo_madrona: {study.notes[0]}"]

    argv = shlex.split(study.tasks[0].command)
    assert argv[:3] == ["python", "-m", "sweepax.train"] and "--renderer" in argv
    cache = tmp_path / "jax-cache"  # any compile would write an executable here
    env = {**os.environ, "SWEEPAX_JAX_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == f"error: {renderers.madrona_missing('ant-pixels')}"
    assert sum(line.startswith("error:") for line in lines) == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not [p for p in cache.rglob("*") if p.is_file()]  # nothing compiled
    results = tmp_path / "results"
    assert not [p for p in results.rglob("*") if p.is_file()]  # no store, no checkpoint
