"""On a real SLURM cluster (``nox -s slurm_tests`` starts a local one): submit tiny T-Maze studies
as job arrays (``--no-container``, and through a stand-in ``apptainer``), split above
MaxArraySize, kill a task, see ``status`` report it failed with its log, resubmit ``--missing``
with ``--parse``, and check every result store and the parsed tensor. Then stop the controller
while a study runs: ``status`` says unknown and ``--missing`` refuses until it is back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import xarray as xr

from sweepax.launch import records, slurm
from sweepax.launch.records import Paths
from sweepax.results import store

from .conftest import sweepax, task_states

pytestmark = pytest.mark.slurm  # skipped where no cluster answers (tests/launch/conftest.py)

SWEEP = """
from sweepax import vmap
hparams = {{
    "entry": "-m sweepax.train ppo",
    "args": [{{
        "env": "tmaze_5", "hidden_size": {hidden}, "lr": vmap([1e-3, 3e-3]),
        "total_steps": 512, "num_steps": 32, "num_envs": 4, "eval_steps": 32,
        "seed": 3, "n_seeds": 2,
    }}],
}}
"""

STAND_IN = """#!/bin/bash
# stand-in apptainer: record the call, drop `exec`, its options and the image, run the rest
printf '%s\\n' "$@" >> "$(dirname "$0")/calls.log"
[ "$1" = exec ] && shift
while [ $# -gt 0 ]; do
  case $1 in
    --bind|-B|--pwd|--env) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift
exec "$@"
"""


def job_ids(project: Path, study: str) -> list[str]:
    return [r["job_id"] for r in records.read_submissions(Paths(project / "runs"), study)]


def wait(ids: list[str], timeout: float = 240) -> dict[str, str]:
    """Until none of the jobs' tasks is pending or running; their final states."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = task_states(ids)
        if states and not any(
            s in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING") for s in states.values()
        ):
            return states
        time.sleep(1)
    subprocess.run(["scancel", *ids])
    pytest.fail(f"jobs {ids} still not finished after {timeout} s: {task_states(ids)}")


def status(project: Path, env: dict, study: str) -> list[dict]:
    return json.loads(sweepax(project, env, "launch.status", study, "--json").stdout)[study]


def test_array_jobs_on_a_real_cluster_kill_status_missing_and_parse(tmp_path):
    t0 = time.monotonic()
    project = tmp_path / "my proj'ect"
    (project / "hyperparams").mkdir(parents=True)
    (project / "hyperparams" / "direct.py").write_text(
        textwrap.dedent(SWEEP.format(hidden=[8, 16, 24]))
    )
    (project / "hyperparams" / "boxed.py").write_text(textwrap.dedent(SWEEP.format(hidden=[8, 16])))
    bin_dir = tmp_path / "stand-in bin"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text(STAND_IN)
    (bin_dir / "apptainer").chmod(0o755)
    image = project / "images" / 'sweepax "v1".sif'
    image.parent.mkdir()
    image.write_text("stand-in image")
    # tasks inherit this environment (sbatch --export=ALL): the venv's python, the stand-in
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
    }
    env.pop("SWEEPAX_SITE", None)
    # Tasks compile (no persistent cache): with cached programs a task can finish inside the
    # few seconds between "RUNNING" and the scancel below.
    env["SWEEPAX_JAX_CACHE"] = "off"

    # 1. plan + submit: 3 tasks directly, split in two arrays (MaxArraySize 2);
    # 2 tasks "in a container"
    out = sweepax(
        project,
        env,
        "launch.slurm",
        "hyperparams/direct.py",
        "--no-container",
        "--max-array-size",
        "2",
        "--time",
        "10:00",
    ).stdout
    assert "submitted job" in out
    sweepax(
        project, env, "launch.slurm", "hyperparams/boxed.py", "--image", str(image), "--gpus", "0"
    )
    direct = records.read_submissions(Paths(project / "runs"), "direct")
    assert [(r["array"], r["offset"]) for r in direct] == [("0-1", 0), ("0", 2)]
    first, second = job_ids(project, "direct")

    # 2. kill task 1 while it runs
    deadline = time.monotonic() + 60
    while task_states([first]).get(f"{first}_1") != "RUNNING":
        assert time.monotonic() < deadline, task_states([first])
        time.sleep(0.5)
    time.sleep(2)
    subprocess.run(["scancel", f"{first}_1"], check=True)
    states = wait(job_ids(project, "direct") + job_ids(project, "boxed"))
    assert states[f"{first}_1"] == "CANCELLED"
    assert states[f"{first}_0"] == states[f"{second}_0"] == "COMPLETED"
    t_first = time.monotonic() - t0

    # 3. every store of the stand-in study; the stand-in got: exec --nv --bind P:P IMAGE
    boxed = json.loads((project / "runs" / "boxed.json").read_text())
    assert sorted(store.complete_stores(project / "results" / "boxed")) == sorted(
        t["task_id"] for t in boxed["tasks"]
    )
    calls = (bin_dir / "calls.log").read_text().splitlines()
    assert calls[:5] == ["exec", "--nv", "--bind", f"{project}:{project}", str(image)]
    assert all(s == "complete" for s in (r["state"] for r in status(project, env, "boxed")))

    # 4. status: task 1 failed (cancelled) with its log; the others complete
    rows = status(project, env, "direct")
    assert [r["state"] for r in rows] == ["complete", "failed", "complete"]
    assert rows[1]["slurm_state"] == "CANCELLED" and rows[1]["err"] == f"logs/direct/{first}_1.err"
    assert "CANCELLED" in rows[1]["last_line"] and (project / rows[1]["err"]).is_file()
    table = sweepax(project, env, "launch.status", "direct").stdout
    assert "failed direct[1]" in table and f"logs/direct/{first}_1.err" in table

    # 5. resubmit exactly the missing task, with parse queued after it
    sweepax(project, env, "launch.slurm", "direct", "--missing", "--parse", "--no-container")
    recs = records.read_submissions(Paths(project / "runs"), "direct")[2:]
    assert [(r["kind"], r["array"]) for r in recs] == [("array", "1"), ("parse", "0")]
    assert recs[1]["dependency"] == f"afterany:{recs[0]['job_id']}"
    states = wait([r["job_id"] for r in recs])
    assert set(states.values()) == {"COMPLETED"}, states

    direct_manifest = json.loads((project / "runs" / "direct.json").read_text())
    ids = sorted(t["task_id"] for t in direct_manifest["tasks"])
    assert sorted(store.complete_stores(project / "results" / "direct")) == ids
    assert [r["state"] for r in status(project, env, "direct")] == ["complete"] * 3
    scores = xr.open_zarr(project / "results" / "direct" / "scores.zarr")
    assert list(scores["hidden_size"].values) == [8, 16, 24]
    task1 = direct_manifest["tasks"][1]["task_id"]
    attrs = store.read_attrs(store.complete_stores(project / "results" / "direct")[task1])
    assert f'"array_job_id": "{recs[0]["job_id"]}"' in json.dumps(attrs)  # provenance: SLURM ids

    # 6. bare submit: every planned study has a submission, so nothing goes out
    assert "nothing to submit" in sweepax(project, env, "launch.slurm", "--no-container").stdout
    print(f"\nslurm integration: first round {t_first:.0f} s, total {time.monotonic() - t0:.0f} s")


START = Path(__file__).resolve().parents[2] / "launching" / "start-local-slurm.sh"


def stop_controller() -> None:
    """Stop slurmctld by its pid file (running jobs stay with slurmd)."""
    pid = int(Path("/run/slurmctld.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, "slurmctld did not stop"
        time.sleep(0.2)


@pytest.mark.skipif(
    not Path("/run/slurmctld.pid").is_file() or os.geteuid() != 0,
    reason="needs the local cluster of launching/start-local-slurm.sh, as root",
)
def test_an_unreachable_controller_makes_tasks_unknown_and_missing_refuses(tmp_path):
    project = tmp_path / "proj"
    (project / "runs").mkdir(parents=True)
    tasks = [{"index": i, "task_id": f"sleep{i}", "command": "sleep 120"} for i in range(2)]
    (project / "runs" / "sleepy.json").write_text(json.dumps({"study": "sleepy", "tasks": tasks}))
    (project / "runs" / "sleepy.txt").write_text("sleep 120\n" * 2)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("SWEEPAX_SITE", None)
    sweepax(project, env, "launch.slurm", "sleepy", "--no-container")
    ids = job_ids(project, "sleepy")
    deadline = time.monotonic() + 60
    while set(task_states(ids).values()) != {"RUNNING"}:
        assert time.monotonic() < deadline, task_states(ids)
        time.sleep(0.5)

    stop_controller()
    try:
        rows = status(project, env, "sleepy")
        assert [r["state"] for r in rows] == ["unknown", "unknown"]
        assert "Unable to contact slurm controller" in rows[0]["last_line"]
        refused = subprocess.run(
            [sys.executable, "-m", "sweepax.launch.slurm", "sleepy", "--missing", "--no-container"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert "SLURM cannot tell the state of 2 task(s) (0-1)" in refused.stderr
        assert "--force" in refused.stderr
        assert len(job_ids(project, "sleepy")) == 1  # nothing submitted
    finally:  # the controller comes back on its saved state for the tests that follow
        subprocess.run(
            ["bash", str(START)], env={**os.environ, "SLURM_KEEP_STATE": "1"}, check=True
        )
    try:
        assert [r["state"] for r in status(project, env, "sleepy")] == ["running", "running"]
    finally:
        subprocess.run(["scancel", *ids])


def test_max_array_size_is_read_from_the_real_scontrol():
    size = slurm.max_array_size()
    conf = Path("/etc/slurm/slurm.conf")
    if conf.is_file() and "sweepax launching/start-local-slurm.sh" in conf.read_text():
        expected = int(os.environ.get("SLURM_MAX_ARRAY_SIZE", "100001"))
        assert size == expected
    assert size >= 1
