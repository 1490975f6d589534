"""run_local end to end: a sweep file -> runs/ -> real tasks -> stores -> parse -> best."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import xarray as xr

from sweepax.results import store


def run(cwd: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True
    )


def test_run_local_runs_every_task_logs_it_and_skips_complete_ones(tmp_path, tiny_sweep):
    (tmp_path / "hyperparams").mkdir()
    (tmp_path / "hyperparams" / "tiny.py").write_text(tiny_sweep)
    first = run(tmp_path, "sweepax.launch.local", "hyperparams/tiny.py", "--parallel", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    manifest = json.loads((tmp_path / "runs" / "tiny.json").read_text())
    ids = [t["task_id"] for t in manifest["tasks"]]
    assert len(ids) == 2
    assert sorted(store.complete_stores(tmp_path / "results" / "tiny")) == sorted(ids)
    for t in manifest["tasks"]:
        log = tmp_path / "logs" / "tiny" / f"{t['index']}_{t['task_id']}.log"
        assert log.read_text().startswith(f"$ {t['command']}")
        assert "progress:" in log.read_text() and "wrote results/tiny/" in log.read_text()

    again = run(tmp_path, "sweepax.launch.local", "tiny")  # by study name, from runs/
    assert again.returncode == 0
    assert "skipping 2 task(s)" in again.stdout
    assert len(list((tmp_path / "results" / "tiny").glob("*.zarr"))) == 2  # nothing re-ran

    parse = run(tmp_path, "sweepax.results.parse", "results/tiny")
    assert parse.returncode == 0, parse.stderr
    scores = xr.open_zarr(tmp_path / "results" / "tiny" / "scores.zarr")
    assert {"env", "hidden_size", "lr", "seed", "update"} <= set(scores["episode_return"].dims)
    assert list(scores["hidden_size"].values) == [8, 16] and list(scores["seed"].values) == [3, 4]

    best = run(tmp_path, "sweepax.results.best", "results/tiny", "--measure", "final")
    assert best.returncode == 0, best.stderr
    result = json.loads((tmp_path / "results" / "tiny" / "best_final.json").read_text())
    assert "tmaze_5" in json.dumps(result)
    assert (tmp_path / "results" / "tiny" / "best_final.png").stat().st_size > 1000


def test_run_local_reports_a_failing_task_with_its_log_and_exits_1(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    task = {"index": 0, "task_id": "deadbeef0000", "command": "echo boom >&2; exit 3"}
    (runs / "broken.json").write_text(json.dumps({"study": "broken", "tasks": [task]}))
    proc = run(tmp_path, "sweepax.launch.local", "broken")
    assert proc.returncode == 1
    assert "failed" in proc.stdout and "boom" in proc.stdout
    assert (tmp_path / "logs" / "broken" / "0_deadbeef0000.log").read_text().endswith("boom\n")


def test_run_local_unknown_study_is_a_one_line_error(tmp_path):
    proc = run(tmp_path, "sweepax.launch.local", "nosuchstudy")
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("error: nosuchstudy: no such sweep file")
        and "Traceback" not in proc.stderr
    )
