"""The array script's signal handling, run by bash outside SLURM: USR1 (the time limit's warning)
has the task checkpoint and stop, then requeues exactly that array task, at most
``max_requeues`` times; TERM (preemption, scancel) stops the task without requeueing it.
The same paths on a real cluster: ``test_slurm_requeue.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sweepax.files import sha256_file
from sweepax.launch import slurm

# a task that, like `python -m sweepax.train`, exits 75 once asked to stop
TASK = """
stop() { echo "task: $1" >> task.log; exit 75; }
trap 'stop USR1' USR1
trap 'stop TERM' TERM
touch started
while :; do sleep 0.05; done
"""

SCONTROL = """#!/bin/bash
printf '%s\\n' "$*" >> "$SCONTROL_CALLS"
"""


def run_script(tmp_path: Path, sig: signal.Signals, restarts: int) -> subprocess.CompletedProcess:
    project = tmp_path / "project"
    (project / "runs").mkdir(parents=True)
    (project / "task.sh").write_text(TASK)
    (project / "runs" / "s.txt").write_text("echo other\nbash task.sh\n")
    text = slurm.script_text(
        (slurm.REPO / slurm.TEMPLATE).read_text(),
        project=project,
        study="s",
        lines="runs/s.txt",
        lines_sha256=sha256_file(project / "runs" / "s.txt"),
        offset=0,
        opts=slurm.Options(container=False, max_requeues=2),
    )
    script = tmp_path / "job.sh"
    script.write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(SCONTROL)
    (bin_dir / "scontrol").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_ARRAY_JOB_ID": "77",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_RESTART_COUNT": str(restarts),
        "SCONTROL_CALLS": str(tmp_path / "scontrol.calls"),
    }
    proc = subprocess.Popen(
        ["bash", str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (project / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert (project / "task.log").read_text() == f"task: {sig.name.removeprefix('SIG')}\n"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def scontrol_calls(tmp_path: Path) -> list[str]:
    calls = tmp_path / "scontrol.calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_warning_signal_checkpoints_then_requeues_exactly_this_array_task(tmp_path):
    proc = run_script(tmp_path, signal.SIGUSR1, restarts=1)
    assert proc.returncode == 0, proc.stderr
    assert scontrol_calls(tmp_path) == ["requeue 77_1"]
    assert "sweepax: requeueing 77_1 (restart 2 of at most 2)" in proc.stdout
    assert "sweepax: USR1 received at " in proc.stderr


def test_warning_signal_after_max_requeues_stops_without_requeueing(tmp_path):
    proc = run_script(tmp_path, signal.SIGUSR1, restarts=2)
    assert proc.returncode == 75 and scontrol_calls(tmp_path) == []
    assert proc.stderr.strip().splitlines()[-1] == (
        "sweepax: task checkpointed, but it was restarted 2 times already (at most 2); "
        "resubmit it to resume: nox -s submit -- s --missing"
    )


def test_term_stops_the_task_and_leaves_requeueing_to_slurm(tmp_path):
    proc = run_script(tmp_path, signal.SIGTERM, restarts=0)
    assert proc.returncode == 75 and scontrol_calls(tmp_path) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("signal_grace", 0, "--signal-grace 0: must be a whole number of at least 1"),
        ("max_requeues", -1, "--max-requeues -1: must be a whole number of at least 0"),
    ],
)
def test_bad_requeue_settings_are_one_line(field, value, message):
    with pytest.raises(slurm.UserError, match=message):
        slurm.Options(container=False, **{field: value}).validate()


def test_rendered_script_asks_for_the_signal_requeue_and_appended_logs():
    text = slurm.script_text(
        (slurm.REPO / slurm.TEMPLATE).read_text(),
        project=Path("/p"),
        study="s",
        lines="runs/s.txt",
        lines_sha256="0" * 64,
        offset=0,
        opts=slurm.Options(container=False, signal_grace=120, max_requeues=5),
    )
    directives = [ln for ln in text.splitlines() if ln.startswith("#SBATCH")]
    assert "#SBATCH --signal=B:USR1@120" in directives
    assert "#SBATCH --requeue" in directives and "#SBATCH --open-mode=append" in directives
    assert "MAX_REQUEUES=5" in text.splitlines()


# --- status of requeued and preempted tasks -------------------------------------------------------
def test_status_tells_requeued_and_preempted_from_failed_with_their_checkpoint(tmp_path):
    import numpy as np

    from sweepax import checkpoint
    from sweepax.launch import records, status
    from sweepax.launch.records import Paths

    paths = Paths(tmp_path / "runs", tmp_path / "results", tmp_path / "logs")
    tasks = [{"index": i, "task_id": f"id{i}", "command": f"echo {i}"} for i in range(4)]
    manifest = {"study": "s", "tasks": tasks}
    paths.runs_dir.mkdir()
    records.append_submissions(
        paths, "s", [{"job_id": "9", "kind": "array", "array": "0-3", "offset": 0}]
    )
    for task_id, update in (("id0", 14), ("id1", 7)):
        ckpt = checkpoint.Checkpoints(
            checkpoint.task_folder(paths.results("s"), task_id),
            every=0,
            fingerprint={},
            num_updates=128,
        )
        ckpt.segments = [checkpoint.segment_now(0)]
        ckpt.save(update, [np.zeros(3, np.float32)], [np.zeros((1, 1, update), np.float32)])

    def query(job_ids):
        states = {("9", 0): "PENDING", ("9", 1): "PREEMPTED", ("9", 2): "PENDING"}
        states[("9", 3)] = "TIMEOUT"
        return status.SlurmAnswer(states, {}, {("9", 0): 1, ("9", 1): 0, ("9", 2): 0})

    rows = status.study_status(manifest, paths, query)
    assert [r.state for r in rows] == ["requeued", "preempted", "pending", "failed"]
    assert [r.checkpoint for r in rows] == ["14/128", "7/128", None, None]
    assert rows[0].restarts == 1
    notes = status.study_notes("s", rows, paths)
    assert notes[0] == "requeued s[0] id0 job 9_0 (restarts: 1): checkpoint at update 14/128"
    preempted = "preempted s[1] id1 job 9_1 (restarts: 0): checkpoint at update 7/128  log: "
    assert notes[1].startswith(preempted)
    assert notes[-1].startswith("s: 2 task(s) without a result:")  # preempted + failed


def test_squeue_lines_give_restart_counts():
    from sweepax.launch import status

    text = "12|0|PENDING|2|\n12|1|RUNNING|0|\n13|N/A|PENDING|0|\n"
    assert status.parse_squeue(text) == {("12", 0): "PENDING", ("12", 1): "RUNNING"}
    assert status.parse_restarts(text) == {("12", 0): 2, ("12", 1): 0}
