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
import hashlib
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
from sweepax.files import sha256_file, utc_now, utc_stamp, write_text
from sweepax.launch import records, status
from sweepax.launch.records import Paths

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = Path("launching") / "array.sbatch"
SITE = Path("launching") / "site.toml"
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default: array indices 0..1000
# USR1 this many seconds before the time limit: time to finish a chunk of updates and save (a
# chunk is 1/20 of a task's updates); SLURM may send it up to 60 s early
DEFAULT_SIGNAL_GRACE_S = 300
DEFAULT_MAX_REQUEUES = 3  # restarts after a warning signal (time limit), as submitit allows
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
    signal_grace: int = DEFAULT_SIGNAL_GRACE_S
    max_requeues: int = DEFAULT_MAX_REQUEUES

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
        for flag, value, low in (
            ("--signal-grace", self.signal_grace, 1),
            ("--max-requeues", self.max_requeues, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"{flag} {value!r}: must be a whole number of at least {low}")
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
    keys = ("partition", "account", "time", "mem", "cpus", "gpus", "max_parallel")
    for key in (*keys, "signal_grace", "max_requeues"):
        if getattr(args, key) is not None:
            setattr(opts, key, getattr(args, key))
    if args.image is not None:
        opts.image, opts.container = args.image, True
    if args.no_container:
        opts.image, opts.container = None, False
    opts.sbatch_args = [*opts.sbatch_args, *args.sbatch_arg]
    return opts.validate()


# --- MaxArraySize ------------------------------------------------------------------------------
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
    """Fill ``{{ name }}`` fields; a name with no value is an error, a value with no name is left
    out (a site's own template may leave out fields it does not need)."""
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
    paths: Paths = Paths(),
) -> str:
    """The sbatch script of one array of ``study``; every path is shell-quoted."""
    q = shlex.quote
    setup = [f"module load {q(m)}" for m in opts.modules] + list(opts.setup)
    moved_results = paths.results_dir != Paths().results_dir
    if moved_results and "results_dir" not in _PLACEHOLDER.findall(template):
        raise UserError(
            f"{TEMPLATE}: no {{{{ results_dir }}}} field, so tasks cannot write to "
            f"--results-dir {paths.results_dir}; add it as in sweepax's own template, "
            "or drop --results-dir"
        )
    fields = {
        "job_name": job_name or study,
        "study": study,
        "log_dir": log_dir(paths, study),
        "sbatch_directives": "\n".join(opts.directives()),
        "project": q(str(project)),
        "lines": q(lines),
        "lines_sha256": lines_sha256,
        "offset": str(offset),
        "image": q(opts.image) if opts.container and opts.image else "''",
        "gpu_check": "1" if (opts.n_gpus > 0 if gpu_check is None else gpu_check) else "0",
        "results_dir": q(str(paths.results_dir)) if moved_results else "''",
        "binds": "".join(f" --bind {q(b)}" for b in opts.binds),
        "setup": "\n".join(setup),
        "signal_grace": str(opts.signal_grace),
        "max_requeues": str(opts.max_requeues),
    }
    text = render(template, fields)
    return re.sub(r"\n{3,}", "\n\n", text)


def log_dir(paths: Paths, study: str) -> str:
    """The study's log folder as ``#SBATCH --output`` takes it (no quoting there)."""
    folder = str(paths.logs(study))
    if re.search(r"[\s%\\]", folder):
        raise UserError(
            f"--logs-dir {paths.logs_dir}: SLURM log paths (#SBATCH --output) cannot hold "
            "spaces, % or \\; choose a folder without them"
        )
    return folder


# --- planning and submitting ----------------------------------------------------------------------
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


@dataclasses.dataclass(frozen=True)
class Submission:
    """One planned sbatch call: its script and what it runs. Submitting it gives a record."""

    study: str
    kind: str  # "array" | "parse"
    offset: int
    array: str
    script: Path  # relative to the project
    text: str
    lines: str
    lines_sha256: str
    sbatch_args: tuple[str, ...] = ()
    dependency: str | None = None
    lines_text: str | None = None  # written to ``lines`` first (the parse job's own line)

    @property
    def command(self) -> list[str]:
        """The sbatch command line (the one place a dependency becomes a flag)."""
        dependency = [f"--dependency={self.dependency}"] if self.dependency else []
        array = f"--array={self.array}"
        return ["sbatch", "--parsable", *dependency, array, *self.sbatch_args, str(self.script)]

    def after(self, job_ids: tp.Sequence[str]) -> Submission:
        """The same call, started once every job of ``job_ids`` ended (whatever its outcome)."""
        return dataclasses.replace(self, dependency="afterany:" + ":".join(job_ids))

    def record(self, job_id: str, opts: Options, missing: bool) -> dict[str, tp.Any]:
        """What ``runs/<study>.submissions.json`` keeps of this call, once sbatch gave its id."""
        return {
            "job_id": job_id,
            "kind": self.kind,
            "array": self.array,
            "offset": self.offset,
            "n_tasks": len(records.expand(self.array)),
            "submitted_at": utc_now(),
            "missing": missing,
            "dependency": self.dependency,
            "options": opts.record(),
            "script": str(self.script),
            "command": self.command,
            "lines": self.lines,
            "lines_sha256": self.lines_sha256,
        }


@dataclasses.dataclass(frozen=True)
class Target:
    """Where and how one run of ``submit`` plans its sbatch calls."""

    project: Path
    paths: Paths
    opts: Options
    template: str
    max_array_size: int
    stamp: str


def plan_arrays(study: str, indices: tp.Sequence[int], target: Target) -> list[Submission]:
    """The sbatch calls for ``indices`` of ``study``: one per MaxArraySize part."""
    if not _STUDY.match(study):
        raise UserError(
            f"study name {study!r}: SLURM job names and log folders need letters, digits "
            "and _ . + - only; rename the study (study_name in the sweep file)"
        )
    paths, opts = target.paths, target.opts
    lines = paths.lines(study)
    if not (target.project / lines).is_file():
        raise UserError(
            f"{lines}: missing; plan the study first: nox -s write_jobs -- <sweep file>"
        )
    sha = sha256_file(target.project / lines)
    out = []
    for k, (offset, local) in enumerate(records.split(indices, target.max_array_size)):
        text = script_text(
            target.template,
            project=target.project,
            study=study,
            lines=str(lines),
            lines_sha256=sha,
            offset=offset,
            opts=opts,
            paths=paths,
        )
        out.append(
            Submission(
                study,
                "array",
                offset,
                records.array_spec(local, opts.max_parallel),
                paths.scripts(study) / f"{target.stamp}-{k}.sbatch",
                text,
                str(lines),
                sha,
                tuple(opts.sbatch_args),
            )
        )
    return out


def plan_parse(study: str, target: Target) -> Submission:
    """A one-task array that runs ``python -m sweepax.results.parse results/<study>``."""
    folder = target.paths.scripts(study)
    lines = folder / f"{target.stamp}-parse.txt"
    line = f"python -m sweepax.results.parse {shlex.quote(str(target.paths.results(study)))}\n"
    sha = hashlib.sha256(line.encode()).hexdigest()
    text = script_text(
        target.template,
        project=target.project,
        study=study,
        lines=str(lines),
        lines_sha256=sha,
        offset=0,
        opts=dataclasses.replace(target.opts, gpus=None, max_parallel=None),
        job_name=f"{study}-parse",
        gpu_check=False,
        paths=target.paths,
    )
    script = folder / f"{target.stamp}-parse.sbatch"
    args = tuple(target.opts.sbatch_args)
    return Submission(study, "parse", 0, "0", script, text, str(lines), sha, args, None, line)


def print_dry_run(subs: tp.Sequence[Submission], console: Console) -> None:
    """Each script and the sbatch line that would submit it."""
    for sub in subs:
        if sub.kind == "parse":
            sub = sub.after(["<ids of the arrays above>"])
        console.print(f"# {sub.script} ({sub.study}, {sub.kind}, offset {sub.offset})")
        console.print(sub.text, markup=False, highlight=False)
        console.print(f"$ {shlex.join(sub.command)}", markup=False, highlight=False)


def submit(
    subs: tp.Sequence[Submission], target: Target, *, missing: bool
) -> list[dict[str, tp.Any]]:
    """Write the scripts, call sbatch for each, return the records (not yet saved).

    A parse job waits for every array submitted before it (``afterany``).
    """
    done: list[dict[str, tp.Any]] = []
    for sub in subs:
        if sub.kind == "parse":
            sub = sub.after([r["job_id"] for r in done if r["kind"] == "array"])
        script = target.project / sub.script
        script.parent.mkdir(parents=True, exist_ok=True)
        if sub.lines_text is not None:
            write_text(target.project / sub.lines, sub.lines_text)
        write_text(script, sub.text)
        (target.project / target.paths.logs(sub.study)).mkdir(parents=True, exist_ok=True)
        done.append(sub.record(sbatch(sub.command, target.project), target.opts, missing))
    return done


# --- choosing studies and tasks -------------------------------------------------------------------
def missing_indices(
    manifest: dict, paths: Paths, *, force: bool = False
) -> tuple[list[int], list[int]]:
    """(indices with no complete store (none, or only damaged ones) and no live task, indices
    pending/running now).

    A task SLURM cannot be asked about may still be running: it is an error to resubmit it
    unless ``force``.
    """
    rows = status.study_status(manifest, paths)
    live = [r.index for r in rows if r.state in ("pending", "requeued", "running")]
    todo = [r.index for r in rows if r.state in status.RESUBMIT]
    unknown = [r for r in rows if r.state == "unknown"]
    if unknown and not force:
        raise UserError(
            f"{manifest['study']}: SLURM cannot tell the state of {len(unknown)} task(s) "
            f"({records.condense(r.index for r in unknown)}): {unknown[0].last_line}; "
            "resubmitting them could run them twice: retry when `squeue` answers, "
            "or add --force to resubmit them anyway"
        )
    return sorted(todo + [r.index for r in unknown]), live


def choose_studies(
    targets: tp.Sequence[str],
    paths: Paths,
    *,
    missing: bool,
    max_vmap: int | None,
    console: Console,
) -> list[dict[str, tp.Any]]:
    """Manifests to submit: the targets (sweep files planned first), else every planned study
    never submitted (with ``--missing``: every planned study)."""
    if targets:
        return records.plan_manifests(targets, paths, max_vmap)
    names = records.planned_studies(paths)
    if not missing:
        names = [n for n in names if not records.submitted(paths, n)]
    if names:
        console.print(f"about to submit: {', '.join(names)}")
    else:
        console.print(
            f"nothing to submit: every study under {paths.runs_dir}/ has a submission "
            "(`nox -s status`); `--missing` resubmits the tasks without a result"
        )
    return [records.load_manifest(paths, n) for n in names]


def choose_indices(
    manifest: dict, paths: Paths, *, missing: bool, force: bool, console: Console
) -> list[int]:
    """The task indices to submit: all, or with ``missing`` those without a result or live job
    (and, with ``force``, those SLURM cannot be asked about)."""
    study = manifest["study"]
    if not missing:
        if records.read_submissions(paths, study):
            console.print(
                f"note: {study} was submitted before; this submits all its tasks again "
                "(`--missing` submits only those without a result)"
            )
        return [t["index"] for t in manifest["tasks"]]
    todo, live = missing_indices(manifest, paths, force=force)
    if live:
        console.print(f"{study}: {len(live)} task(s) pending or running are left alone")
    if not todo:
        console.print(f"{study}: nothing missing (every task has a result or is queued)")
    return todo


def report(
    study: str, done: tp.Sequence[dict[str, tp.Any]], paths: Paths, console: Console
) -> None:
    """One line per job submitted, then where it is recorded."""
    for r in done:
        what = f"{r['n_tasks']} task(s), array {r['array']}, offset {r['offset']}"
        if r["kind"] == "parse":
            what = f"parse after {r['dependency']}"
        console.print(f"{study}: submitted job {r['job_id']} ({what})")
    console.print(f"{study}: recorded in {paths.submissions(study)}; logs: {paths.logs(study)}/")


def parse_args(argv: tp.Sequence[str] | None) -> argparse.Namespace:
    """The command line of ``nox -s submit``."""
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
    parser.add_argument(
        "--signal-grace",
        type=int,
        metavar="SECONDS",
        help="USR1 this long before the time limit: the task checkpoints, stops and is "
        f"requeued (default {DEFAULT_SIGNAL_GRACE_S})",
    )
    parser.add_argument(
        "--max-requeues",
        type=int,
        metavar="N",
        help=f"requeue a task at most N times on the warning signal (default "
        f"{DEFAULT_MAX_REQUEUES})",
    )
    parser.add_argument("--missing", action="store_true", help="only tasks with no complete result")
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --missing: also resubmit tasks whose SLURM state cannot be asked (they may "
        "still be running)",
    )
    parser.add_argument(
        "--parse", action="store_true", help="queue `parse` after the arrays (afterany)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print scripts and commands only")
    parser.add_argument("--site", type=Path, help=f"site defaults file (default {SITE} if present)")
    parser.add_argument(
        "--max-array-size", type=int, help="override the cluster's MaxArraySize (scontrol)"
    )
    parser.add_argument("--max-vmap", type=int, default=None, help="when planning: N configs/task")
    records.add_arguments(parser)
    return parser.parse_args(argv)


def resolve_image(opts: Options, project: Path, dry_run: bool) -> Options:
    """``opts`` with the image as an absolute path; a missing image is an error unless dry."""
    if not (opts.container and opts.image):
        return opts
    image = Path(opts.image).expanduser()
    image = image if image.is_absolute() else project / image
    if not image.is_file() and not dry_run:
        raise UserError(f"--image {image}: no such file; build it or fix the path")
    return dataclasses.replace(opts, image=str(image))


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Submit studies as SLURM job arrays."""
    args = parse_args(argv)
    if args.force and not args.missing:
        raise UserError("--force only applies to --missing (resubmit tasks of unknown state)")
    console = Console(soft_wrap=True)
    project = Path.cwd().resolve()
    paths = Paths.from_args(args)
    opts = resolve_image(make_options(args, load_site(args.site)), project, args.dry_run)
    if not args.dry_run:
        require_sbatch()
    manifests = choose_studies(
        args.targets, paths, missing=args.missing, max_vmap=args.max_vmap, console=console
    )
    if not manifests:
        return 0
    target = Target(
        project,
        paths,
        opts,
        template_path(project).read_text(),
        args.max_array_size or max_array_size(),
        utc_stamp(),
    )
    # every study's tasks are chosen (and refused) before anything is submitted
    chosen = {
        m["study"]: choose_indices(
            m, paths, missing=args.missing, force=args.force, console=console
        )
        for m in manifests
    }
    for study, indices in chosen.items():
        if not indices:
            continue
        subs = plan_arrays(study, indices, target)
        if args.parse:
            subs.append(plan_parse(study, target))
        if args.dry_run:
            print_dry_run(subs, console)
            continue
        done = submit(subs, target, missing=args.missing)
        records.append_submissions(paths, study, done)
        report(study, done, paths, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
