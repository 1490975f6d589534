"""Planning envs that cannot vmap (image envs with ``renderer="madrona"``): one task per config
and seed, a note in the plan output; the same study with the ``jax`` renderer stays one task."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sweepax.sweep import load, plan, write_jobs

STUDY = """
from sweepax import vmap

hparams = {{
    "entry": "-m sweepax.train ppo",
    "args": [{{
        "env": "ant-pixels",
        "renderer": "{renderer}",
        "lr": vmap([1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6]),
        "lambda0": vmap([0.5, 0.7, 0.9, 0.95]),
        "seed": 2024, "n_seeds": 10,
    }}],
}}
"""


def make_plan(tmp_path: Path, renderer: str) -> plan.Plan:
    path = tmp_path / f"ant_{renderer}.py"
    path.write_text(textwrap.dedent(STUDY.format(renderer=renderer)))
    return plan.plan(load.load(path))


def test_madrona_study_splits_every_config_and_seed_into_its_own_task_with_a_note(tmp_path):
    p = make_plan(tmp_path, "madrona")
    assert len(p.tasks) == 24 * 10 and p.n_runs == 240
    assert all(len(t.configs) == 1 and len(t.seeds) == 1 for t in p.tasks)
    assert all(t.static["n_seeds"] == 1 and t.static["seed"] == t.seeds[0] for t in p.tasks)
    runs = {(t.configs[0]["lr"], t.configs[0]["lambda0"], t.seeds[0]) for t in p.tasks}
    assert len(runs) == 240  # every (config, seed) exactly once
    assert {t.seeds[0] for t in p.tasks} == set(range(2024, 2034))
    assert len({t.task_id for t in p.tasks}) == 240
    command = p.tasks[11].command
    assert "--renderer madrona" in command and "--n_seeds 1" in command
    assert f"--seed {p.tasks[11].seeds[0]}" in command
    assert p.notes == [
        "ant-pixels (renderer madrona) cannot vmap: 24 configs x 10 seeds -> 240 tasks"
    ]
    assert write_jobs.plan_notes([p]) == [f"note: ant_madrona: {p.notes[0]}"]
    assert p.manifest()["notes"] == p.notes


def test_jax_renderer_study_vmaps_configs_and_seeds_in_one_task_without_notes(tmp_path):
    p = make_plan(tmp_path, "jax")
    assert len(p.tasks) == 1 and len(p.tasks[0].configs) == 24 and len(p.tasks[0].seeds) == 10
    assert p.notes == [] and "notes" not in p.manifest()


def test_planning_mjx_and_pixel_studies_does_not_import_mujoco(tmp_path):
    """Planning matches MuJoCo ids by name (``envs.names``) without loading MuJoCo."""
    (tmp_path / "mj.py").write_text(
        'hparams = {"args": [{"env": ["Hopper-v5", "Ant-P-v0", "walker2d-pixels-32"]}]}\n'
    )
    make_plan(tmp_path, "madrona")  # writes ant_madrona.py
    code = (
        "import sys\n"
        "from sweepax.sweep import write_jobs\n"
        f"plans = write_jobs.plan_targets([{str(tmp_path)!r}], None)\n"
        "print(sorted(len(p.tasks) for p in plans))\n"
        "print('mujoco' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[3, 240]", "False"]


def test_image_envs_without_a_renderer_get_warp_on_platform_gpu_and_jax_elsewhere(tmp_path):
    """POBAX's visual files name no renderer and ``platform: gpu``: they plan with MJX's Warp
    renderer; the same file without a platform plans with the ray caster (faster on CPU)."""
    body = '"env": {env!r}, "lr": vmap([1e-3, 1e-4]), "n_seeds": 3'
    for platform, env, renderer in [
        ("gpu", "hopper_pixels", "warp"),
        (None, "hopper_pixels", "jax"),
        ("cpu", "ant-pixels-32", "jax"),
        ("gpu", "tmaze_5", None),  # no images: the renderer stays the program's default
    ]:
        keys = body.format(env=env) + (f', "platform": {platform!r}' if platform else "")
        path = tmp_path / f"{env}_{platform}.py"
        path.write_text(f'from sweepax import vmap\nhparams = {{"args": [{{{keys}}}]}}\n')
        p = plan.plan(load.load(path))
        (task,) = p.tasks
        assert len(task.configs) == 2 and task.static["renderer"] == (renderer or "jax")
        planned = f"--renderer {renderer}" in task.command
        assert planned == (renderer == "warp"), task.command
        warp_note = [f"{env}: renderer warp (the default for image envs on platform gpu)"]
        assert p.notes == (warp_note if renderer == "warp" else [])
    explicit = tmp_path / "explicit.py"
    explicit.write_text(
        'hparams = {"args": [{"env": "hopper_pixels", "renderer": "jax", "platform": "gpu"}]}\n'
    )
    (task,) = plan.plan(load.load(explicit)).tasks
    assert task.static["renderer"] == "jax"  # a renderer the file names is kept


def test_platform_option_plans_a_gpu_study_for_cpu_with_the_cpu_renderer(tmp_path, capsys):
    """``write_jobs --platform cpu`` on POBAX's kind of visual file (``platform: gpu``): the task
    lines ask for cpu, the image env gets the ray caster, and the plan says what was replaced."""
    path = tmp_path / "hopper_visual.py"
    path.write_text('hparams = {"args": [{"env": "hopper_pixels", "platform": "gpu"}]}\n')
    runs = tmp_path / "runs"
    assert write_jobs.main([str(path), "--runs-dir", str(runs), "--platform", "cpu"]) == 0
    (line,) = (runs / "hopper_visual.txt").read_text().splitlines()
    assert "--platform cpu" in line and "--renderer" not in line  # the program's default: jax
    out = capsys.readouterr().out
    assert "note: hopper_visual: platform cpu (from --platform; the sweep file says 'gpu')" in out
    assert write_jobs.main([str(path), "--runs-dir", str(runs)]) == 0
    (line,) = (runs / "hopper_visual.txt").read_text().splitlines()
    assert "--platform gpu" in line and "--renderer warp" in line
