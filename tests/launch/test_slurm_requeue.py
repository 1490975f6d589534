"""On a real SLURM cluster (``nox -s slurm_tests``): array tasks interrupted after their first
checkpoint, by ``scontrol requeue <job>_<task>``, by their warning signal (``scancel
--signal=USR1 --batch``, which the batch shell turns into checkpoint, stop and ``scontrol
requeue``) and by preemption (a job of a higher-tier partition; ``PreemptMode=REQUEUE``), resume
from their checkpoint, say so in their logs, and end with stores bit-identical to uninterrupted
runs of the same lines here; ``status`` shows them requeued (with their last checkpointed
update), then complete."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

import pytest
import xarray as xr

from sweepax.launch import records
from sweepax.launch.records import Paths
from sweepax.results import store

from .conftest import sweepax, task_states

pytestmark = pytest.mark.slurm  # skipped where no cluster answers (tests/launch/conftest.py)

# tasks (one per hidden size) of 256 updates in chunks of 13: checkpoints every chunk
SWEEP = """
hparams = {{
    "entry": "-m sweepax.train ppo",
    "args": [{{
        "env": "tmaze_5", "hidden_size": {hidden}, "total_steps": 32768, "num_steps": 32,
        "num_envs": 4, "eval_steps": 32, "seed": 3, "n_seeds": 2,
    }}],
}}
"""


def log_text(project: Path, job: str, stream: str, study: str = "resume") -> str:
    path = project / "logs" / study / f"{job}.{stream}"
    return path.read_text() if path.exists() else ""


def wait_until(what: str, check, timeout: float = 400, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def restarts_pending(job: str, task: int) -> bool:
    """Is array task ``job_task`` pending again after a restart?"""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-j", f"{job}_{task}", "-O", "State:|,RestartCnt:|"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return out.startswith("PENDING|") and out.split("|")[1] not in ("", "0")


def status_rows(project: Path, env: dict, study: str = "resume") -> list[dict]:
    out = sweepax(project, env, "launch.status", study, "--json").stdout
    return json.loads(out)[study]


def submit(
    tmp_path: Path, study: str, hidden: list[int], *options: str
) -> tuple[Path, dict, str, list[str]]:
    """Plan and submit the study: (project, environment, array job id, task ids)."""
    project = tmp_path / "project"
    (project / "hyperparams").mkdir(parents=True)
    (project / "hyperparams" / f"{study}.py").write_text(SWEEP.format(hidden=hidden))
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "SWEEPAX_CHECKPOINT_EVERY": "0",  # the tasks inherit it (sbatch --export=ALL)
    }
    env.pop("SWEEPAX_SITE", None)
    sweepax(project, env, "launch.slurm", f"hyperparams/{study}.py", "--no-container", *options)
    (rec,) = records.read_submissions(Paths(project / "runs"), study)
    manifest = json.loads((project / "runs" / f"{study}.json").read_text())
    return project, env, rec["job_id"], [t["task_id"] for t in manifest["tasks"]]


def hold_when_requeued(job: str, tasks: tp.Iterable[int]) -> None:
    """Wait until each task is pending again after a restart, and hold it there."""
    for task in tasks:
        wait_until(
            f"{job}_{task} requeued",
            lambda t=task: restarts_pending(job, t),
            timeout=180,
            every=0.1,
        )
        subprocess.run(["scontrol", "hold", f"{job}_{task}"], check=True)


def wait_complete(project: Path, study: str, job: str, n: int) -> None:
    def done() -> bool:
        states = task_states([job])
        return (
            all(states.get(f"{job}_{t}") == "COMPLETED" for t in range(n))
            and len(store.complete_stores(project / "results" / study)) == n
        )

    wait_until(f"{study}'s tasks complete", done)


def assert_resumed_once(project: Path, study: str, job: str, ids: list[str]) -> None:
    """Each task's log says it resumed, once; its log holds both starts (appended); its
    provenance has both segments; its checkpoints are gone."""
    for task, task_id in enumerate(ids):
        err = log_text(project, f"{job}_{task}", "err", study)
        resumed = [ln for ln in err.splitlines() if ln.startswith(f"resumed {task_id} at update ")]
        assert len(resumed) == 1 and resumed[0].endswith("/256"), err[-2000:]
        starts = log_text(project, f"{job}_{task}", "out", study).count(f"sweepax: {study} task")
        assert starts == 2
        attrs = store.read_attrs(store.complete_stores(project / "results" / study)[task_id])
        segments = attrs["provenance"]["segments"]
        assert [s["slurm_restart_count"] for s in segments] == [None, 1]
        assert segments[0]["slurm_job"] == segments[1]["slurm_job"] == f"{job}_{task}"
        assert segments[0]["end_update"] == segments[1]["start_update"]
    assert not (project / "results" / study / ".checkpoints").exists()


def assert_equal_to_runs_here(project: Path, env: dict, study: str, ids: list[str]) -> None:
    """The study's lines run here without interruption: every data variable bit-identical."""
    lines = (project / "runs" / f"{study}.txt").read_text().splitlines()
    for line, task_id in zip(lines, ids, strict=True):
        proc = subprocess.run(
            [*shlex.split(line), "--results_dir", "reference", "--checkpoint_every", "1e9"],
            cwd=project, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        cluster = store.complete_stores(project / "results" / study)[task_id]
        assert_bit_identical(cluster, project / "reference" / study / f"{task_id}.zarr")


def assert_bit_identical(a: Path, b: Path) -> None:
    with xr.open_zarr(a, consolidated=None) as x, xr.open_zarr(b, consolidated=None) as y:
        assert sorted(x.data_vars) == sorted(y.data_vars)
        for name in x.data_vars:
            assert x[name].values.tobytes() == y[name].values.tobytes(), f"{name} differs"


def test_requeued_and_signalled_array_tasks_resume_and_end_bit_identical(tmp_path):
    project, env, job, ids = submit(tmp_path, "resume", [8, 16])

    # 1. both tasks have checkpointed: requeue one, send the other its warning signal
    for task in (0, 1):
        wait_until(
            f"{job}_{task}'s first checkpoint",
            lambda t=task: "checkpoint update-" in log_text(project, f"{job}_{t}", "err"),
        )
    subprocess.run(["scontrol", "requeue", f"{job}_0"], check=True)
    subprocess.run(["scancel", "--signal=USR1", "--batch", f"{job}_1"], check=True)

    # 2. each goes back to the queue with one restart; held there, status shows it requeued
    hold_when_requeued(job, (0, 1))
    rows = status_rows(project, env)
    assert [(r["state"], r["restarts"]) for r in rows] == [("requeued", 1), ("requeued", 1)]
    assert all(r["checkpoint"] and r["checkpoint"].endswith("/256") for r in rows)
    table = sweepax(project, env, "launch.status", "resume").stdout
    assert f"requeued resume[1] {ids[1]} job {job}_1 (restarts: 1): checkpoint at update" in (
        " ".join(table.split())
    )
    subprocess.run(["scontrol", "release", f"{job}_0,{job}_1"], check=True)

    # 3. both finish from their checkpoints, bit-identical to uninterrupted runs
    wait_complete(project, "resume", job, 2)
    assert [r["state"] for r in status_rows(project, env)] == ["complete", "complete"]
    assert_resumed_once(project, "resume", job, ids)
    out1, err1 = log_text(project, f"{job}_1", "out"), log_text(project, f"{job}_1", "err")
    assert "on SIGUSR1: checkpoint saved" in err1 and "sweepax: USR1 received" in err1
    assert f"sweepax: requeueing {job}_1 (restart 1 of at most 3)" in out1
    assert_equal_to_runs_here(project, env, "resume", ids)


def partitions() -> set[str]:
    out = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout
    return set(out.split())


def test_a_preempted_task_is_requeued_by_slurm_and_resumes_bit_identical(tmp_path):
    if not {"low", "high"} <= partitions():  # asked here: collecting must not wait on sinfo
        pytest.skip("needs partitions low and high with preemption (start-local-slurm.sh)")
    project, env, job, ids = submit(tmp_path, "preempt", [8], "--partition", "low")
    wait_until(
        f"{job}_0's first checkpoint",
        lambda: "checkpoint update-" in log_text(project, f"{job}_0", "err", "preempt"),
    )
    cpus = subprocess.run(["sinfo", "-h", "-p", "high", "-o", "%c"], capture_output=True,
                          text=True).stdout.split()[0]  # fmt: skip
    urgent = subprocess.run(
        ["sbatch", "--parsable", "-p", "high", "-c", cpus, "-o", "/dev/null", "--wrap", "sleep 5"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    hold_when_requeued(job, (0,))
    (row,) = status_rows(project, env, "preempt")
    assert (row["state"], row["restarts"]) == ("requeued", 1)
    assert row["checkpoint"] and row["checkpoint"].endswith("/256")
    subprocess.run(["scontrol", "release", f"{job}_0"], check=True)
    wait_complete(project, "preempt", job, 1)
    assert task_states([urgent]).get(urgent) == "COMPLETED"
    assert [r["state"] for r in status_rows(project, env, "preempt")] == ["complete"]
    assert_resumed_once(project, "preempt", job, ids)
    assert_equal_to_runs_here(project, env, "preempt", ids)
