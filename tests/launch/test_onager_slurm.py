"""On a real SLURM cluster (``nox -s slurm_tests``): the original workflow's other launch path,
``write_jobs --onager`` then ``onager launch --backend slurm``, runs every task to a complete
store; an onager task requeued with ``scontrol requeue`` after its first checkpoint resumes from
it (the resume lives in ``python -m sweepax.train``, not in the batch script) and ends
bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sweepax.launch import onager
from sweepax.results import store

from .conftest import sweepax, task_states
from .test_slurm_requeue import SWEEP, assert_equal_to_runs_here, wait_until

pytestmark = pytest.mark.slurm  # skipped where no cluster answers (tests/launch/conftest.py)

STUDY = "onagered"


def onager_log(project: Path, job: str, task: int, stream: str) -> str:
    """onager's own log of array task ``job_task`` (``.onager/logs/slurm/<name>_<job>_<task>``)."""
    path = project / ".onager" / "logs" / "slurm" / f"{STUDY}_{job}_{task}.{stream}"
    return path.read_text() if path.exists() else ""


def test_onager_launch_on_slurm_runs_every_task_and_a_requeued_task_resumes(tmp_path):
    project = tmp_path / "project"
    (project / "hyperparams").mkdir(parents=True)
    (project / "hyperparams" / f"{STUDY}.py").write_text(SWEEP.format(hidden=[8, 16]))
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ["PATH"]]),
        "SWEEPAX_CHECKPOINT_EVERY": "0",  # sbatch exports the environment to the tasks
    }
    sweepax(project, env, "sweep.write_jobs", f"hyperparams/{STUDY}.py", "--onager")
    assert onager.jobfile(STUDY, project).exists()

    # onager's slurm backend submits to partition "debug" with --debug (else "batch")
    launch = subprocess.run(
        [f"{bin_dir}/onager", "launch", "--backend", "slurm", "--jobname", STUDY, "--debug",
         "--duration", "0-00:30:00", "--mem", "1", "--cpus", "1"],
        cwd=project, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert launch.returncode == 0, launch.stdout + launch.stderr
    jobs = subprocess.run(
        ["squeue", "-h", "-n", STUDY, "-o", "%F"], capture_output=True, text=True
    ).stdout.split()
    assert jobs, f"no job named {STUDY} in the queue:\n{launch.stdout}"
    job = jobs[0]

    # onager numbers tasks from 1 (task i + 1 = line i of runs/<study>.txt)
    wait_until(
        f"{job}_2's first checkpoint",
        lambda: "checkpoint update-" in onager_log(project, job, 2, "e"),
    )
    subprocess.run(["scontrol", "requeue", f"{job}_2"], check=True)

    def done() -> bool:
        states = task_states([job])
        return all(states.get(f"{job}_{t}") == "COMPLETED" for t in (1, 2)) and (
            len(store.complete_stores(project / "results" / STUDY)) == 2
        )

    wait_until(f"{STUDY}'s tasks complete", done)
    # onager's sbatch line has no --open-mode=append: the requeued task's log starts afresh
    manifest = json.loads((project / "runs" / f"{STUDY}.json").read_text())
    task_ids = [t["task_id"] for t in manifest["tasks"]]
    err = onager_log(project, job, 2, "e")
    resumed = [ln for ln in err.splitlines() if ln.startswith(f"resumed {task_ids[1]} at update ")]
    assert len(resumed) == 1 and resumed[0].endswith("/256"), err[-2000:]
    assert "resumed " not in onager_log(project, job, 1, "e")
    assert not (project / "results" / STUDY / ".checkpoints").exists()
    assert_equal_to_runs_here(project, env, STUDY, task_ids)
