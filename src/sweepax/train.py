"""The program each job-array line runs: ``python -m sweepax.train <entry> [--hyperparameter ...]``.

It trains every (config, seed) of one task in ONE jitted program (vmap over seeds inside vmap over
configs) and writes ``<results_dir>/<study>/<task_id>.zarr`` atomically. Before anything compiles,
it refuses (one line, exit code 2) a study name that is not a plain name, a results folder it
cannot write (checked before JAX is imported), any value outside its declared range, and a disk
without room for the store, so bad input costs no compute.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import typing as tp  # noqa: E402
from pathlib import Path  # noqa: E402

from sweepax import entries, files, provenance  # noqa: E402
from sweepax.errors import UserError, cli  # noqa: E402
from sweepax.sweep import args as task_args  # noqa: E402

# Free space a task asks for before it compiles: its metrics x STORE_SAFETY + STORE_MARGIN bytes.
STORE_SAFETY = 2  # zarr chunks and compression headers, the coordinates, a re-run beside it
STORE_MARGIN = 16 << 20  # metadata and attributes, and room left for other writers


class Progress:
    """Prints ``progress: update u/U`` lines (once per update, whatever the vmap width)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.last = -1
        self.start = time.perf_counter()

    def __call__(self, done: tp.Any, num_updates: tp.Any) -> None:
        """``done`` updates of ``num_updates`` are complete."""
        done, num_updates = int(done), int(num_updates)
        if done <= self.last:
            return
        self.last = done
        elapsed = time.perf_counter() - self.start
        print(
            f"progress: task {self.task_id} update {done}/{num_updates} "
            f"({100 * done / num_updates:.0f}%) {elapsed:.1f}s",
            file=sys.stderr,
            flush=True,
        )


def _use_platform(platform: str | None) -> None:
    """Fail fast when a GPU was asked for and JAX sees none (instead of training on the CPU)."""
    import jax

    if platform is None:
        return
    backends = {d.platform for d in jax.devices()}
    wanted = {"gpu": {"gpu", "cuda", "rocm"}, "cpu": {"cpu"}}.get(platform)
    if wanted is None:
        raise UserError(f"--platform {platform!r}: use cpu or gpu")
    if not backends & wanted:
        raise UserError(
            f"--platform {platform}: JAX sees only {sorted(backends)} devices; run on a {platform} "
            "node (check the container's --nv and jax[cuda12]) or drop 'platform' from the "
            "sweep file"
        )


def _use_compilation_cache() -> dict[str, tp.Any]:
    """Switch on JAX's persistent compilation cache; its counters fill in during compilation.

    ``$SWEEPAX_JAX_CACHE`` names the folder (``off`` disables it); default
    ``$XDG_CACHE_HOME/sweepax/jax`` (``~/.cache/sweepax/jax``). Every task of a study with the same
    shapes compiles the same programs, so on a shared home or project folder only the first task
    compiles; the others load the executables (the key covers jax/jaxlib versions, device and
    XLA flags, so a different image or GPU compiles afresh). Its folder also holds sweepax's
    program cache (``program_cache_for``), which spares those tasks the tracing too.
    """
    import jax

    where = os.environ.get("SWEEPAX_JAX_CACHE", "")
    info: dict[str, tp.Any] = {"dir": None, "hits": 0, "misses": 0}
    if where.lower() == "off":
        return info
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = Path(where) if where else cache_home / "sweepax" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    info["dir"] = str(path)

    def _count(event: str, **_: tp.Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            info["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            info["misses"] += 1

    jax.monitoring.register_event_listener(_count)
    return info


@dataclasses.dataclass(frozen=True)
class Task:
    """One task, parsed and checked: what to train and where its store goes."""

    entry: entries.Entry
    argv: list[str]  # as given, recorded in the provenance
    options: argparse.Namespace  # run options: study, results_dir, spec, spec_hash, platform, grid
    static: dict[str, tp.Any]  # every static value, defaults filled in
    rows: list[dict[str, float]]  # every swept value of each config
    task_id: str

    @property
    def study_dir(self) -> Path:
        """``<results_dir>/<study>``: where the store is written."""
        return Path(self.options.results_dir) / self.options.study

    @property
    def seeds(self) -> list[int]:
        """The seeds vmapped inside the program."""
        return list(range(self.static["seed"], self.static["seed"] + self.static["n_seeds"]))

    @property
    def swept(self) -> list[str]:
        """Names of the swept hyperparameters, in declaration order."""
        return [f.name for f in self.entry.sweep_fields]

    def vmapped(self) -> dict[str, list[float]]:
        """The values of each swept hyperparameter along ``config``."""
        return {k: [r[k] for r in self.rows] for k in self.swept}


def check_results_before_parsing(args: tp.Sequence[str]) -> Path | None:
    """Check the study name and results folder from the run options alone, before JAX loads.

    Returns the folder checked, or None when the run options need the full parser (or help).
    """
    options = task_args.run_options(args)
    if options is None or options.help:
        return None
    check_study(options.study)
    study_dir = Path(options.results_dir) / options.study
    check_results_folder(study_dir)
    return study_dir


def parse_task(argv: tp.Sequence[str]) -> Task:
    """``<entry> [--flag value ...]`` -> a ``Task`` whose values are all checked (``UserError``)."""
    entry = entries.get(argv[0])
    parser = task_args.parser(entry)
    options = parser.parse_args(argv[1:])
    static, rows = task_args.resolve(entry, options, parser.error)
    from sweepax.envs import registry

    registry.check(static["env"])
    check_entry_as_written(entry, options.entry_as_written)
    if problems := entry.problems(static, rows):
        raise UserError("; ".join(problems) + "; fix the task's arguments")
    registry.check(static["env"], static.get("renderer"))  # one that cannot run here
    task_id = task_args.task_id(entry, static, rows)
    return Task(entry, list(argv), options, static, rows, task_id)


def check_entry_as_written(entry: entries.Entry, written: str | None) -> None:
    """Refuse an ``--entry_as_written`` that is not an entry running this program."""
    if written is None:
        return
    named = entries.parse_entry(written, "--entry_as_written")
    if named.name != entry.name:
        raise UserError(
            f"--entry_as_written: {written!r} runs sweepax's {named.name!r}, not {entry.name!r}; "
            "fix the task line (plan it again with write_jobs)"
        )


def check_study(study: str) -> None:
    """Refuse a study name that would break a folder name, a runs file line or a SLURM job name."""
    if problem := task_args.study_problem(study):
        raise UserError(f"--study: {problem}")


def check_results_folder(study_dir: Path) -> None:
    """Refuse unless this process can create, write, rename and delete files in ``study_dir``.

    Folders that do not exist yet are created for the probe (a file with a temporary name of
    ``sweepax.files``) and removed again with it: a refused task leaves nothing behind. Another
    task of the study may remove such a folder between our ``mkdir`` and our write (its own
    probe done); the write then simply creates it again.
    """
    if study_dir.exists() and not study_dir.is_dir():
        raise UserError(
            f"{study_dir}: is a file, not a results folder; move it away or choose another "
            "--study or --results_dir"
        )
    probe = files.temp_path(study_dir / ".write-check")
    renamed = files.temp_path(study_dir / ".write-check-renamed")
    created = [p for p in (study_dir, *study_dir.parents) if not p.exists()]  # deepest first
    try:
        for attempt in range(3):
            study_dir.mkdir(parents=True, exist_ok=True)
            try:
                probe.write_bytes(b"sweepax write check\n")
                break
            except FileNotFoundError:  # a concurrent probe removed the folder it had made
                if attempt == 2:
                    raise
        os.rename(probe, renamed)
        renamed.unlink()
    except OSError as err:
        files.remove(probe)
        files.remove(renamed)
        raise UserError(
            f"{study_dir}: cannot write results here ({err.strerror or err}); give --results_dir "
            "a folder this user can write"
        ) from None
    finally:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()


def store_bytes(task: Task) -> int:
    """An upper estimate of the task's store: every metric of every run and update, float32."""
    from sweepax.agents.config import TrainMetrics

    static = task.entry.static_cls(**task.static)
    runs = len(task.rows) * len(task.seeds)
    metrics = runs * static.num_updates * 4 * len(TrainMetrics._fields)
    return metrics * STORE_SAFETY + STORE_MARGIN


def check_free_space(task: Task) -> None:
    """Refuse when the results folder's disk has less free space than ``store_bytes(task)``."""
    need = store_bytes(task)
    existing = next(p for p in (task.study_dir, *task.study_dir.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need:
        mib = 1 << 20
        raise UserError(
            f"{task.study_dir}: {free / mib:.1f} MiB free, the store needs about "
            f"{need / mib:.1f} MiB ({len(task.rows)} configs x {len(task.seeds)} seeds of "
            f"metrics, x{STORE_SAFETY}, + {STORE_MARGIN // mib} MiB); free some space or give "
            "--results_dir on a larger disk"
        )


def cpu_device_count(environ: tp.Mapping[str, str], cores: int) -> int:
    """How many JAX CPU devices a task makes: ``$SWEEPAX_CPU_DEVICES``, else one per core it
    may use (``cores``, capped by SLURM's ``$SLURM_CPUS_PER_TASK`` where a job's CPU binding
    does not show in the affinity mask)."""
    want = environ.get("SWEEPAX_CPU_DEVICES", "").strip()
    if want:
        if not (want.isdigit() and int(want) >= 1):
            raise UserError(
                f"SWEEPAX_CPU_DEVICES={want!r}: give a whole number of CPU devices >= 1, or unset "
                "it for one per core"
            )
        return int(want)
    slurm = environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) >= 1:
        cores = min(cores, int(slurm))
    return max(1, cores)


def use_cpu_devices() -> None:
    """One JAX CPU device per core this process may use (``cpu_device_count``), so that a
    task's runs are split over the cores (``ppo.run_mesh``; 1: one device, whose products
    XLA's intra-op threads share). Only before JAX's backends have started, and not when
    ``XLA_FLAGS`` already sets ``--xla_force_host_platform_device_count``."""
    import jax
    from jax._src import xla_bridge

    count = cpu_device_count(os.environ, provenance.usable_cores())
    if xla_bridge.backends_are_initialized() or "device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    jax.config.update("jax_num_cpu_devices", count)


def set_up_jax(platform: str | None, cpu_devices: bool = True) -> dict[str, tp.Any]:
    """Make the CPU devices (``cpu_devices``: one per core, else JAX's one), check the platform
    asked for and switch on the compilation cache (its counters)."""
    if cpu_devices:
        use_cpu_devices()
    _use_platform(platform)
    return _use_compilation_cache()


def task_inputs(task: Task) -> tuple[tp.Any, tp.Any]:
    """The programs' inputs: the swept values (each leaf (config,)) and the seeds (seed,).

    Converted on the host, so that no conversion program is compiled or loaded."""
    import jax.numpy as jnp
    import numpy as np

    sweep = task.entry.sweep_cls(
        **{k: jnp.asarray(np.asarray(v, dtype=np.float32)) for k, v in task.vmapped().items()}
    )
    return sweep, jnp.asarray(np.asarray(task.seeds, dtype=np.int32))


def program_cache_for(cache: dict[str, tp.Any]) -> tp.Any:
    """The ``program_cache.ProgramCache`` beside JAX's persistent cache, or None when that is
    off (``SWEEPAX_JAX_CACHE=off``)."""
    from sweepax import program_cache

    if cache["dir"] is None:
        return None
    return program_cache.ProgramCache(Path(cache["dir"]) / program_cache.FOLDER)


def program_parts(task: Task, sweep_fn: tp.Any, inputs: tuple[tp.Any, tp.Any]) -> dict:
    """What the program cache's key covers for this task (``program_cache.key_parts``): every
    static value but ``seed`` (the seeds are an input), the inputs' shapes, the update chunk."""
    import jax

    from sweepax import program_cache

    leaves, tree = jax.tree.flatten(inputs)
    return program_cache.key_parts(
        {
            "entry": task.entry.name,
            "static": {k: v for k, v in task.static.items() if k != "seed"},
            "inputs": [[list(x.shape), str(x.dtype)] for x in leaves],
            "input_tree": str(tree),
            "num_updates": sweep_fn.num_updates,
            "chunk": sweep_fn.chunk,
        }
    )


def load_or_compile(sweep_fn: tp.Any, inputs: tuple[tp.Any, tp.Any], cache: tp.Any, parts: dict):
    """``sweep_fn`` with its programs loaded from ``cache`` (nothing traced) or, when the cache
    has no usable entry, compiled and saved; when JAX's persistent cache held them, loaded from
    there and not saved (``program_cache``: such executables do not serialize again)."""
    from sweepax import program_cache

    programs, result = cache.load(parts)
    if programs is not None:
        try:
            return sweep_fn.load_programs(programs)
        except Exception as err:  # noqa: BLE001 (an entry that does not load: compile instead)
            why = (str(err).splitlines() or [""])[0][:200]  # one line in the log and record
            result = cache.record["result"] = f"unloadable ({type(err).__name__}: {why})"
    if result != "miss":
        _say(f"program cache: {cache.path(parts)}: {result}; compiling")
        cache.discard(parts)
    jax_hits = program_cache.jax_cache_hits()
    sweep_fn.compile(*inputs)
    if program_cache.jax_cache_hits() > jax_hits:
        cache.record["saved"] = False
        return sweep_fn
    try:
        programs = sweep_fn.programs()
    except Exception as err:  # noqa: BLE001 (a backend that cannot serialize: nothing to save)
        cache.record["saved"] = False
        _say(f"program cache: cannot serialize the programs ({type(err).__name__}); not saved")
        return sweep_fn
    if problem := cache.save(parts, programs):
        _say(f"program cache: {cache.path(parts)}: {problem}")
    return sweep_fn


def compile_task(
    task: Task, cache: tp.Any = None
) -> tuple[tp.Callable, tuple[tp.Any, tp.Any], float]:
    """Trace and compile the task's programs, or load them from ``cache`` (a
    ``program_cache.ProgramCache``): ``(compiled, (sweep, seeds), seconds)``."""
    static = task.entry.static_cls(**task.static)
    sweep_fn = task.entry.make_sweep_fn(static, on_progress=Progress(task.task_id))
    inputs = task_inputs(task)
    t0 = time.perf_counter()
    if cache is None:
        compiled = sweep_fn.compile(*inputs)
    else:
        compiled = load_or_compile(sweep_fn, inputs, cache, program_parts(task, sweep_fn, inputs))
    return compiled, inputs, time.perf_counter() - t0


def checkpoint_options(argv: tp.Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """``--checkpoint_every SECONDS`` and ``--keep-checkpoints`` (how the task saves its state,
    not what it trains: they change neither the task id nor the results), and the other
    arguments."""
    from sweepax import checkpoint

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--checkpoint_every", "--checkpoint-every", type=float, default=None, metavar="SECONDS"
    )
    parser.add_argument("--keep_checkpoints", "--keep-checkpoints", action="store_true")
    options, rest = parser.parse_known_args(list(argv))
    if options.checkpoint_every is None:
        options.checkpoint_every = checkpoint.default_every()
    elif not options.checkpoint_every >= 0:
        raise UserError(
            f"--checkpoint_every {options.checkpoint_every:g}: must be a number of seconds >= 0 "
            "(0 saves after every chunk of updates)"
        )
    return options, rest


def checkpoint_fingerprint(task: Task, prov: dict[str, tp.Any], chunk: int) -> dict[str, tp.Any]:
    """What must not differ between a checkpoint and the run resuming from it."""
    from sweepax import checkpoint

    return json.loads(
        json.dumps(
            {
                "task_id": task.task_id,
                "code": checkpoint.code_version(),
                "packages": prov.get("packages"),
                "xla_flags": prov.get("xla_flags"),
                "arguments": {
                    "entry": task.entry.name,
                    "static": task.static,
                    "vmapped": task.vmapped(),
                },
                "chunk_length": chunk,
            }
        )
    )


def open_checkpoints(task: Task, prov: dict[str, tp.Any], compiled: tp.Any, every: float) -> tp.Any:
    """The task's ``checkpoint.Checkpoints`` (leftovers of killed saves removed)."""
    from sweepax import checkpoint

    ckpt = checkpoint.Checkpoints(
        checkpoint.task_folder(task.study_dir, task.task_id),
        every=every,
        fingerprint=checkpoint_fingerprint(task, prov, compiled.chunk),
        num_updates=compiled.num_updates,
        say=_say,
    )
    ckpt.remove_temporaries()
    return ckpt


def find_resume(task: Task, compiled: tp.Any, ckpt: tp.Any) -> tp.Any:
    """The newest usable checkpoint as ``compiled``'s ``resume`` argument, or None."""
    from sweepax import checkpoint

    runner, _ = compiled.state_shapes(0)
    saved = ckpt.newest(
        checkpoint.signature(runner),
        lambda k: checkpoint.signature(compiled.state_shapes(k)[1]),
    )
    if saved is None:
        ckpt.segments = [checkpoint.segment_now(0)]
        return None
    ckpt.segments = [*saved.segments, checkpoint.segment_now(saved.update)]
    _say(f"resumed {task.task_id} at update {saved.update}/{compiled.num_updates}")
    return saved.update, saved.runner, saved.metrics


class _SaveOrStop:
    """The ``checkpoint`` hook of ``SweepFn``: save, and stop when a signal asked for it."""

    def __init__(self, ckpt: tp.Any) -> None:
        self.ckpt = ckpt

    def due(self) -> bool:
        return self.ckpt.due()

    def save(self, update: int, runner: list[tp.Any], metrics: list[tp.Any]) -> None:
        from sweepax import checkpoint

        path = self.ckpt.save(update, runner, metrics)
        _say(f"checkpoint {path.name}: update {update}/{self.ckpt.num_updates}")
        if self.ckpt.stop_signal is not None:
            raise checkpoint.StoppedError(update, self.ckpt.stop_signal)


def run_task(
    compiled: tp.Callable,
    inputs: tuple[tp.Any, tp.Any],
    resume: tp.Any = None,
    ckpt: tp.Any = None,
) -> tuple[dict, float]:
    """Train every config x seed (from ``resume``, saving to ``ckpt``): ``(metrics as numpy
    arrays, seconds)``."""
    import jax
    import numpy as np

    t0 = time.perf_counter()
    hook = _SaveOrStop(ckpt) if ckpt is not None else None
    if ckpt is None:
        out = compiled(*inputs)
    else:
        with ckpt.stop_on_signals():
            out = compiled(*inputs, resume=resume, checkpoint=hook)
    out = jax.block_until_ready(out)
    run_s = time.perf_counter() - t0
    return {k: np.asarray(v) for k, v in out._asdict().items()}, run_s


def env_steps(task: Task, num_updates: int) -> tp.Any:
    """(update,) environment steps of one run at the end of each update."""
    import numpy as np

    return (np.arange(num_updates) + 1) * task.static["num_steps"] * task.static["num_envs"]


def _env_definition(env_id: str) -> dict[str, tp.Any]:
    from sweepax.envs import registry

    return registry.definition(env_id)


def store_attrs(
    task: Task, prov: dict[str, tp.Any], discount: tuple[float, str] | None = None
) -> dict[str, tp.Any]:
    """The store's attributes: study, task id, resolved arguments, sweep file, provenance.

    ``entry_as_written``: the sweep file's entry (``-m pobax.algos.ppo``) when the task line
    gives it. ``discount`` (the run's ``(gamma, source)``, ``ppo.discount``) adds ``gamma_used``
    and ``gamma_source``: ``"env"`` where the env's own discount replaced the sweep's ``gamma``
    (POBAX's ``.POMDP`` models, Battleship), else ``"sweep"``. ``env_definition``: what the env
    id meant when the task ran (``registry.definition``), since an id can change meaning.
    """
    attrs = {
        "study": task.options.study,
        "task_id": task.task_id,
        "entry": task.entry.name,
        **({"entry_as_written": w} if (w := task.options.entry_as_written) else {}),
        **({"gamma_used": discount[0], "gamma_source": discount[1]} if discount else {}),
        "static": task.static,
        **({"env_definition": _env_definition(task.static["env"])} if "env" in task.static else {}),
        "args": {**task.static, **task.vmapped(), "grid": task.options.grid},
        "spec_path": task.options.spec,
        "spec_hash": task.options.spec_hash,
        "hparams_static": task.entry.label_static,
        "provenance": prov,
    }
    return json.loads(json.dumps(attrs))


def params_dataset(params: tp.Any, task: Task) -> tp.Any:
    """The final parameters (a pytree, leaves (config, seed, ...)) as an xarray Dataset.

    One data variable per leaf, named by its path in the parameter tree joined with ``.``
    (``params.GRU_0.hidden.kernel``), dims ``config, seed, <name>.0, <name>.1, ...``; the
    coordinates are those of the metrics: each swept hyperparameter along ``config``, ``seed``.
    """
    import jax
    import numpy as np
    import xarray as xr

    from sweepax.results.values import coord_values

    data = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        arr = np.asarray(leaf)
        data[name] = (("config", "seed", *(f"{name}.{d}" for d in range(arr.ndim - 2))), arr)
    coords = {k: ("config", coord_values(v)) for k, v in task.vmapped().items()}
    coords["seed"] = ("seed", np.asarray(task.seeds, dtype=np.int64))
    return xr.Dataset(data, coords=coords)


def write_store(task: Task, metrics: dict, attrs: dict[str, tp.Any], params: tp.Any = None) -> Path:
    """Write ``<results_dir>/<study>/<task_id>.zarr`` atomically; its path. ``params`` (the final
    parameters, ``save_params``) go into the store's group ``final_params``."""
    from sweepax.results import store

    task.study_dir.mkdir(parents=True, exist_ok=True)
    groups = {} if params is None else {store.PARAMS_GROUP: params_dataset(params, task)}
    return store.write_task_store(
        task.study_dir,
        task.task_id,
        metrics,
        vmapped=task.vmapped(),
        seeds=task.seeds,
        env_steps=env_steps(task, metrics["episode_return"].shape[-1]),
        attrs=attrs,
        groups=groups,
    )


def _summary(task: Task, metrics: dict) -> str:
    """One line per config: its varying swept values and final return per seed."""
    import numpy as np

    varying = [k for k in task.swept if len({r[k] for r in task.rows}) > 1]
    lines = []
    for i, row in enumerate(task.rows):
        label = " ".join(f"{k}={row[k]:g}" for k in varying) or "config"
        finals = metrics["final_return"][i]
        lines.append(
            f"  {label}: final_return {np.nanmean(finals):.3f} (seeds: "
            + ", ".join(f"{x:.2f}" for x in finals)
            + ")"
        )
    return "\n".join(lines)


def _import_runtime() -> float:
    """Import JAX and the store writer; seconds since the process started."""
    import jax  # noqa: F401
    import numpy  # noqa: F401

    from sweepax.results import store  # noqa: F401

    return time.perf_counter() - _T0


def _say(message: str) -> None:
    # one write per line: the SLURM script appends its own lines to the same log
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def check_before_compute(argv: tp.Sequence[str]) -> Task:
    """Parse the task and refuse it (``UserError``) if anything would fail after compute."""
    checked = check_results_before_parsing(argv[1:])
    task = parse_task(argv)  # --help prints and exits here
    if task.study_dir != checked:  # the run options read alone differed from the full parse
        check_study(task.options.study)
        check_results_folder(task.study_dir)
    check_free_space(task)
    return task


def run_record(
    task: Task,
    metrics: dict,
    seconds: dict[str, float],
    cache: dict[str, tp.Any],
    segments: list[dict[str, tp.Any]] | None = None,
    run_split: list[int] | None = None,
) -> dict[str, tp.Any]:
    """What the provenance adds once the run is done: devices, timings, cache use, speed (of
    this process's updates), the run's segments (each start, end, host, SLURM job), and how
    the runs were split over the devices (``SweepFn.run_split``)."""
    num_updates = metrics["episode_return"].shape[-1]
    runs = len(task.rows) * len(task.seeds)
    if segments:  # this process ran only the last segment
        num_updates -= segments[-1]["start_update"]
    steps = runs * num_updates * task.static["num_steps"] * task.static["num_envs"]
    return {
        **provenance.devices(),
        # configs x seeds shares of the runs, one per device (``ppo.run_mesh``)
        "run_split": run_split or [1, 1],
        **{f"{stage}_seconds": round(s, 3) for stage, s in seconds.items()},
        "compilation_cache": cache,
        "env_steps_per_second": round(steps / seconds["run"]),
        "finished_at": files.utc_now(),
        **({"segments": segments} if segments else {}),
    }


def _ended(segment: dict[str, tp.Any], update: int) -> dict[str, tp.Any]:
    return {**segment, "end_update": update, "ended_at": files.utc_now()}


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    """Parse and check one task, compile, train, write its store."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(f"usage: python -m sweepax.train {{{','.join(entries.names())}}} [--help] [...]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    ckpt_options, argv[1:] = checkpoint_options(argv[1:])
    task = check_before_compute(argv)
    prov = provenance.collect(task.argv, spec=task.options.spec)
    seconds = {"import": _import_runtime()}
    cache = set_up_jax(task.options.platform)
    import jax

    static = task.static
    _say(
        f"task {task.task_id}: {task.entry.name} on {static['env']}, {len(task.rows)} configs x "
        f"{len(task.seeds)} seeds, {static['total_steps']} steps each, devices {jax.devices()}"
    )
    programs = program_cache_for(cache)
    compiled, inputs, seconds["compile"] = compile_task(task, programs)
    ckpt = open_checkpoints(task, prov, compiled, ckpt_options.checkpoint_every)
    resume = find_resume(task, compiled, ckpt)
    from sweepax import checkpoint

    try:
        metrics, seconds["run"] = run_task(compiled, inputs, resume, ckpt)
    except checkpoint.StoppedError as stop:
        _say(
            f"stopped {task.task_id} at update {stop.update}/{compiled.num_updates} on "
            f"{stop.signal_name}: checkpoint saved; run the task again to resume"
        )
        return checkpoint.EXIT_STOPPED
    segments = [*ckpt.segments[:-1], _ended(ckpt.segments[-1], compiled.num_updates)]
    prov.update(run_record(task, metrics, seconds, cache, segments, compiled.run_split()))
    prov["program_cache"] = programs.record if programs is not None else None
    prov["checkpoints"] = {
        "every_seconds": ckpt.every,
        "saves": ckpt.saves,
        "save_seconds": round(ckpt.save_seconds, 3),
    }
    params = compiled.final_params if task.options.save_params else None
    attrs = store_attrs(task, prov, (compiled.gamma, compiled.gamma_source))
    path = write_store(task, metrics, attrs, params)
    if not ckpt_options.keep_checkpoints:
        ckpt.remove_all()
    print(
        f"wrote {path}\n"
        f"  import {seconds['import']:.1f}s, trace+compile {seconds['compile']:.1f}s "
        f"(compilation cache: {cache['hits']} hits, {cache['misses']} misses; program cache: "
        f"{programs.record['result'] if programs is not None else 'off'}), "
        f"run {seconds['run']:.1f}s ({prov['env_steps_per_second']} env steps/s)\n"
        + _summary(task, metrics),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
