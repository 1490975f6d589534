"""Plan a study: job-array rows (static values, lists) x vmapped configs, split by ``max_vmap``.

An env that cannot be vmapped (``registry.vmappable``: image envs with ``renderer="madrona"``)
gets one task per config and per seed (``--seed s --n_seeds 1``), and the plan says so in
``Plan.notes``; so does an env id whose meaning changed (``registry.changed_meaning``). A study
larger than ``max_configs`` is refused from the sizes of its axes, before any config is made;
every ``exclude`` rule must drop at least one config.

``max_vmap="auto"`` sizes the tasks by device memory instead (``sweep.memory``): each program's
configs are split into the fewest tasks whose compiled update program fits the budget with a
margin, and each task carries its estimate. Only then is JAX imported.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import typing as tp
from pathlib import Path

from sweepax import files
from sweepax.entries import Entry
from sweepax.errors import UserError
from sweepax.sweep import args as task_args
from sweepax.sweep import memory
from sweepax.sweep.load import Axis, Study

MAX_CONFIGS = 100_000  # default --max-configs: ~12 s and ~0.5 GB to plan, ~10 MB of manifest
PROGRESS_EVERY = 10_000  # configs between two progress reports of a large plan
SEED_KEYS = ("seed", "n_seeds")  # static values a manifest task carries as its list of seeds


@dataclasses.dataclass(frozen=True)
class Task:
    """One job-array task: one program, ``len(configs)`` vmapped configs x ``len(seeds)`` seeds."""

    index: int
    task_id: str
    static: dict[str, tp.Any]  # every static hyperparameter, resolved
    configs: list[dict[str, float]]  # every swept hyperparameter per config, resolved
    seeds: list[int]
    argv: list[str]
    search: dict[str, tp.Any] | None = None  # how its configs were chosen (random sample, bin)
    memory_estimate_bytes: int | None = None  # with --max-vmap auto: its device memory, estimated

    @property
    def command(self) -> str:
        """The shell line of ``runs/<study>.txt``."""
        return task_args.to_command(self.argv)


@dataclasses.dataclass(frozen=True)
class Plan:
    """All tasks of one study."""

    study: Study
    tasks: list[Task]
    max_vmap: int | str | None  # configs per task at most, "auto" (by memory) or None
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. envs that cannot vmap
    memory: dict[str, tp.Any] | None = None  # with "auto": budget, margin and fits (Sizer.record)

    @property
    def n_runs(self) -> int:
        """Training runs (config x seed) over all tasks."""
        return sum(len(t.configs) * len(t.seeds) for t in self.tasks)

    def manifest(self) -> dict[str, tp.Any]:
        """The JSON manifest ``runs/<study>.json``.

        ``entry_as_written``: the sweep file's entry when it is another code base's (POBAX).
        Each task: ``index``, ``task_id``, ``command``, ``static`` (every static value but the
        seeds; ``hparams_static`` names those that label results), ``configs`` (every swept
        value of each config), ``seeds`` (``seed`` .. ``seed + n_seeds - 1``), ``n_configs``;
        ``search`` where the configs are a random sample or a bin of the program's grid
        (``sweep.search``): ``sweep_type``, ``grid_size``, ``grid_index`` (each config's row in
        the grid, row-major in the sweep file's key order), and ``seed`` / ``n_random_hparams``
        or ``n_run_bins`` / ``run_bin_idx``. With ``max_vmap: "auto"``: ``memory`` (the budget,
        margin, the estimate's formula and each program's fit: ``intercept_bytes``,
        ``bytes_per_config``, ``measured_bytes`` per compiled grid size) and each task's
        ``memory_estimate_bytes``.
        """
        entry = self.study.entry
        return {
            "study": self.study.name,
            "spec_path": str(self.study.path),
            "spec_hash": self.study.spec_hash,
            "entry": entry.name,
            **({"entry_as_written": entry.written} if entry.written else {}),
            "max_vmap": self.max_vmap,
            "hparams_static": entry.label_static,
            "hparams_vmapped": [f.name for f in entry.sweep_fields],
            "n_tasks": len(self.tasks),
            "n_runs": self.n_runs,
            **({"notes": self.notes} if self.notes else {}),
            **({"memory": self.memory} if self.memory else {}),
            "tasks": [
                {
                    "index": t.index,
                    "task_id": t.task_id,
                    "command": t.command,
                    "static": {k: v for k, v in t.static.items() if k not in SEED_KEYS},
                    "configs": t.configs,
                    "seeds": t.seeds,
                    "n_configs": len(t.configs),
                    **({"search": t.search} if t.search else {}),
                    **(
                        {"memory_estimate_bytes": t.memory_estimate_bytes}
                        if t.memory_estimate_bytes is not None
                        else {}
                    ),
                }
                for t in self.tasks
            ],
        }


def _product(axes: tp.Sequence[Axis]) -> tp.Iterator[dict[str, tp.Any]]:
    keys = [a.key for a in axes]
    for combo in itertools.product(*(a.values for a in axes)):
        yield dict(zip(keys, combo, strict=True))


def _vmappable(static: tp.Mapping[str, tp.Any]) -> bool:
    """Whether the env of a task's static values can be vmapped (no env key: yes)."""
    if "env" not in static:
        return True
    from sweepax.envs import registry

    return registry.vmappable(static["env"], static.get("renderer", "jax"))


def _changed_meaning(static: tp.Mapping[str, tp.Any]) -> str | None:
    """What changed, when the task's env id once named a different env (``registry``)."""
    if "env" not in static:
        return None
    from sweepax.envs import registry

    return registry.changed_meaning(static["env"])


def _check_perfect_memory(static: tp.Mapping[str, tp.Any], where: str, notes: list[str]) -> None:
    """Refuse ``perfect_memory`` for an env that does not define it, before anything runs; add
    the env's note on what its perfect memory is, if it has one."""
    if not static.get("perfect_memory") or "env" not in static:
        return
    from sweepax.envs import registry

    try:
        registry.check(static["env"], perfect_memory=True)
    except UserError as err:
        raise UserError(f"{where}: key 'perfect_memory': {err}; set it to False") from None
    note = registry.perfect_memory_note(static["env"])
    if note and note not in notes:
        notes.append(note)


def _check_action_concat(
    static: dict[str, tp.Any], given: dict[str, tp.Any], pobax: bool, notes: list[str], where: str
) -> None:
    """Refuse ``action_concat`` for an env that does not allow it (Craftax), before anything
    runs; under a POBAX entry, where POBAX ignores it for those envs, plan it off and say so."""
    if not static.get("action_concat") or "env" not in static:
        return
    from sweepax.envs import registry

    try:
        registry.check(static["env"], action_concat=True)
    except UserError as err:
        if not pobax:
            raise UserError(f"{where}: key 'action_concat': {err}; set it to False") from None
        static["action_concat"] = given["action_concat"] = False
        note = f"{static['env']}: action_concat planned False (POBAX ignores it for this env)"
        if note not in notes:
            notes.append(note)


def _default_renderer(
    static: dict[str, tp.Any], given: dict[str, tp.Any], platform: str | None, notes: list[str]
) -> None:
    """An image env whose sweep file names no renderer gets ``registry.default_renderer`` for
    the study's platform (Warp on ``gpu``); planned into the task, so its line and store say
    which, and noted when it is not the program's own default."""
    if "renderer" not in static or "renderer" in given or "env" not in static:
        return
    from sweepax.envs import registry

    if not registry.renders(static["env"]):
        return
    renderer = registry.default_renderer(platform)
    if renderer == static["renderer"]:
        return
    static["renderer"] = given["renderer"] = renderer
    note = (
        f"{static['env']}: renderer {renderer} (the default for image envs on platform {platform})"
    )
    if note not in notes:
        notes.append(note)


def _axis_values(axes: tp.Sequence[Axis], key: str, default: tp.Any) -> tuple:
    return next((a.values for a in axes if a.key == key), (default,))


def size(study: Study) -> tuple[int, int, str]:
    """``(configs, tasks at most, how)`` from the axis lengths alone, before exclusion.

    A config of an env that cannot vmap counts once per seed in ``tasks`` (each is a task);
    ``how`` reads ``args[0]: 3 env x 24 lr``.
    """
    statics = {f.name: f.default for f in study.entry.static_fields}
    configs = tasks = 0
    how = []
    for i, axes in enumerate(study.arg_sets):
        n = math.prod(len(a.values) for a in axes)
        seeds = 1
        envs = _axis_values(axes, "env", statics.get("env"))
        renderers = _axis_values(axes, "renderer", statics.get("renderer", "jax"))
        if not all(_vmappable({"env": e, "renderer": r}) for e in envs for r in renderers):
            seeds = max(_axis_values(axes, "n_seeds", statics.get("n_seeds", 1)))
        configs += n
        tasks += n * seeds
        factors = [f"{len(a.values)} {a.key}" for a in axes if len(a.values) > 1]
        factors += [f"{seeds} seeds (cannot vmap)"] if seeds > 1 else []
        how.append(f"args[{i}]: {' x '.join(factors) or '1'}")
    return configs, tasks, "; ".join(how)


def check_size(study: Study, max_configs: int) -> int:
    """Refuse a study of more than ``max_configs`` configs (or tasks); its number of configs."""
    if max_configs < 1:
        raise UserError(f"--max-configs {max_configs}: must be at least 1")
    configs, tasks, how = size(study)
    if max(configs, tasks) > max_configs:
        what = f"{configs:,} configs" + (f" in {tasks:,} tasks" if tasks > configs else "")
        raise UserError(
            f"{study.path}: the sweep expands to {what} ({how}), more than --max-configs "
            f"{max_configs:,}; split the study into several sweep files or raise --max-configs"
        )
    return configs


class _Exclusion:
    """The study's ``exclude`` rules, remembering which ones dropped a config."""

    def __init__(self, rules: tp.Sequence[tp.Mapping[str, tuple]]) -> None:
        self.rules = rules
        self.used = [False] * len(rules)
        self.seen: dict[str, set] = {key: set() for rule in rules for key in rule}

    def drops(self, row: tp.Mapping[str, tp.Any]) -> bool:
        """Whether any rule matches every one of its keys in ``row`` (the row's full values)."""
        for key, values in self.seen.items():
            values.add(row[key])
        hit = False
        for i, rule in enumerate(self.rules):
            if all(row[key] in values for key, values in rule.items()):
                self.used[i] = hit = True
        return hit

    def check_used(self, where: Path) -> None:
        """Refuse a rule that dropped nothing (a typo), naming the values the sweep has."""
        for rule, used in zip(self.rules, self.used, strict=True):
            if used:
                continue
            given = {k: v[0] if len(v) == 1 else list(v) for k, v in rule.items()}
            has = "; ".join(
                f"{key}: {', '.join(map(repr, sorted(self.seen[key], key=repr)))}" for key in rule
            )
            raise UserError(
                f"{where}: key 'exclude': rule {given!r} matches no config of the sweep (its "
                f"values: {has}); fix the values or remove the rule"
            )


@dataclasses.dataclass
class _Progress:
    """Counts the configs made; ``on_progress(done, total)`` every ``PROGRESS_EVERY``."""

    total: int
    on_progress: tp.Callable[[int, int], None] | None
    done: int = 0

    def tick(self) -> None:
        """One more config made."""
        self.done += 1
        if self.on_progress is not None and self.done % PROGRESS_EVERY == 0:
            self.on_progress(self.done, self.total)


@dataclasses.dataclass
class _Builder:
    """Tasks of a plan as they are made, in order, without duplicates."""

    study: Study
    max_vmap: int | None
    sizer: memory.Sizer | None = None  # with --max-vmap auto
    tasks: dict[str, Task] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def entry(self) -> Entry:
        """The study's training program."""
        return self.study.entry

    @functools.cached_property
    def run_options(self) -> dict[str, tp.Any]:
        """The options every task line of the study carries (study, sweep file, platform)."""
        return {
            "study": self.study.name,
            "spec": str(self.study.path),
            "spec_hash": self.study.spec_hash[:16],
            "platform": self.study.platform,
            "entry_as_written": self.entry.written or None,
            "save_params": self.study.save_params,
        }

    def add(
        self,
        static: dict,
        given_static: dict,
        given_rows: list[dict],
        configs: list[dict],
        search: dict | None = None,
        estimate: int | None = None,
    ):
        """One task of ``configs`` (``given_rows``: their values the sweep file sets)."""
        tid = task_args.task_id(self.entry, static, configs)
        if tid not in self.tasks:
            argv = task_args.to_argv(self.entry, given_static, given_rows, self.run_options)
            seeds = list(range(static["seed"], static["seed"] + static["n_seeds"]))
            self.tasks[tid] = Task(
                len(self.tasks), tid, static, configs, seeds, argv, search, estimate
            )

    def add_vmapped(
        self,
        static: dict,
        given_static: dict,
        rows: list[dict],
        defaults: dict,
        search: dict | None = None,
    ):
        """The configs of one program, split into tasks of at most ``max_vmap`` configs (with a
        ``sizer``: the fewest tasks that fit the memory budget, of equal size within one)."""
        if self.sizer is None:
            step = self.max_vmap or len(rows)
            sizes = [len(rows[start : start + step]) for start in range(0, len(rows), step)]
            fit = None
        else:
            sizes, fit = self.sizer.split(static, len(rows))
        start = 0
        for n in sizes:
            chunk = rows[start : start + n]
            start += n
            estimate = None if fit is None else fit.bytes(n)
            configs = [{**defaults, **r} for r in chunk]
            self.add(static, given_static, chunk, configs, search, estimate)

    def add_unvmapped(
        self,
        static: dict,
        given_static: dict,
        rows: list[dict],
        defaults: dict,
        search: dict | None = None,
    ):
        """One task per config row and seed: ``--seed s --n_seeds 1``, one config each."""
        for row in rows:
            for seed in range(static["seed"], static["seed"] + static["n_seeds"]):
                one_seed = {"seed": seed, "n_seeds": 1}
                self.add(
                    {**static, **one_seed}, {**given_static, **one_seed}, [row],
                    [{**defaults, **row}], search,
                )  # fmt: skip


def plan(
    study: Study,
    max_vmap: int | str | None = None,
    max_configs: int = MAX_CONFIGS,
    on_progress: tp.Callable[[int, int], None] | None = None,
    device_memory: int | None = None,
) -> Plan:
    """Expand a study into tasks; ``max_vmap`` caps the vmapped configs per task.

    ``max_vmap="auto"``: tasks sized by memory (``sweep.memory``), ``device_memory`` bytes of
    budget (default: the device's own memory, else ``memory.DEFAULT_DEVICE_MEMORY``).

    Refuses (``UserError``) a study of more than ``max_configs`` configs before making any,
    values outside their declared range, and ``exclude`` rules that drop nothing.
    ``on_progress(done, total)`` hears every ``PROGRESS_EVERY`` configs of a large study.
    """
    if max_vmap is not None:
        max_vmap = memory.max_vmap_arg(str(max_vmap))
    if device_memory is not None and max_vmap != memory.AUTO:
        raise UserError(
            f"--device-memory {memory.mib(device_memory)}: only sizes tasks with --max-vmap auto; "
            "add --max-vmap auto or drop --device-memory"
        )
    total = check_size(study, max_configs)
    entry = study.entry
    static_defaults = {f.name: f.default for f in entry.static_fields}
    sweep_defaults = {f.name: f.default for f in entry.sweep_fields}
    exclusion = _Exclusion(study.exclude)
    sizer = None
    if max_vmap == memory.AUTO:
        sizer = memory.sizer(entry.name, str(study.path), device_memory)
    built = _Builder(study, None if sizer else max_vmap, sizer)
    counter = _Progress(total, on_progress)
    pobax = entry.written.startswith("-m pobax.")
    for i, axes in enumerate(study.arg_sets):
        search = study.search(i)
        static_axes = [a for a in axes if not a.vmapped and a.key in static_defaults]
        array_sweep_axes = [a for a in axes if not a.vmapped and a.key in sweep_defaults]
        vmap_axes = [a for a in axes if a.vmapped]
        swept_values = [{a.key: v} for a in axes if a.key in sweep_defaults for v in a.values]
        for given_static in _product(static_axes):
            static = {**static_defaults, **given_static}
            if problems := entry.problems(static, swept_values):
                raise UserError(f"{study.path}: {problems[0]}; fix the sweep file")
            # configs of this program: job-array values of swept keys x their vmapped values
            groups: list[tuple[list[dict[str, float]], dict | None]] = []
            for array_row in _product(array_sweep_axes):
                where = f"{study.path}: args[{i}]"
                for chosen, record in search.select(_product(vmap_axes), static["seed"], where):
                    kept = []
                    for vrow in chosen:
                        counter.tick()
                        given_row = {**array_row, **vrow}
                        if not exclusion.drops({**static, **sweep_defaults, **given_row}):
                            kept.append(given_row)
                    if kept:
                        groups.append((kept, record))
            _check_perfect_memory(static, f"{study.path}: args[{i}]", built.notes)
            if (changed := _changed_meaning(static)) and changed not in built.notes:
                built.notes.append(changed)
            _check_action_concat(
                static, given_static, pobax, built.notes, f"{study.path}: args[{i}]"
            )
            _default_renderer(static, given_static, study.platform, built.notes)
            if _vmappable(static):
                for rows, record in groups:
                    built.add_vmapped(static, given_static, rows, sweep_defaults, record)
                continue
            n_before = len(built.tasks)
            for rows, record in groups:
                built.add_unvmapped(static, given_static, rows, sweep_defaults, record)
            note = (
                f"{static['env']} (renderer {static.get('renderer', 'jax')}) cannot vmap: "
                f"{sum(len(rows) for rows, _ in groups)} configs x {static['n_seeds']} "
                f"seeds -> {len(built.tasks) - n_before} tasks"
            )
            if note not in built.notes:
                built.notes.append(note)
    exclusion.check_used(study.path)
    if not built.tasks:
        raise UserError(
            f"{study.path}: key 'exclude': the sweep is empty after exclusion; loosen 'exclude'"
        )
    record = sizer.record() if sizer else None
    return Plan(study, list(built.tasks.values()), max_vmap, built.notes, record)


def manifest_text(plan: Plan) -> str:
    """The manifest as JSON text: one line per key of the study, then one line per task."""
    doc = plan.manifest()
    tasks = doc.pop("tasks")
    head = [f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in doc.items()]
    lines = [json.dumps(t, separators=(",", ":"), allow_nan=False) for t in tasks]
    return "{\n" + ",\n".join(head) + ',\n "tasks": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def write(plan: Plan, runs_dir: Path) -> tuple[Path, Path]:
    """Write ``runs/<study>.txt`` (line i = task i) and ``runs/<study>.json`` atomically."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    txt = files.write_text(
        runs_dir / f"{plan.study.name}.txt", "".join(t.command + "\n" for t in plan.tasks)
    )
    manifest = files.write_text(runs_dir / f"{plan.study.name}.json", manifest_text(plan))
    return txt, manifest
