"""``nox -s submit``: one SLURM job array per study, through ``launching/array.sbatch``.

Array task ``i`` runs line ``i + offset + 1`` of ``runs/<study>.txt`` inside the Apptainer image
(``apptainer exec --nv --bind <project>:<project> <image>``) or, with ``--no-container``, with the
project's ``.venv`` first on PATH. A study with more tasks than the cluster's ``MaxArraySize``
allows is split into several arrays with index offsets. Every submission is recorded in
``runs/<study>.submissions.json`` (what ``nox -s status`` and ``--missing`` read).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import typing as tp
from pathlib import Path

from rich.console import Console

from sweepax.errors import UserError, cli

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = Path("launching") / "array.sbatch"
SITE = Path("launching") / "site.toml"
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default: array indices 0..1000
SBATCH_MISSING = "sbatch not found: run on a SLURM login node or use `nox -s run_local`"

_TIME = re.compile(r"^(\d+-\d{1,2}(:\d{2}){0,2}|\d+(:\d{2}){0,2}|infinite|unlimited|UNLIMITED)$")
_MEM = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9_.,+-]+$")
_GPUS = re.compile(r"^([A-Za-z0-9_.-]+:)?(\d+)$")
_STUDY = re.compile(r"^[A-Za-z0-9_.+-]+$")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclasses.dataclass
class Options:
    """What one submission asks of SLURM and how its tasks run."""

    partition: str | None = None
    account: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus: int | None = None
    gpus: str | None = None
    max_parallel: int | None = None
    image: str | None = None
    container: bool = True
    binds: list[str] = dataclasses.field(default_factory=list)
    modules: list[str] = dataclasses.field(default_factory=list)
    setup: list[str] = dataclasses.field(default_factory=list)
    sbatch_args: list[str] = dataclasses.field(default_factory=list)

    @property
    def n_gpus(self) -> int:
        match = _GPUS.match(self.gpus or "0")
        return int(match[2]) if match else 0

    def validate(self) -> Options:
        """Check every value; a bad one is a one-line ``UserError`` naming the option."""
        checks = (
            ("--partition", self.partition, _NAME),
            ("--account", self.account, _NAME),
            ("--time", self.time, _TIME),
            ("--mem", self.mem, _MEM),
            ("--gpus", self.gpus, _GPUS),
        )
        for flag, value, pattern in checks:
            if value is not None and not pattern.match(str(value)):
                hint = {
                    "--time": "minutes, MM:SS, HH:MM:SS, D-HH or D-HH:MM:SS",
                    "--mem": "a size such as 16G or 4000M",
                    "--gpus": "a count such as 1, or TYPE:COUNT such as a100:2",
                }.get(flag, "letters, digits and _ . , + - only")
                raise UserError(f"{flag} {value!r}: not a valid value; use {hint}")
        for flag, value in (("--cpus", self.cpus), ("--max-parallel", self.max_parallel)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"{flag} {value!r}: must be a whole number of at least 1")
        if self.container and not self.image:
            raise UserError(
                "no container image: give --image path/to/sweepax.sif, set `image` in "
                f"{SITE}, or run without a container (--no-container)"
            )
        for arg in self.sbatch_args:
            if not arg.startswith("-"):
                raise UserError(
                    f"--sbatch-arg {arg!r}: expected an sbatch option such as "
                    "--sbatch-arg=--qos=high (note the `=` after --sbatch-arg)"
                )
        return self

    def directives(self) -> list[str]:
        """The ``#SBATCH`` lines for the resources asked for."""
        pairs = (
            ("partition", self.partition),
            ("account", self.account),
            ("time", self.time),
            ("mem", self.mem),
            ("cpus-per-task", self.cpus),
            ("gpus", self.gpus),
        )
        return [f"#SBATCH --{key}={value}" for key, value in pairs if value is not None]

    def record(self) -> dict[str, tp.Any]:
        return dataclasses.asdict(self)


# --- site configuration ---------------------------------------------------------------------------
SITE_KEYS = {f.name for f in dataclasses.fields(Options)}


def load_site(path: Path | None) -> dict[str, tp.Any]:
    """The ``[slurm]`` table of the site file (``launching/site.toml`` when present)."""
    explicit = path is not None or "SWEEPAX_SITE" in os.environ
    path = Path(path or os.environ.get("SWEEPAX_SITE") or SITE)
    if not path.is_file():
        if explicit:
            raise UserError(f"{path}: site file not found (see launching/site.toml.example)")
        return {}
    try:
        table = tomllib.loads(path.read_text()).get("slurm", {})
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    for key in table:
        if key not in SITE_KEYS:
            raise UserError(
                f"{path}: unknown key {key!r} in [slurm]; "
                f"known keys: {', '.join(sorted(SITE_KEYS))}"
            )
    for key in ("binds", "modules", "setup", "sbatch_args"):
        if key in table and not (
            isinstance(table[key], list) and all(isinstance(v, str) for v in table[key])
        ):
            raise UserError(f"{path}: key {key!r}: expected a list of strings")
    if "gpus" in table:
        table["gpus"] = str(table["gpus"])
    return table


def make_options(args: argparse.Namespace, site: dict[str, tp.Any]) -> Options:
    """Site defaults, overridden by what the command line gives."""
    opts = Options(**site)
    for key in ("partition", "account", "time", "mem", "cpus", "gpus", "max_parallel"):
        if getattr(args, key) is not None:
            setattr(opts, key, getattr(args, key))
    if args.image is not None:
        opts.image, opts.container = args.image, True
    if args.no_container:
        opts.image, opts.container = None, False
    opts.sbatch_args = [*opts.sbatch_args, *args.sbatch_arg]
    return opts.validate()


# --- array specs and MaxArraySize -----------------------------------------------------------------
def condense(ids: tp.Iterable[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (sorted, duplicates dropped)."""
    ids = sorted(set(ids))
    runs: list[list[int]] = []
    for i in ids:
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


def split(indices: tp.Sequence[int], max_array_size: int) -> list[tuple[int, list[int]]]:
    """``[(offset, local indices)]``: every local index below ``max_array_size``."""
    if max_array_size < 1:
        raise UserError(f"MaxArraySize {max_array_size}: must be at least 1")
    parts: dict[int, list[int]] = {}
    for i in sorted(set(indices)):
        offset = (i // max_array_size) * max_array_size
        parts.setdefault(offset, []).append(i - offset)
    return sorted(parts.items())


def array_spec(local: tp.Sequence[int], max_parallel: int | None) -> str:
    return condense(local) + (f"%{max_parallel}" if max_parallel else "")


def parse_max_array_size(config: str) -> int | None:
    """``MaxArraySize`` from the text of ``scontrol show config``."""
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.MULTILINE)
    return int(match[1]) if match else None


def max_array_size(run: tp.Callable[..., subprocess.CompletedProcess] = subprocess.run) -> int:
    """The cluster's MaxArraySize (Slurm's default 1001 when scontrol cannot tell)."""
    try:
        proc = run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    return parse_max_array_size(proc.stdout) or DEFAULT_MAX_ARRAY_SIZE


# --- the script -----------------------------------------------------------------------------------
def template_path(project: Path) -> Path:
    """The project's ``launching/array.sbatch``, else the one shipped beside this package."""
    for root in (project, REPO):
        if (root / TEMPLATE).is_file():
            return root / TEMPLATE
    raise UserError(f"{TEMPLATE}: template not found in {project} or {REPO}")


def render(template: str, fields: tp.Mapping[str, str]) -> str:
    """Fill ``{{ name }}`` fields; an unknown or unused name is an error."""
    names = set(_PLACEHOLDER.findall(template))
    if names - set(fields):
        raise UserError(f"{TEMPLATE}: unknown template fields {sorted(names - set(fields))}")
    return _PLACEHOLDER.sub(lambda m: fields[m[1]], template)


def script_text(
    template: str,
    *,
    project: Path,
    study: str,
    lines: str,
    lines_sha256: str,
    offset: int,
    opts: Options,
    job_name: str | None = None,
    gpu_check: bool | None = None,
) -> str:
    """The sbatch script of one array of ``study``; every path is shell-quoted."""
    q = shlex.quote
    setup = [f"module load {q(m)}" for m in opts.modules] + list(opts.setup)
    fields = {
        "job_name": job_name or study,
        "study": study,
        "log_dir": f"logs/{study}",
        "sbatch_directives": "\n".join(opts.directives()),
        "project": q(str(project)),
        "lines": q(lines),
        "lines_sha256": lines_sha256,
        "offset": str(offset),
        "image": q(opts.image) if opts.container and opts.image else "''",
        "gpu_check": "1" if (opts.n_gpus > 0 if gpu_check is None else gpu_check) else "0",
        "binds": "".join(f" --bind {q(b)}" for b in opts.binds),
        "setup": "\n".join(setup),
    }
    text = render(template, fields)
    return re.sub(r"\n{3,}", "\n\n", text)


# --- submitting -----------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def submissions_path(runs_dir: Path, study: str) -> Path:
    return runs_dir / f"{study}.submissions.json"


def read_submissions(runs_dir: Path, study: str) -> list[dict[str, tp.Any]]:
    path = submissions_path(runs_dir, study)
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not valid JSON; fix or delete it") from None


def append_submissions(runs_dir: Path, study: str, records: tp.Sequence[dict]) -> None:
    """Add records to ``runs/<study>.submissions.json`` (written atomically)."""
    path = submissions_path(runs_dir, study)
    data = read_submissions(runs_dir, study) + list(records)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def require_sbatch() -> str:
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise UserError(SBATCH_MISSING)
    return sbatch


def sbatch(command: list[str], cwd: Path) -> str:
    """Run ``sbatch --parsable ...``; the job id."""
    require_sbatch()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        raise UserError(f"{shlex.join(command)} failed: {lines[-1] if lines else proc.returncode}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise UserError(f"sbatch printed {proc.stdout.strip()!r}, expected a job id")
    return job_id


@dataclasses.dataclass
class Submission:
    """One sbatch call: its script, command and (once submitted) job id."""

    study: str
    kind: str  # "array" | "parse"
    offset: int
    array: str
    script: Path  # relative to the project
    text: str
    command: list[str]
    lines: str
    lines_sha256: str
    job_id: str | None = None
    lines_text: str | None = None  # written to ``lines`` first (the parse job's own line)

    def record(self, opts: Options, missing: bool, dependency: str | None) -> dict[str, tp.Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "array": self.array,
            "offset": self.offset,
            "n_tasks": len(expand(self.array)),
            "submitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "missing": missing,
            "dependency": dependency,
            "options": opts.record(),
            "script": str(self.script),
            "command": self.command,
            "lines": self.lines,
            "lines_sha256": self.lines_sha256,
        }


def plan_submissions(
    study: str,
    indices: tp.Sequence[int],
    opts: Options,
    *,
    project: Path,
    runs_dir: Path,
    max_size: int,
    template: str,
    stamp: str,
) -> list[Submission]:
    """The sbatch calls for ``indices`` of ``study``: one per MaxArraySize part."""
    if not _STUDY.match(study):
        raise UserError(
            f"study name {study!r}: SLURM job names and log folders need letters, digits "
            "and _ . + - only; rename the study (study_name in the sweep file)"
        )
    lines = runs_dir / f"{study}.txt"
    if not (project / lines).is_file():
        raise UserError(
            f"{lines}: missing; plan the study first: nox -s write_jobs -- <sweep file>"
        )
    sha = sha256_file(project / lines)
    parts = split(indices, max_size)
    out = []
    for k, (offset, local) in enumerate(parts):
        spec = array_spec(local, opts.max_parallel)
        script = runs_dir / f"{study}.slurm" / f"{stamp}-{k}.sbatch"
        text = script_text(
            template,
            project=project,
            study=study,
            lines=str(lines),
            lines_sha256=sha,
            offset=offset,
            opts=opts,
        )
        command = ["sbatch", "--parsable", f"--array={spec}", *opts.sbatch_args, str(script)]
        out.append(Submission(study, "array", offset, spec, script, text, command, str(lines), sha))
    return out


def plan_parse(
    study: str,
    opts: Options,
    *,
    project: Path,
    runs_dir: Path,
    results_dir: Path,
    template: str,
    stamp: str,
) -> Submission:
    """A one-task array that runs ``python -m sweepax.results.parse results/<study>``."""
    folder = runs_dir / f"{study}.slurm"
    lines = folder / f"{stamp}-parse.txt"
    line = f"python -m sweepax.results.parse {shlex.quote(str(results_dir / study))}\n"
    sha = hashlib.sha256(line.encode()).hexdigest()
    parse_opts = dataclasses.replace(opts, gpus=None, max_parallel=None)
    text = script_text(
        template,
        project=project,
        study=study,
        lines=str(lines),
        lines_sha256=sha,
        offset=0,
        opts=parse_opts,
        job_name=f"{study}-parse",
        gpu_check=False,
    )
    script = folder / f"{stamp}-parse.sbatch"
    command = ["sbatch", "--parsable", "--array=0", *opts.sbatch_args, str(script)]
    return Submission(study, "parse", 0, "0", script, text, command, str(lines), sha, None, line)


def submit(
    subs: tp.Sequence[Submission],
    project: Path,
    opts: Options,
    *,
    missing: bool,
    dependency: str | None = None,
) -> list[dict[str, tp.Any]]:
    """Write the scripts, call sbatch for each, return the records (not yet saved)."""
    records = []
    for sub in subs:
        path = project / sub.script
        path.parent.mkdir(parents=True, exist_ok=True)
        if sub.lines_text is not None:
            (project / sub.lines).write_text(sub.lines_text)
        path.write_text(sub.text)
        (project / "logs" / sub.study).mkdir(parents=True, exist_ok=True)
        command = list(sub.command)
        if dependency:
            command.insert(2, f"--dependency={dependency}")
        sub.command = command
        sub.job_id = sbatch(command, project)
        records.append(sub.record(opts, missing, dependency))
    return records


# --- choosing studies and tasks -------------------------------------------------------------------
def planned_studies(runs_dir: Path) -> list[str]:
    """Every study with a manifest under ``runs/``."""
    return sorted(
        p.name.removesuffix(".json")
        for p in runs_dir.glob("*.json")
        if not p.name.endswith(".submissions.json")
    )


def submitted(runs_dir: Path, study: str) -> bool:
    """Has the study a recorded array submission (live or finished)?"""
    return any(r.get("kind", "array") == "array" for r in read_submissions(runs_dir, study))


def missing_indices(
    manifest: dict, runs_dir: Path, results_dir: Path
) -> tuple[list[int], list[int]]:
    """(indices with no complete store and no live task, indices pending/running now)."""
    from sweepax.launch import status

    rows = status.study_status(manifest, runs_dir, results_dir, Path("logs"))
    live = [r.index for r in rows if r.state in ("pending", "running")]
    todo = [r.index for r in rows if r.state in ("failed", "missing")]
    return todo, live


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Submit studies as SLURM job arrays."""
    parser = argparse.ArgumentParser(
        prog="nox -s submit --",
        description="Submit each study as ONE SLURM job array (split only above MaxArraySize). "
        "Without targets: every study under runs/ that was never submitted.",
    )
    parser.add_argument("targets", nargs="*", help="sweep files, folders of them, or study names")
    parser.add_argument("--partition", help="SLURM partition")
    parser.add_argument("--account", help="SLURM account")
    parser.add_argument("--time", help="time limit per task (e.g. 12:00:00)")
    parser.add_argument("--mem", help="memory per task (e.g. 16G)")
    parser.add_argument("--cpus", type=int, help="CPUs per task")
    parser.add_argument(
        "--gpus", help="GPUs per task (count or TYPE:COUNT); JAX is checked to see one"
    )
    parser.add_argument(
        "--max-parallel", type=int, help="at most K tasks of an array at once (%%K)"
    )
    container = parser.add_mutually_exclusive_group()
    container.add_argument("--image", help="Apptainer image (.sif) the tasks run in")
    container.add_argument(
        "--no-container", action="store_true", help="run tasks directly (the project's .venv)"
    )
    parser.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="OPT",
        help="extra sbatch option, e.g. --sbatch-arg=--qos=high (repeatable)",
    )
    parser.add_argument("--missing", action="store_true", help="only tasks with no complete result")
    parser.add_argument(
        "--parse", action="store_true", help="queue `parse` after the arrays (afterany)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print scripts and commands only")
    parser.add_argument("--site", type=Path, help=f"site defaults file (default {SITE} if present)")
    parser.add_argument(
        "--max-array-size", type=int, help="override the cluster's MaxArraySize (scontrol)"
    )
    parser.add_argument("--max-vmap", type=int, default=None, help="when planning: N configs/task")
    args = parser.parse_args(argv)

    from sweepax.launch.local import load_manifests

    console = Console(soft_wrap=True)
    project = Path.cwd().resolve()
    runs_dir, results_dir = Path("runs"), Path("results")
    opts = make_options(args, load_site(args.site))
    if opts.container and opts.image:
        image = Path(opts.image).expanduser()
        opts.image = str(image if image.is_absolute() else project / image)
        if not Path(opts.image).is_file() and not args.dry_run:
            raise UserError(f"--image {opts.image}: no such file; build it or fix the path")
    if not args.dry_run:
        require_sbatch()

    if args.targets:
        manifests = load_manifests(args.targets, runs_dir, args.max_vmap)
    else:
        names = planned_studies(runs_dir)
        if not args.missing:
            names = [n for n in names if not submitted(runs_dir, n)]
        if not names:
            console.print(
                "nothing to submit: every study under runs/ has a submission (`nox -s status`); "
                "`--missing` resubmits the tasks without a result"
            )
            return 0
        manifests = load_manifests(names, runs_dir, None)
        console.print(f"about to submit: {', '.join(names)}")

    max_size = args.max_array_size or max_array_size()
    template = template_path(project).read_text()
    stamp = utc_stamp()
    for manifest in manifests:
        study = manifest["study"]
        indices = [t["index"] for t in manifest["tasks"]]
        if args.missing:
            indices, live = missing_indices(manifest, runs_dir, results_dir)
            if live:
                console.print(f"{study}: {len(live)} task(s) pending or running are left alone")
            if not indices:
                console.print(f"{study}: nothing missing (every task has a result or is queued)")
                continue
        elif read_submissions(runs_dir, study):
            console.print(
                f"note: {study} was submitted before; this submits all its tasks again "
                "(`--missing` submits only those without a result)"
            )
        subs = plan_submissions(
            study,
            indices,
            opts,
            project=project,
            runs_dir=runs_dir,
            max_size=max_size,
            template=template,
            stamp=stamp,
        )
        parse = (
            plan_parse(
                study,
                opts,
                project=project,
                runs_dir=runs_dir,
                results_dir=results_dir,
                template=template,
                stamp=stamp,
            )
            if args.parse
            else None
        )
        if args.dry_run:
            for sub in subs + ([parse] if parse else []):
                console.print(f"# {sub.script} ({study}, {sub.kind}, offset {sub.offset})")
                console.print(sub.text, markup=False, highlight=False)
                command = list(sub.command)
                if sub.kind == "parse":
                    command.insert(2, "--dependency=afterany:<ids of the arrays above>")
                console.print(f"$ {shlex.join(command)}", markup=False, highlight=False)
            continue
        records = submit(subs, project, opts, missing=args.missing)
        if parse is not None:
            deps = "afterany:" + ":".join(r["job_id"] for r in records)
            records += submit([parse], project, opts, missing=args.missing, dependency=deps)
        append_submissions(runs_dir, study, records)
        for r in records:
            what = f"{r['n_tasks']} task(s), array {r['array']}, offset {r['offset']}"
            if r["kind"] == "parse":
                what = f"parse after {r['dependency']}"
            console.print(f"{study}: submitted job {r['job_id']} ({what})")
        console.print(
            f"{study}: recorded in {submissions_path(runs_dir, study)}; logs: logs/{study}/"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
