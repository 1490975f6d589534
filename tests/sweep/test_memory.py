"""``--max-vmap auto``: tasks sized from the compiled update program's memory analysis."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sweepax.errors import UserError
from sweepax.sweep import load, memory, plan, write_jobs

# six configs x two seeds of a tiny recurrent PPO program
STUDY = """
from sweepax import vmap
hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{
        "env": "tmaze_5",
        "lr": vmap([1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3]),
        "total_steps": 1024, "num_envs": 4, "num_steps": 32,
        "seed": 0, "n_seeds": 2,
    }],
}
"""
ESTIMATE_FACTOR = 1.1  # the fit's estimate and the real task's compiled program agree within it


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("memory") / "tiny.py"
    path.write_text(textwrap.dedent(STUDY))
    return path


@pytest.fixture(scope="module")
def fit(study_file) -> memory.Fit:
    """The study's program compiled at 1, 2 and 4 configs x 2 seeds."""
    static = plan.plan(load.load(study_file)).tasks[0].static
    return memory.fit("ppo", static)


def budget_for(fit: memory.Fit, configs: int) -> int:
    """A device memory in which ``configs`` configs fit with the margin, one more does not."""
    return int((fit.bytes(configs) + fit.slope / 2) / memory.MARGIN)


@pytest.mark.parametrize(
    ("text", "size"),
    [("80GiB", 80 << 30), ("512MiB", 512 << 20), ("1.5GB", 1_500_000_000), ("4096", 4096),
     ("16 kib", 16 << 10)],
)  # fmt: skip
def test_device_memory_sizes_parse_with_binary_and_decimal_units(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["80 gigs", "GiB", "-1GiB", "0"])
def test_a_size_that_is_not_one_is_refused_in_one_line_naming_the_option(text):
    with pytest.raises(UserError, match=r"^--device-memory .*: not a memory size; give") as err:
        memory.parse_size(text)
    assert "\n" not in str(err.value)


def test_the_fit_is_linear_in_configs_and_grows_with_them(fit):
    assert sorted(fit.measured) == [1, 2, 4]
    assert fit.slope > 0
    for configs, measured in fit.measured.items():
        assert fit.bytes(configs) == pytest.approx(measured, rel=0.05)
        fields = fit.analysis[configs]
        assert measured == memory.footprint(fields, fit.chunks)
        assert fields["alias_size_in_bytes"] > 0  # the runner state is donated


def test_a_small_budget_splits_the_grid_into_equal_tasks_that_each_fit(study_file, fit, tmp_path):
    device = budget_for(fit, 2)
    assert fit.measured[4] > memory.MARGIN * device  # the whole grid would not fit
    runs = tmp_path / "runs"
    argv = [str(study_file), "--max-vmap", "auto", "--device-memory", str(device)]
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.sweep.write_jobs", *argv, "--runs-dir", str(runs)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((runs / "tiny.json").read_text())
    assert manifest["max_vmap"] == "auto"
    assert manifest["n_tasks"] == 3
    assert [t["n_configs"] for t in manifest["tasks"]] == [2, 2, 2]
    assert [c["lr"] for t in manifest["tasks"] for c in t["configs"]] == [
        1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3,
    ]  # fmt: skip
    record = manifest["memory"]
    assert record["device_memory_bytes"] == device
    assert record["device_memory_source"] == "--device-memory"
    assert record["budget_bytes"] == int(memory.MARGIN * device)
    (one,) = record["fits"]
    assert (one["intercept_bytes"], one["bytes_per_config"]) == (
        round(fit.intercept), round(fit.slope),
    )  # fmt: skip
    assert one["measured_bytes"] == {str(c): b for c, b in fit.measured.items()}
    for task in manifest["tasks"]:
        assert task["memory_estimate_bytes"] == fit.bytes(2) <= record["budget_bytes"]
    out = proc.stdout
    assert f"budget {memory.mib(record['budget_bytes'])}" in out
    for task in manifest["tasks"]:
        line = f"task {task['index']} {task['task_id']}: 2 configs x 2 seeds, about"
        assert f"{line} {memory.mib(fit.bytes(2))}" in out
    assert len((runs / "tiny.txt").read_text().splitlines()) == 3


def test_the_estimate_matches_the_real_tasks_compiled_program(study_file, fit):
    """Three configs per task (not a size the fit compiled): the task's own compile, as
    ``python -m sweepax.train`` runs it, uses what the estimate says within the factor."""
    from sweepax import train

    p = plan.plan(load.load(study_file), "auto", device_memory=budget_for(fit, 3))
    assert [len(t.configs) for t in p.tasks] == [3, 3]
    task = p.tasks[0]
    compiled, _, _ = train.compile_task(train.parse_task(task.argv[2:]))
    fields = compiled.update.memory_analysis()
    chunks = -(-compiled.num_updates // compiled.chunk)
    real = memory.footprint({f: getattr(fields, f) for f in memory.FIELDS}, chunks)
    assert 1 / ESTIMATE_FACTOR < task.memory_estimate_bytes / real < ESTIMATE_FACTOR


def test_a_budget_too_small_for_one_config_fails_in_one_line_and_writes_nothing(
    study_file, fit, tmp_path, capsys
):
    runs = tmp_path / "runs"
    small = int(fit.bytes(1) * 0.9)
    argv = [str(study_file), "--max-vmap", "auto", "--device-memory", str(small)]
    assert write_jobs.main([*argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {study_file}: --device-memory {memory.mib(small)}: one config")
    assert "give a larger --device-memory or fewer seeds (n_seeds)" in err
    assert not runs.exists()


def test_device_memory_without_auto_and_a_bad_max_vmap_are_refused(study_file, capsys):
    assert write_jobs.main([str(study_file), "--device-memory", "1GiB"]) == 2
    assert "only sizes tasks with --max-vmap auto" in capsys.readouterr().err
    assert write_jobs.main([str(study_file), "--max-vmap", "some"]) == 2
    assert "--max-vmap 'some': give a number of configs per task, or 'auto'" in (
        capsys.readouterr().err
    )


def test_planning_without_auto_compiles_no_program_and_records_no_memory(study_file, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled a program without --max-vmap auto")

    monkeypatch.setattr(memory, "update_analysis", no_compile)
    monkeypatch.setattr(memory, "_fit", memory._fit.__wrapped__)  # no cached fit either
    for max_vmap in (None, 4):
        doc = plan.plan(load.load(study_file), max_vmap).manifest()
        assert "memory" not in doc
        assert all("memory_estimate_bytes" not in t for t in doc["tasks"])
    assert [t["n_configs"] for t in doc["tasks"]] == [4, 2]


def test_without_device_memory_the_devices_own_or_the_stated_default_is_the_budget(study_file, fit):
    import jax

    p = plan.plan(load.load(study_file), "auto")
    record = p.manifest()["memory"]
    stats = jax.local_devices()[0].memory_stats() or {}
    expected = stats.get("bytes_limit") or memory.DEFAULT_DEVICE_MEMORY
    assert record["device_memory_bytes"] == expected
    if not stats.get("bytes_limit"):
        assert record["device_memory_source"] == "default (cpu reports no memory limit)"
    assert [len(t.configs) for t in p.tasks] == [6]
    assert p.tasks[0].memory_estimate_bytes == fit.bytes(6)
