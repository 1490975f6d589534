"""The project's record folders and what launching reads from and writes to them.

``runs/`` holds each study's plan (``<study>.txt`` lines, ``<study>.json`` manifest), its SLURM
submission records (``<study>.submissions.json``) and rendered scripts (``<study>.slurm/``);
``results/<study>/`` its task stores; ``logs/<study>/`` its task logs. ``Paths`` names every one
of them, so the three roots can be moved together (``--runs-dir/--results-dir/--logs-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import socket
import typing as tp
from pathlib import Path

from sweepax.errors import UserError
from sweepax.files import write_json
from sweepax.results.store import pid_alive
from sweepax.sweep import plan as planning
from sweepax.sweep.write_jobs import plan_targets


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where a project keeps plans, results and logs (relative to the project unless absolute)."""

    runs_dir: Path = Path("runs")
    results_dir: Path = Path("results")
    logs_dir: Path = Path("logs")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Paths:
        """The folders given by the options of ``add_arguments``."""
        return cls(args.runs_dir, args.results_dir, args.logs_dir)

    def lines(self, study: str) -> Path:
        """``runs/<study>.txt``: line i is the command of task i."""
        return self.runs_dir / f"{study}.txt"

    def manifest(self, study: str) -> Path:
        """``runs/<study>.json``: the study's plan."""
        return self.runs_dir / f"{study}.json"

    def submissions(self, study: str) -> Path:
        """``runs/<study>.submissions.json``: every sbatch call made for the study."""
        return self.runs_dir / f"{study}.submissions.json"

    def scripts(self, study: str) -> Path:
        """``runs/<study>.slurm/``: the rendered sbatch scripts."""
        return self.runs_dir / f"{study}.slurm"

    def results(self, study: str) -> Path:
        """``results/<study>/``: one store per task."""
        return self.results_dir / study

    def logs(self, study: str) -> Path:
        """``logs/<study>/``: the study's task logs."""
        return self.logs_dir / study

    def slurm_log(self, study: str, job_id: str, task: int, stream: str) -> Path:
        """``logs/<study>/<array job id>_<array task id>.<out|err>`` of one SLURM array task."""
        return self.logs(study) / f"{job_id}_{task}.{stream}"

    def run_log(self, study: str, index: int, task_id: str, stamp: str) -> Path:
        """``logs/<study>/<index>_<task_id>.<utc stamp>.log``: one local run of a task."""
        return self.logs(study) / f"{index}_{task_id}.{stamp}.log"

    def latest_log(self, study: str, index: int, task_id: str) -> Path:
        """``logs/<study>/<index>_<task_id>.log``: a link to the task's newest local run log."""
        return self.logs(study) / f"{index}_{task_id}.log"

    def claim(self, study: str, index: int, task_id: str) -> Path:
        """``logs/<study>/.locks/<index>_<task_id>.lock``: whoever locks it runs the task."""
        return self.logs(study) / ".locks" / f"{index}_{task_id}.lock"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--runs-dir --results-dir --logs-dir``, the same for every launching command."""
    defaults = Paths()
    parser.add_argument(
        "--runs-dir", type=Path, default=defaults.runs_dir, help="plans and submission records"
    )
    parser.add_argument(
        "--results-dir", type=Path, default=defaults.results_dir, help="task result stores"
    )
    parser.add_argument("--logs-dir", type=Path, default=defaults.logs_dir, help="task logs")


# --- manifests ------------------------------------------------------------------------------------
def planned_studies(paths: Paths) -> list[str]:
    """Every study with a manifest under ``runs/``."""
    return sorted(
        p.name.removesuffix(".json")
        for p in paths.runs_dir.glob("*.json")
        if not p.name.endswith(".submissions.json")
    )


def load_manifest(paths: Paths, study: str) -> dict[str, tp.Any]:
    """The manifest of a planned study, read from ``runs/<study>.json``."""
    path = paths.manifest(study)
    if not path.is_file():
        raise UserError(
            f"{study}: no such sweep file, folder or planned study ({path} is missing); "
            "give the sweep file or run `nox -s write_jobs -- <sweep file>` first"
        )
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not valid JSON; plan the study again (write_jobs)") from None


def _split_targets(targets: tp.Sequence[str]) -> tuple[list[str], list[str]]:
    """(sweep files and folders that exist, study names)."""
    paths = [t for t in targets if Path(t).exists()]
    return paths, [t for t in targets if not Path(t).exists()]


def plan_manifests(
    targets: tp.Sequence[str], paths: Paths, max_vmap: int | None, platform: str | None = None
) -> list[dict[str, tp.Any]]:
    """Manifests for targets: sweep files/folders are (re)planned into runs/ (for ``platform``
    when given), names read from it."""
    files, names = _split_targets(targets)
    manifests = []
    for p in plan_targets(files, max_vmap, platform=platform) if files else []:
        planning.write(p, paths.runs_dir)
        manifests.append(p.manifest())
    return manifests + [load_manifest(paths, name) for name in names]


def read_manifests(targets: tp.Sequence[str], paths: Paths) -> list[dict[str, tp.Any]]:
    """Manifests of the named studies (sweep files name theirs, never re-planned), else of all."""
    files, names = _split_targets(targets)
    if files:
        names += [p.study.name for p in plan_targets(files, None)]
    return [load_manifest(paths, name) for name in names or planned_studies(paths)]


# --- submission records ---------------------------------------------------------------------------
def read_submissions(paths: Paths, study: str) -> list[dict[str, tp.Any]]:
    """Every recorded sbatch call of the study, oldest first (none: an empty list)."""
    path = paths.submissions(study)
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not valid JSON; fix or delete it") from None


def append_submissions(paths: Paths, study: str, records: tp.Sequence[dict[str, tp.Any]]) -> None:
    """Add records to ``runs/<study>.submissions.json`` (written atomically)."""
    write_json(paths.submissions(study), read_submissions(paths, study) + list(records))


def submitted(paths: Paths, study: str) -> bool:
    """Has the study a recorded array submission (live or finished)?"""
    return any(r.get("kind", "array") == "array" for r in read_submissions(paths, study))


# --- array specs ----------------------------------------------------------------------------------
def condense(ids: tp.Iterable[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (sorted, duplicates dropped)."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def expand(spec: str) -> list[int]:
    """The indices of an array spec such as ``"0-9%4"``, ``"3,7-8"`` or ``"0-10:2"``."""
    out: list[int] = []
    for part in spec.split("%")[0].split(","):
        part, _, step = part.partition(":")
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1, int(step or 1)))
    return out


def split(indices: tp.Iterable[int], max_array_size: int) -> list[tuple[int, list[int]]]:
    """``[(offset, local indices)]``: every local index below ``max_array_size``."""
    if max_array_size < 1:
        raise UserError(f"MaxArraySize {max_array_size}: must be at least 1")
    parts: dict[int, list[int]] = {}
    for i in sorted(set(indices)):
        offset = (i // max_array_size) * max_array_size
        parts.setdefault(offset, []).append(i - offset)
    return sorted(parts.items())


def array_spec(local: tp.Iterable[int], max_parallel: int | None) -> str:
    """``condense(local)``, with ``%max_parallel`` when given."""
    return condense(local) + (f"%{max_parallel}" if max_parallel else "")


# --- claims on tasks ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Claim:
    """This process's exclusive claim on one task: an ``flock`` on its claim file.

    The kernel drops the lock when every process holding the descriptor has exited (give it to
    the task's process, ``pass_fds``, to keep the claim while the task runs), so a claim never
    outlives its holder. The file records the holder (host, pid, start time) while it is held.
    """

    path: Path
    fd: int

    def record(self, holder: tp.Mapping[str, tp.Any]) -> None:
        """Replace what the claim file says of its holder."""
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(dict(holder)).encode(), 0)

    def release(self) -> None:
        """Give the claim up, emptying its record first: a record left in a claim file belongs
        to a holder that still runs, or that died holding it."""
        os.ftruncate(self.fd, 0)
        os.close(self.fd)


def claim(path: Path, holder: tp.Mapping[str, tp.Any]) -> Claim | dict[str, tp.Any]:
    """Take the claim at ``path`` and record ``holder`` in it; if another process holds it,
    what that process recorded (``{}`` if it has not written it yet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            held = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
        except ValueError:
            held = {}
        os.close(fd)
        return held if isinstance(held, dict) else {}
    taken = Claim(path, fd)
    taken.record(holder)
    return taken


def running_here(path: Path) -> dict[str, tp.Any] | None:
    """The record of the claim at ``path`` if its holder (``pid``, or the task it started,
    ``task_pid``) is a live process on this host, else None. Only reads the file: it never takes
    the lock, so it cannot get in a run's way."""
    try:
        held = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError):
        return None
    if not isinstance(held, dict) or held.get("host") != socket.gethostname():
        return None
    pids = [held.get(key) for key in ("pid", "task_pid")]
    return held if any(isinstance(p, int) and pid_alive(p) for p in pids) else None


def describe_holder(held: tp.Mapping[str, tp.Any]) -> str:
    """``host vm, pid 123, since 2026-12-03T08:00:00+00:00`` (what is known of it)."""
    parts = [f"{key} {held[key]}" for key in ("host", "pid") if key in held]
    if "started" in held:
        parts.append(f"since {held['started']}")
    return ", ".join(parts) or "a process that has not recorded itself yet"


# --- logs -----------------------------------------------------------------------------------------
def last_line(log: Path, pattern: str = "") -> str:
    """The last non-empty line of a log (containing ``pattern``), for status displays."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 8192))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [ln.strip() for ln in lines if ln.strip() and pattern in ln]
    return lines[-1] if lines else ""
