"""SLURM submission without a cluster: the sbatch script (golden files, odd paths run for real by
bash), array splitting, scontrol/squeue/sacct parsing, submit/status with stand-in sbatch, squeue
and scontrol, sync (real rsync between folders) and the onager prelaunch (onager's local backend).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sweepax.files import sha256_file
from sweepax.launch import onager, records, slurm, status, sync
from sweepax.launch.records import Paths
from sweepax.results import store

from .conftest import damage, tiny_store

GOLDEN = Path(__file__).parent / "golden"
ODD_PROJECT = Path('/home/o\'neil/my "sweeps" $HOME')
ODD_IMAGE = "/images/sweepax 'v1'.sif"
VENV_BIN = str(Path(sys.executable).parent)


def check_golden(name: str, text: str) -> None:
    """Compare with ``golden/<name>``; write it when missing (delete it if a change is intended)."""
    path = GOLDEN / name
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), (
        f"rendered script differs from {path}; if the change is intended, delete that file and "
        "rerun the test to record the new one"
    )


def render(opts: slurm.Options, project: Path = ODD_PROJECT, offset: int = 0) -> str:
    template = (slurm.REPO / slurm.TEMPLATE).read_text()
    return slurm.script_text(
        template,
        project=project,
        study="tmaze_10_ppo",
        lines="runs/tmaze_10_ppo.txt",
        lines_sha256="0" * 64,
        offset=offset,
        opts=opts,
    )


CONTAINER = slurm.Options(
    partition="gpu",
    account="lab",
    time="12:00:00",
    mem="16G",
    cpus=4,
    gpus="1",
    max_parallel=8,
    image=ODD_IMAGE,
    binds=["/scratch dir", "/data:/data:ro"],
    modules=["apptainer/1.3.4"],
    setup=["export XLA_PYTHON_CLIENT_PREALLOCATE=false"],
)


def test_container_script_matches_golden_file_and_quotes_odd_paths():
    text = render(CONTAINER, offset=1000)
    check_golden("array_container.sbatch", text)
    assert "PROJECT='/home/o'\"'\"'neil/my \"sweeps\" $HOME'" in text
    assert "IMAGE='/images/sweepax '\"'\"'v1'\"'\"'.sif'" in text
    assert "--bind '/scratch dir' --bind /data:/data:ro" in text
    assert "#SBATCH --gpus=1" in text and "GPU_CHECK=1" in text and "OFFSET=1000" in text
    assert "module load apptainer/1.3.4" in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_no_container_script_matches_golden_file():
    text = render(slurm.Options(container=False, time="30"))
    check_golden("array_venv.sbatch", text)
    assert "IMAGE=''" in text and "GPU_CHECK=0" in text and "#SBATCH --gpus" not in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


STAND_IN = """#!/bin/bash
# stand-in for apptainer: record the call, drop `exec`, its options and the image, run the rest
printf '%s\\n' "$@" > "$STAND_IN_LOG"
[ "$1" = exec ] && shift
while [ $# -gt 0 ]; do
  case $1 in
    --bind|-B|--pwd|--env|--home) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift
exec "$@"
"""


def stand_in_apptainer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "apptainer"
    path.write_text(STAND_IN)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize("container", [True, False])
def test_rendered_script_runs_the_right_line_in_an_odd_project_dir(tmp_path, container):
    project = tmp_path / 'it\'s a "project" $dir'
    (project / "runs").mkdir(parents=True)
    image = project / "my image's.sif"
    image.write_text("not really an image")
    lines = "".join(f'echo task {i} > "out $SLURM_ARRAY_TASK_ID.txt"\n' for i in range(5))
    (project / "runs" / "s.txt").write_text(lines)
    opts = slurm.Options(image=str(image), container=container)
    text = slurm.script_text(
        (slurm.REPO / slurm.TEMPLATE).read_text(),
        project=project,
        study="s",
        lines="runs/s.txt",
        lines_sha256=sha256_file(project / "runs" / "s.txt"),
        offset=2,
        opts=opts,
    )
    script = tmp_path / "job.sh"
    script.write_text(text)
    stand_in_apptainer(tmp_path / "bin")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "SLURM_ARRAY_TASK_ID": "1",
        "SLURM_ARRAY_JOB_ID": "77",
        "STAND_IN_LOG": str(tmp_path / "apptainer.log"),
    }
    proc = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (project / "out 1.txt").read_text() == "task 3\n"  # line 1 + offset 2 (0-based)
    assert "sweepax: s task 3 (job 77_1)" in proc.stdout
    if container:
        call = (tmp_path / "apptainer.log").read_text().splitlines()
        assert call[:5] == ["exec", "--nv", "--bind", f"{project}:{project}", str(image)]
        assert call[5:7] == ["bash", "-c"]
    else:
        assert not (tmp_path / "apptainer.log").exists()

    (project / "runs" / "s.txt").write_text(lines + "echo extra\n")  # re-planned after submit
    proc = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "changed after this array was submitted" in proc.stderr


def test_moved_results_dir_reaches_the_task_command(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "s.txt").write_text("./show-args\n")
    (tmp_path / "show-args").write_text('#!/bin/bash\nprintf "%s|" "$@" > args.txt\n')
    (tmp_path / "show-args").chmod(0o755)
    text = slurm.script_text(
        (slurm.REPO / slurm.TEMPLATE).read_text(),
        project=tmp_path,
        study="s",
        lines="runs/s.txt",
        lines_sha256=sha256_file(tmp_path / "runs" / "s.txt"),
        offset=0,
        opts=slurm.Options(container=False),
        paths=Paths(results_dir=Path("/scratch/o'neil/my results")),
    )
    assert "RESULTS_DIR='/scratch/o'\"'\"'neil/my results'" in text
    proc = subprocess.run(
        ["bash", "-c", text],
        cwd=tmp_path,
        env={**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_JOB_ID": "5"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "args.txt").read_text() == "--results_dir|/scratch/o'neil/my results|"


def test_template_fields_unknown_is_an_error_unused_is_not():
    assert slurm.render("a {{ study }} b", {"study": "s", "offset": "3"}) == "a s b"
    with pytest.raises(slurm.UserError, match=r"unknown template fields \['nosuch'\]"):
        slurm.render("{{ nosuch }}", {"study": "s"})
    site_template = "#!/bin/bash\n#SBATCH --output={{ log_dir }}/%A_%a.out\n"
    with pytest.raises(slurm.UserError, match="no {{ results_dir }} field"):
        slurm.script_text(
            site_template,
            project=Path("/p"),
            study="s",
            lines="runs/s.txt",
            lines_sha256="0" * 64,
            offset=0,
            opts=slurm.Options(container=False),
            paths=Paths(results_dir=Path("elsewhere")),
        )


def test_a_dependency_is_rendered_into_the_command_and_plans_stay_as_planned():
    sub = slurm.Submission(
        "s", "parse", 0, "0", Path("runs/s.slurm/x.sbatch"), "", "l", "0", ("--qos=low",)
    )
    later = sub.after(["41", "42"])
    assert later.command == [
        "sbatch",
        "--parsable",
        "--dependency=afterany:41:42",
        "--array=0",
        "--qos=low",
        "runs/s.slurm/x.sbatch",
    ]
    assert sub.dependency is None and "--dependency" not in " ".join(sub.command)
    with pytest.raises(AttributeError):
        sub.dependency = "afterok:1"  # type: ignore[misc]


def test_gpu_check_fails_fast_when_jax_sees_no_gpu(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "s.txt").write_text("echo should-not-run\n")
    text = slurm.script_text(
        (slurm.REPO / slurm.TEMPLATE).read_text(),
        project=tmp_path,
        study="s",
        lines="runs/s.txt",
        lines_sha256=sha256_file(tmp_path / "runs" / "s.txt"),
        offset=0,
        opts=slurm.Options(container=False, gpus="1"),
    )
    (tmp_path / "job.sh").write_text(text)
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
        "SLURM_ARRAY_TASK_ID": "0",
        "SLURM_ARRAY_JOB_ID": "5",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(["bash", "job.sh"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "GPUs were requested but JAX sees none" in proc.stderr
    assert "should-not-run" not in proc.stdout


# --- array specs, MaxArraySize --------------------------------------------------------------------
def test_condense_expand_and_split():
    assert records.condense([9, 0, 1, 2, 5, 7, 8, 2]) == "0-2,5,7-9"
    assert records.expand("0-2,5,7-9%3") == [0, 1, 2, 5, 7, 8, 9]
    assert records.expand("0-6:3") == [0, 3, 6]
    assert records.split(range(5), 1001) == [(0, [0, 1, 2, 3, 4])]
    assert records.split(range(2500), 1001) == [
        (0, list(range(1001))),
        (1001, list(range(1001))),
        (2002, list(range(498))),
    ]
    assert records.split([3, 1005, 1999], 1000) == [(0, [3]), (1000, [5, 999])]
    assert records.array_spec(range(10), 4) == "0-9%4"


SCONTROL = """Configuration data as of 2026-11-24T10:00:00
AccountingStorageType   = accounting_storage/none
MaxArraySize            = 2
MaxJobCount             = 200000
"""


def test_max_array_size_from_scontrol_output():
    assert slurm.parse_max_array_size(SCONTROL) == 2
    fake = lambda *a, **k: subprocess.CompletedProcess(a, 0, SCONTROL, "")  # noqa: E731
    assert slurm.max_array_size(fake) == 2

    def missing(*a, **k):
        raise FileNotFoundError("scontrol")

    assert slurm.max_array_size(missing) == 1001  # Slurm's default


def test_squeue_and_sacct_parsing():
    text = "12|0|COMPLETED\n12|1|RUNNING\n12|3|PENDING\n13|N/A|PENDING\n"
    assert status.parse_squeue(text) == {
        ("12", 0): "COMPLETED",
        ("12", 1): "RUNNING",
        ("12", 3): "PENDING",
    }
    sacct = "12_0|COMPLETED\n12_1|CANCELLED by 0\n12_[4-6]|PENDING\n14|FAILED\n"
    assert status.parse_sacct(sacct) == {("12", 0): "COMPLETED", ("12", 1): "CANCELLED"}


# --- submit and status with stand-in sbatch / scontrol / squeue -----------------------------------
FAKE_BIN = {
    "sbatch": """#!/bin/bash
n=$(( $(cat "$FAKE_DIR/next" 2>/dev/null || echo 40) + 1 )); echo $n > "$FAKE_DIR/next"
printf '%s\\n' "$*" >> "$FAKE_DIR/sbatch.calls"
echo "$n"
""",
    "scontrol": """#!/bin/bash
[ "$1 $2" = "show config" ] && printf 'MaxArraySize            = %s\\n' "${FAKE_MAX:-1001}"
""",
    "squeue": """#!/bin/bash
cat "$FAKE_DIR/squeue.out" 2>/dev/null || true  # a cluster that knows none of the jobs
""",
    # as on a cluster without slurmdbd
    "sacct": """#!/bin/bash
echo "Slurm accounting storage is disabled" >&2; exit 1
""",
}
UNREACHABLE = """#!/bin/bash
echo "slurm_load_jobs error: Unable to contact slurm controller (connect failure)" >&2
exit 1
"""


@pytest.fixture
def fake_cluster(tmp_path, monkeypatch):
    """A project with a 3-task study in runs/, and stand-in sbatch/scontrol/squeue/sacct on PATH."""
    project = tmp_path / "proj ect"
    (project / "runs").mkdir(parents=True)
    tasks = [{"index": i, "task_id": f"id{i}", "command": f"echo {i}"} for i in range(3)]
    (project / "runs" / "s.json").write_text(json.dumps({"study": "s", "tasks": tasks}))
    (project / "runs" / "s.txt").write_text("".join(t["command"] + "\n" for t in tasks))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in FAKE_BIN.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    monkeypatch.delenv("SWEEPAX_SITE", raising=False)
    monkeypatch.chdir(project)
    return project


def sbatch_calls(project: Path) -> list[str]:
    return (project.parent / "sbatch.calls").read_text().splitlines()


def test_submit_splits_above_max_array_size_and_records_it(fake_cluster, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_MAX", "2")  # indices 0..1 per array
    assert slurm.main(["s", "--no-container", "--max-parallel", "4", "--time", "10"]) == 0
    calls = sbatch_calls(fake_cluster)
    assert len(calls) == 2
    assert calls[0].startswith("--parsable --array=0-1%4 runs/s.slurm/")
    assert calls[1].startswith("--parsable --array=0%4 runs/s.slurm/")
    records = json.loads((fake_cluster / "runs" / "s.submissions.json").read_text())
    assert [(r["job_id"], r["array"], r["offset"]) for r in records] == [
        ("41", "0-1%4", 0),
        ("42", "0%4", 2),
    ]
    assert records[0]["options"]["time"] == "10" and records[0]["options"]["container"] is False
    script = (fake_cluster / records[1]["script"]).read_text()
    assert "OFFSET=2" in script and "#SBATCH --time=10" in script
    assert "submitted job 41" in capsys.readouterr().out

    # bare submit: the study has a submission, so nothing is submitted again
    assert slurm.main(["--no-container"]) == 0
    assert len(sbatch_calls(fake_cluster)) == 2
    assert "nothing to submit" in capsys.readouterr().out


def test_bare_submit_names_what_it_submits(fake_cluster, capsys):
    assert slurm.main(["--no-container", "--parse"]) == 0
    out = capsys.readouterr().out
    assert "about to submit: s" in out
    calls = sbatch_calls(fake_cluster)
    assert calls[0].startswith("--parsable --array=0-2 ")
    assert calls[1].startswith("--parsable --dependency=afterany:41 --array=0 ")
    parse_lines = next((fake_cluster / "runs" / "s.slurm").glob("*-parse.txt")).read_text()
    assert parse_lines == "python -m sweepax.results.parse results/s\n"


def test_dry_run_prints_script_and_command_and_submits_nothing(fake_cluster, capsys):
    image = fake_cluster / "img.sif"
    image.write_text("x")
    assert slurm.main(["s", "--image", str(image), "--gpus", "1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --gpus=1" in out and "$ sbatch --parsable --array=0-2 runs/s.slurm/" in out
    assert f"IMAGE='{image}'" in out
    assert not (fake_cluster.parent / "sbatch.calls").exists()
    assert not (fake_cluster / "runs" / "s.submissions.json").exists()


def test_status_and_missing_resubmission(fake_cluster, monkeypatch, capsys):
    assert slurm.main(["s", "--no-container"]) == 0  # job 41, tasks 0-2
    logs = fake_cluster / "logs" / "s"
    (logs / "41_1.out").write_text("sweepax: s task 1\n")
    (logs / "41_1.err").write_text("Traceback ...\nValueError: boom\n")
    (fake_cluster.parent / "squeue.out").write_text("41|0|COMPLETED\n41|1|FAILED\n41|2|RUNNING\n")
    from sweepax.results import store

    monkeypatch.setattr(store, "complete_stores", lambda d: {"id0": d / "id0.zarr"})
    (fake_cluster / "results" / "s").mkdir(parents=True)
    rows = status.study_status(json.loads((fake_cluster / "runs" / "s.json").read_text()), Paths())
    assert [r.state for r in rows] == ["complete", "failed", "running"]
    assert rows[1].last_line == "ValueError: boom" and rows[1].err == "logs/s/41_1.err"
    assert status.main(["s"]) == 0
    out = capsys.readouterr().out
    assert "failed s[1] id1 job 41_1 (FAILED): ValueError: boom  log: logs/s/41_1.err" in out

    assert slurm.main(["s", "--missing", "--no-container"]) == 0  # task 2 is running: left alone
    assert sbatch_calls(fake_cluster)[-1].startswith("--parsable --array=1 ")
    out = capsys.readouterr().out
    assert "1 task(s) pending or running are left alone" in out

    # the resubmitted task 1 (job 42) is pending; task 2's array job aged out of squeue with a log
    (fake_cluster.parent / "squeue.out").write_text("42|1|PENDING\n")
    (logs / "41_2.err").write_text("slurmstepd: error: *** JOB 44 ON vm CANCELLED AT now ***\n")
    rows = status.study_status(json.loads((fake_cluster / "runs" / "s.json").read_text()), Paths())
    assert [(r.state, r.job) for r in rows] == [
        ("complete", "41_0"),
        ("pending", "42_1"),
        ("failed", "41_2"),
    ]
    assert "CANCELLED" in rows[2].last_line


def test_submit_plans_without_writing_or_submitting(fake_cluster, capsys):
    target = slurm.Target(
        fake_cluster,
        Paths(),
        slurm.Options(container=False, max_parallel=2, sbatch_args=["--qos=low"]),
        (slurm.REPO / slurm.TEMPLATE).read_text(),
        max_array_size=2,
        stamp="STAMP",
    )
    subs = [*slurm.plan_arrays("s", [0, 2], target), slurm.plan_parse("s", target)]
    assert [(s.kind, s.array, s.offset, str(s.script)) for s in subs] == [
        ("array", "0%2", 0, "runs/s.slurm/STAMP-0.sbatch"),
        ("array", "0%2", 2, "runs/s.slurm/STAMP-1.sbatch"),
        ("parse", "0", 0, "runs/s.slurm/STAMP-parse.sbatch"),
    ]
    assert "OFFSET=2" in subs[1].text and subs[2].lines_text.endswith("parse results/s\n")
    slurm.print_dry_run(subs, slurm.Console(soft_wrap=True))
    out = capsys.readouterr().out
    assert "$ sbatch --parsable --array=0%2 --qos=low runs/s.slurm/STAMP-1.sbatch" in out
    assert (
        "$ sbatch --parsable '--dependency=afterany:<ids of the arrays above>' --array=0 "
        "--qos=low runs/s.slurm/STAMP-parse.sbatch" in out
    )
    assert not (fake_cluster / "runs" / "s.slurm").exists()
    assert not (fake_cluster.parent / "sbatch.calls").exists()


NONE = dict.fromkeys(status.STATES, 0)


def table_counts(out: str, study: str = "s") -> dict[str, int]:
    """The state counts of ``study``'s row of the printed status table."""
    header = next(ln for ln in out.splitlines() if "complete" in ln).split()[1:-1:2]
    row = next(ln for ln in out.splitlines() if ln.startswith(f"│ {study} ")).split()[1:-1:2]
    assert header[:2] == ["study", "tasks"] and row[0] == study
    return {state: int(n) for state, n in zip(header[2:], row[2:], strict=True)}


def stand_in(project: Path, name: str, text: str) -> None:
    """Replace the fake cluster's stand-in ``name``."""
    (project.parent / "bin" / name).write_text(text)


def test_unreachable_slurm_makes_tasks_unknown_and_missing_refuses(
    fake_cluster, monkeypatch, capsys
):
    assert slurm.main(["s", "--no-container"]) == 0  # job 41, tasks 0-2
    (fake_cluster / "logs" / "s" / "41_1.out").write_text("sweepax: s task 1\nprogress: 3/20\n")
    from sweepax.results import store

    monkeypatch.setattr(store, "complete_stores", lambda d: {"id0": d / "id0.zarr"})
    (fake_cluster / "results" / "s").mkdir(parents=True)
    stand_in(fake_cluster, "squeue", UNREACHABLE)
    rows = status.study_status(json.loads((fake_cluster / "runs" / "s.json").read_text()), Paths())
    assert [r.state for r in rows] == ["complete", "unknown", "unknown"]
    assert rows[1].last_line == (
        "squeue failed: slurm_load_jobs error: Unable to contact slurm controller (connect failure)"
    )
    assert status.main(["s"]) == 0
    out = capsys.readouterr().out
    assert "failed s[" not in out and "without a result" not in out
    assert "warning: s: SLURM could not be asked about 2 task(s) (1-2): squeue failed:" in out
    assert table_counts(out) == {**NONE, "complete": 1, "unknown": 2}
    assert status.main(["s", "--json"]) == 0
    captured = capsys.readouterr()
    assert [r["state"] for r in json.loads(captured.out)["s"]] == ["complete", "unknown", "unknown"]
    assert "warning: s: SLURM could not be asked" in captured.err

    assert slurm.main(["s", "--missing", "--no-container"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "error: s: SLURM cannot tell the state of 2 task(s) (1-2): squeue failed:" in err
    assert "add --force to resubmit them anyway" in err
    assert len(sbatch_calls(fake_cluster)) == 1  # nothing resubmitted
    assert slurm.main(["s", "--force", "--no-container"]) == 2
    assert "--force only applies to --missing" in capsys.readouterr().err

    assert slurm.main(["s", "--missing", "--force", "--no-container"]) == 0
    assert sbatch_calls(fake_cluster)[-1].startswith("--parsable --array=1-2 ")


def test_sacct_failing_for_jobs_gone_from_squeue_makes_them_unknown(fake_cluster, capsys):
    assert slurm.main(["s", "--no-container"]) == 0  # job 41, tasks 0-2
    (fake_cluster / "logs" / "s" / "41_0.err").write_text("ValueError: boom\n")
    manifest = json.loads((fake_cluster / "runs" / "s.json").read_text())
    # squeue answers but no longer knows job 41; the cluster keeps no accounting: gone
    assert [r.state for r in status.study_status(manifest, Paths())] == [
        "failed",
        "missing",
        "missing",
    ]
    # accounting is kept but slurmdbd does not answer: SLURM cannot tell
    stand_in(fake_cluster, "sacct", UNREACHABLE.replace("slurm_load_jobs", "sacct"))
    rows = status.study_status(manifest, Paths())
    assert [r.state for r in rows] == ["unknown"] * 3
    assert "Unable to contact slurm controller" in rows[0].last_line
    # squeue says "Invalid job id" for one job it forgot: an answer, not a failure
    stand_in(
        fake_cluster,
        "squeue",
        '#!/bin/bash\necho "slurm_load_jobs error: Invalid job id specified" >&2; exit 1\n',
    )
    stand_in(fake_cluster, "sacct", FAKE_BIN["sacct"])
    assert [r.state for r in status.study_status(manifest, Paths())][0] == "failed"


def test_without_squeue_a_submitted_study_is_unknown_and_an_unsubmitted_one_runs_here(
    fake_cluster, monkeypatch, capsys
):
    (fake_cluster.parent / "bin" / "squeue").unlink()
    monkeypatch.setenv("PATH", str(fake_cluster.parent / "bin"))
    assert status.main(["s"]) == 0  # never submitted: not a SLURM study
    out = capsys.readouterr().out
    assert "s: 3 task(s) without a result: `nox -s run_local -- s` runs them here" in out
    assert "warning" not in out and "--missing" not in out

    assert slurm.main(["s", "--no-container"]) == 0
    capsys.readouterr()
    rows = status.study_status(json.loads((fake_cluster / "runs" / "s.json").read_text()), Paths())
    assert [r.state for r in rows] == ["unknown"] * 3
    assert rows[0].last_line.startswith("squeue not found on PATH")
    assert slurm.main(["s", "--missing", "--no-container"]) == 2
    assert "squeue not found on PATH" in capsys.readouterr().err


def test_status_names_damaged_stores_and_leftovers_and_missing_resubmits_them(fake_cluster, capsys):
    results = fake_cluster / "results" / "s"
    tiny_store(results, "id0")
    damaged = tiny_store(results, "id1")
    damage(damaged)
    finished = subprocess.Popen(["true"])  # a writer that has ended
    finished.wait()
    leftover = results / f".id2.zarr.tmp-{store.this_host()}-{finished.pid}"
    leftover.mkdir()
    rows = status.study_status(json.loads((fake_cluster / "runs" / "s.json").read_text()), Paths())
    assert [r.state for r in rows] == ["complete", "corrupt", "missing"]
    assert rows[1].last_line.startswith(f"{damaged.relative_to(fake_cluster)}: ")

    assert status.main(["s"]) == 0
    out = capsys.readouterr().out
    assert table_counts(out) == {**NONE, "complete": 1, "corrupt": 1, "missing": 1}
    assert f"corrupt s[1] id1: {damaged.relative_to(fake_cluster)}: " in out
    assert (
        f"leftover s: {leftover.relative_to(fake_cluster)} (temporary store: pid {finished.pid} "
        "on this host has ended); `nox -s clean -- s` removes it" in " ".join(out.split())
    )
    assert "s: 2 task(s) without a result: `nox -s run_local -- s` runs them here" in out

    assert slurm.main(["s", "--missing", "--no-container"]) == 0
    assert sbatch_calls(fake_cluster)[-1].startswith("--parsable --array=1-2 ")


def test_submit_and_status_use_moved_runs_results_and_logs_folders(fake_cluster, capsys):
    (fake_cluster / "runs").rename(fake_cluster / "plans")
    dirs = ["--runs-dir", "plans", "--results-dir", "out/res", "--logs-dir", "out/logs"]
    assert slurm.main(["s", "--no-container", "--parse", *dirs]) == 0
    recs = records.read_submissions(Paths(Path("plans")), "s")
    assert [(r["kind"], r["job_id"]) for r in recs] == [("array", "41"), ("parse", "42")]
    script = (fake_cluster / recs[0]["script"]).read_text()
    assert recs[0]["script"].startswith("plans/s.slurm/") and "LINES=plans/s.txt" in script
    assert "#SBATCH --output=out/logs/s/%A_%a.out" in script and "RESULTS_DIR=out/res" in script
    parse_line = (fake_cluster / recs[1]["lines"]).read_text()
    assert parse_line == "python -m sweepax.results.parse out/res/s\n"
    assert (fake_cluster / "out" / "logs" / "s").is_dir()
    assert "recorded in plans/s.submissions.json; logs: out/logs/s/" in capsys.readouterr().out

    (fake_cluster / "out" / "logs" / "s" / "41_1.err").write_text("ValueError: boom\n")
    (fake_cluster.parent / "squeue.out").write_text("41|0|RUNNING\n41|1|FAILED\n41|2|PENDING\n")
    assert status.main(["s", "--json", *dirs]) == 0
    rows = json.loads(capsys.readouterr().out)["s"]
    assert [r["state"] for r in rows] == ["running", "failed", "pending"]
    assert rows[1]["err"] == "out/logs/s/41_1.err" and rows[1]["last_line"] == "ValueError: boom"
    assert slurm.main(["s", "--no-container", "--missing", *dirs]) == 0
    assert sbatch_calls(fake_cluster)[-1].startswith("--parsable --array=1 plans/s.slurm/")


def test_a_logs_dir_that_sbatch_cannot_take_is_one_line(fake_cluster, capsys):
    assert slurm.main(["s", "--no-container", "--logs-dir", "my logs"]) == 2
    err = capsys.readouterr().err
    assert "error: --logs-dir my logs: SLURM log paths" in err and len(err.splitlines()) == 1
    assert not (fake_cluster.parent / "sbatch.calls").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch", "--no-container"], "error: nosuch: no such sweep file"),
        (["s", "--no-container", "--time", "1h"], "error: --time '1h': not a valid value"),
        (["s", "--no-container", "--mem", "lots"], "error: --mem 'lots': not a valid value"),
        (["s", "--no-container", "--cpus", "0"], "error: --cpus 0: must be"),
        (["s"], "error: no container image: give --image"),
        (["s", "--image", "missing.sif"], "missing.sif: no such file"),
        (["s", "--no-container", "--sbatch-arg", "qos"], "error: --sbatch-arg 'qos'"),
    ],
)
def test_bad_input_is_one_line(fake_cluster, capsys, args, message):
    assert slurm.main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_sbatch_missing_says_where_to_run(fake_cluster, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert slurm.main(["s", "--no-container"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {slurm.SBATCH_MISSING}"


def test_site_file_gives_defaults_and_the_command_line_wins(fake_cluster, capsys):
    site = fake_cluster / "launching" / "site.toml"
    site.parent.mkdir()
    site.write_text(
        textwrap.dedent("""
        [slurm]
        partition = "gpu"
        account = "lab"
        gpus = 1
        image = "img.sif"
        modules = ["apptainer/1.3"]
        sbatch_args = ["--qos=low"]
    """)
    )
    (fake_cluster / "img.sif").write_text("x")
    assert slurm.main(["s", "--partition", "debug", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --partition=debug" in out and "#SBATCH --account=lab" in out
    assert "module load apptainer/1.3" in out and f"IMAGE='{fake_cluster}/img.sif'" in out
    assert "--qos=low" in out and "#SBATCH --gpus=1" in out
    site.write_text("[slurm]\nqueue = 'x'\n")
    assert slurm.main(["s", "--dry-run"]) == 2
    assert "unknown key 'queue'" in capsys.readouterr().err


# --- sync -----------------------------------------------------------------------------------------
def test_rsync_command_filters():
    cmd = sync.rsync_command("cluster:my proj", Path("."), raw=False, dry_run=True)
    assert cmd[0] == "rsync" and "--dry-run" in cmd and cmd[-2:] == ["cluster:my proj/", "./"]
    assert "--include=/results/*/scores.zarr/***" in cmd and cmd[-3] == "--exclude=*"
    assert "--include=/results/*/*.zarr/***" not in cmd
    assert "--include=/results/*/*.zarr/***" in sync.rsync_command(
        "h:p", Path("x"), raw=True, dry_run=False
    )


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync not installed")
def test_sync_copies_parsed_results_and_raw_stores_only_with_raw(tmp_path):
    src = tmp_path / "cluster project"
    files = [
        "runs/s.json",
        "runs/s.txt",
        "runs/s.submissions.json",
        "results/s/scores.zarr/zarr.json",
        "results/s/scores.zarr/episode_return/c/0/0",
        "results/s/best_auc.json",
        "results/s/best_auc.png",
        "results/best_auc.png",
        "results/s/parsed_hparam_scores.pkl",
        "results/s/parsed_hparam_scores_discounted.pkl",
        "results/s/abc.zarr/zarr.json",
        "results/s/.abc.zarr.tmp-9/zarr.json",
        "logs/s/1_0.out",
        "hyperparams/s.py",
    ]
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_text(f)
    dest = tmp_path / "here"
    dest.mkdir()
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "sweepax.launch.sync", str(src), *a],
        cwd=dest,
        capture_output=True,
        text=True,
    )
    got = lambda: sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())  # noqa: E731
    assert run("--dry-run").returncode == 0 and got() == []
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert got() == sorted(files[:10])
    assert run("--raw").returncode == 0
    assert got() == sorted(files[:11])  # never the half-written store, logs or sweep files


# --- onager ---------------------------------------------------------------------------------------


def test_onager_prelaunch_runs_the_same_tasks_with_onagers_local_backend(tmp_path, tiny_sweep):
    (tmp_path / "hyperparams").mkdir()
    (tmp_path / "hyperparams" / "tiny.py").write_text(tiny_sweep)
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.sweep.write_jobs", "hyperparams/tiny.py", "--onager"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "runs" / "tiny.json").read_text())
    jobs = json.loads(onager.jobfile("tiny", tmp_path).read_text())
    assert {int(k): v[0] for k, v in jobs.items()} == {
        t["index"] + 1: t["command"] for t in manifest["tasks"]
    }
    assert "onager launch --backend slurm --jobname tiny" in proc.stdout

    launch = subprocess.run(
        [
            f"{VENV_BIN}/onager",
            "launch",
            "--backend",
            "local",
            "--jobname",
            "tiny",
            "--max-tasks",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert launch.returncode == 0, launch.stdout + launch.stderr
    from sweepax.results import store

    ids = sorted(t["task_id"] for t in manifest["tasks"])
    assert sorted(store.complete_stores(tmp_path / "results" / "tiny")) == ids
