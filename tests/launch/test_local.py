"""run_local end to end: a sweep file -> runs/ -> real tasks -> stores -> parse -> best."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import xarray as xr

from sweepax import provenance
from sweepax.launch import local, records, status
from sweepax.launch.records import Paths
from sweepax.results import store

from .conftest import damage, tiny_store


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
        # two tasks at once share the cores: each makes its half of the CPU devices
        prov = store.read_attrs(tmp_path / "results" / "tiny" / f"{t['task_id']}.zarr")
        assert prov["provenance"]["device_count"] == max(1, provenance.usable_cores() // 2)

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


def echo_study(root: Path, n: int = 3, command: str = "echo task {i}") -> list[dict]:
    """A planned study ``s`` of ``n`` quick shell tasks (no training)."""
    (root / "runs").mkdir(parents=True, exist_ok=True)
    tasks = [{"index": i, "task_id": f"id{i}", "command": command.format(i=i)} for i in range(n)]
    (root / "runs" / "s.json").write_text(json.dumps({"study": "s", "tasks": tasks}))
    return tasks


def test_a_task_another_run_holds_is_skipped_and_its_holder_named(tmp_path):
    echo_study(tmp_path)
    paths = Paths(tmp_path / "runs", tmp_path / "results", tmp_path / "logs")
    held = records.claim(paths.claim("s", 1, "id1"), {"host": "vm", "pid": 4242, "started": "T0"})
    assert isinstance(held, records.Claim)
    try:
        proc = run(tmp_path, "sweepax.launch.local", "s")
        again = records.claim(paths.claim("s", 1, "id1"), {"host": "other"})
    finally:
        held.release()
    assert again == {"host": "vm", "pid": 4242, "started": "T0"}  # still ours while we hold it
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipping s[1] id1: another run_local holds it (host vm, pid 4242, since T0)" in (
        " ".join(proc.stdout.split())
    )
    logs = sorted(p.name for p in (tmp_path / "logs" / "s").glob("*.log"))
    assert logs[0].startswith("0_id0.2") and logs[1] == "0_id0.log"
    assert logs[2].startswith("2_id2.2") and logs[3] == "2_id2.log" and len(logs) == 4
    assert (tmp_path / "logs" / "s" / "2_id2.log").read_text().endswith("task 2\n")
    # once released, the claim is free again: a later run takes task 1
    proc = run(tmp_path, "sweepax.launch.local", "s")
    assert proc.returncode == 0 and "holds it" not in proc.stdout
    assert (tmp_path / "logs" / "s" / "1_id1.log").read_text().endswith("task 1\n")


def test_status_shows_a_task_a_live_run_local_holds_as_running(tmp_path):
    manifest = {"study": "s", "tasks": echo_study(tmp_path)}
    paths = Paths(tmp_path / "runs", tmp_path / "results", tmp_path / "logs")
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": "T0"}
    held = records.claim(paths.claim("s", 1, "id1"), me)
    assert isinstance(held, records.Claim)
    rows = status.study_status(manifest, paths)
    assert [r.state for r in rows] == ["missing", "running", "missing"]
    assert rows[1].last_line == f"run_local: host {me['host']}, pid {os.getpid()}, since T0"
    held.release()
    assert [r.state for r in status.study_status(manifest, paths)] == ["missing"] * 3
    # a holder that died holding the claim left its record: not running
    ended = subprocess.Popen(["true"])
    ended.wait()
    paths.claim("s", 2, "id2").write_text(json.dumps({**me, "pid": ended.pid}))
    assert [r.state for r in status.study_status(manifest, paths)] == ["missing"] * 3


def test_a_task_outliving_its_killed_run_local_keeps_its_claim(tmp_path):
    manifest = {"study": "s", "tasks": echo_study(tmp_path, n=1, command="sleep 60")}
    paths = Paths(tmp_path / "runs", tmp_path / "results", tmp_path / "logs")
    first = subprocess.Popen(
        [sys.executable, "-m", "sweepax.launch.local", "s"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    claim_file = tmp_path / paths.claim("s", 0, "id0")
    deadline = time.monotonic() + 60
    while "task_pid" not in (claim_file.read_text() if claim_file.exists() else ""):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    task_pid = json.loads(claim_file.read_text())["task_pid"]
    first.kill()
    first.wait()
    try:
        rows = status.study_status(manifest, paths)
        assert rows[0].state == "running" and f"pid {first.pid}," in rows[0].last_line
        second = run(tmp_path, "sweepax.launch.local", "s")
        assert second.returncode == 0
        assert "skipping s[0] id0: another run_local holds it" in " ".join(second.stdout.split())
    finally:
        os.kill(task_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10  # the kernel drops the claim with its last holder
    while not isinstance(records.claim(claim_file, {}), records.Claim):
        assert time.monotonic() < deadline, "the claim outlived its task"
        time.sleep(0.1)


def test_every_run_keeps_its_own_log_and_the_stable_name_follows_the_newest(tmp_path):
    echo_study(tmp_path, n=1, command="echo run $RANDOM$RANDOM")
    logs = tmp_path / "logs" / "s"
    logs.mkdir(parents=True)
    (logs / "0_id0.log").write_text("$ echo older\nolder sweepax log\n")  # a plain file
    for _ in range(2):
        proc = run(tmp_path, "sweepax.launch.local", "s", "--rerun")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = sorted(logs.glob("0_id0.*.log"))
    assert len(runs) == 3  # the older plain log, kept under a stamped name, and both runs
    texts = [p.read_text() for p in runs]
    assert texts[0] == "$ echo older\nolder sweepax log\n"
    assert all(t.startswith("$ echo run $RANDOM$RANDOM\n# run_local on ") for t in texts[1:])
    assert texts[1] != texts[2]
    assert (logs / "0_id0.log").is_symlink() and (logs / "0_id0.log").read_text() == texts[2]


def test_a_task_completed_meanwhile_is_not_started(tmp_path):
    paths = Paths(tmp_path / "runs", tmp_path / "results", tmp_path / "logs")
    job = local.Job("s", 0, "id0", "echo never", paths)
    tiny_store(paths.results("s"), "id0")
    assert not local.take(job)
    assert job.status == "skipped" and job.note.startswith("completed meanwhile: ")
    # the claim was released with it
    assert isinstance(records.claim(paths.claim("s", 0, "id0"), {}), records.Claim)


def test_a_task_whose_store_is_damaged_runs_again(tmp_path):
    echo_study(tmp_path, n=2)
    tiny_store(tmp_path / "results" / "s", "id1")
    damage(tiny_store(tmp_path / "results" / "s", "id0"))
    proc = run(tmp_path, "sweepax.launch.local", "s")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())
    assert "re-running s[0] id0: its store is damaged (" in out and "size" in out
    assert "skipping 1 task(s) with a complete result store" in out
    assert (tmp_path / "logs" / "s" / "0_id0.log").read_text().endswith("task 0\n")
    assert not (tmp_path / "logs" / "s" / "1_id1.log").exists()


def test_two_concurrent_runs_of_one_study_run_every_task_exactly_once(tmp_path, tiny_sweep):
    (tmp_path / "hyperparams").mkdir()
    # three tasks of one shape (a list of seeds makes tasks): with a warm compilation cache
    # only the first compiles
    sweep = tiny_sweep.replace('"hidden_size": [8, 16]', '"hidden_size": 8')
    sweep = sweep.replace('"seed": 3, "n_seeds": 2', '"seed": [3, 5, 7], "n_seeds": 2')
    sweep = sweep.replace('"total_steps": 1024', '"total_steps": 512')
    (tmp_path / "hyperparams" / "tiny3.py").write_text(sweep)
    assert run(tmp_path, "sweepax.sweep.write_jobs", "hyperparams/tiny3.py").returncode == 0
    command = [sys.executable, "-m", "sweepax.launch.local", "tiny3", "--parallel", "2"]
    procs = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "another run_local holds it" in " ".join(" ".join(outs).split())

    manifest = json.loads((tmp_path / "runs" / "tiny3.json").read_text())
    ids = sorted(t["task_id"] for t in manifest["tasks"])
    results = tmp_path / "results" / "tiny3"
    assert sorted(store.complete_stores(results)) == ids
    assert len(list(results.glob("*.zarr"))) == 3  # no task ran twice (a re-run writes beside)
    for t in manifest["tasks"]:
        runs = list((tmp_path / "logs" / "tiny3").glob(f"{t['index']}_{t['task_id']}.*.log"))
        assert len(runs) == 1, runs  # one run, one log, never shared
        text = runs[0].read_text()
        assert text.startswith(f"$ {t['command']}\n# run_local on ")
        assert text.count("\n$ ") == 0 and text.count("wrote results/tiny3/") == 1


RESUMABLE = """
hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{
        "env": "tmaze_5", "hidden_size": 8, "total_steps": 16384, "num_steps": 32,
        "num_envs": 4, "eval_steps": 32, "seed": 3, "n_seeds": 2,
    }],
}
"""


def test_ctrl_c_checkpoints_running_tasks_and_the_next_run_resumes_them(tmp_path):
    (tmp_path / "hyperparams").mkdir()
    (tmp_path / "hyperparams" / "long.py").write_text(RESUMABLE)
    env = {**os.environ, "SWEEPAX_CHECKPOINT_EVERY": "0"}
    first = subprocess.Popen(
        [sys.executable, "-m", "sweepax.launch.local", "hyperparams/long.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    logs = tmp_path / "logs" / "long"
    deadline = time.monotonic() + 300
    while "checkpoint update-" not in "".join(p.read_text() for p in logs.glob("0_*.*.log")):
        assert time.monotonic() < deadline and first.poll() is None, first.stdout.read()
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    out = first.communicate(timeout=120)[0]
    assert first.returncode == 130, out
    assert "interrupted: 1 running task(s) checkpoint and stop" in " ".join(out.split())
    (log,) = logs.glob("0_*.*.log")
    task_id = log.name.split("_", 1)[1].split(".")[0]
    stopped = [ln for ln in log.read_text().splitlines() if ln.startswith("stopped ")]
    assert len(stopped) == 1 and stopped[0].endswith(" on SIGINT: checkpoint saved; run the "
                                                     "task again to resume")  # fmt: skip
    update = stopped[0].split(" at update ")[1].split()[0]
    assert not store.complete_stores(tmp_path / "results" / "long")

    second = subprocess.run(
        [sys.executable, "-m", "sweepax.launch.local", "long"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    newest = (logs / f"0_{task_id}.log").read_text()
    assert f"resumed {task_id} at update {update}\n" in newest
    assert list(store.complete_stores(tmp_path / "results" / "long")) == [task_id]
    assert not (tmp_path / "results" / "long" / ".checkpoints").exists()
