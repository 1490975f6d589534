"""Plan a study: job-array rows (static values, lists) x vmapped configs, split by ``max_vmap``.

An env that cannot be vmapped (``registry.vmappable``: image envs with ``renderer="madrona"``)
gets one task per config and per seed (``--seed s --n_seeds 1``), and the plan says so in
``Plan.notes``.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing as tp
from pathlib import Path

from sweepax import files
from sweepax.errors import UserError
from sweepax.sweep import args as task_args
from sweepax.sweep.load import Axis, Study


@dataclasses.dataclass(frozen=True)
class Task:
    """One job-array task: one program, ``len(configs)`` vmapped configs x ``len(seeds)`` seeds."""

    index: int
    task_id: str
    static: dict[str, tp.Any]  # every static hyperparameter, resolved
    configs: list[dict[str, float]]  # every swept hyperparameter per config, resolved
    seeds: list[int]
    argv: list[str]

    @property
    def command(self) -> str:
        """The shell line of ``runs/<study>.txt``."""
        return task_args.to_command(self.argv)


@dataclasses.dataclass(frozen=True)
class Plan:
    """All tasks of one study."""

    study: Study
    tasks: list[Task]
    max_vmap: int | None
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. envs that cannot vmap

    @property
    def n_runs(self) -> int:
        """Training runs (config x seed) over all tasks."""
        return sum(len(t.configs) * len(t.seeds) for t in self.tasks)

    def manifest(self) -> dict[str, tp.Any]:
        """The JSON manifest ``runs/<study>.json``."""
        entry = self.study.entry
        return {
            "study": self.study.name,
            "spec_path": str(self.study.path),
            "spec_hash": self.study.spec_hash,
            "entry": entry.name,
            "max_vmap": self.max_vmap,
            "hparams_static": entry.label_static,
            "hparams_vmapped": [f.name for f in entry.sweep_fields],
            "n_tasks": len(self.tasks),
            "n_runs": self.n_runs,
            **({"notes": self.notes} if self.notes else {}),
            "tasks": [
                {
                    "index": t.index,
                    "task_id": t.task_id,
                    "command": t.command,
                    "static": {k: t.static[k] for k in entry.label_static},
                    "args": t.static,
                    "configs": t.configs,
                    "seeds": t.seeds,
                    "n_configs": len(t.configs),
                }
                for t in self.tasks
            ],
        }


def _product(axes: tp.Sequence[Axis]) -> list[dict[str, tp.Any]]:
    keys = [a.key for a in axes]
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]


def _excluded(row: tp.Mapping[str, tp.Any], rules: tp.Sequence[tp.Mapping[str, tuple]]) -> bool:
    return any(all(row[key] in values for key, values in rule.items()) for rule in rules)


def _vmappable(static: tp.Mapping[str, tp.Any]) -> bool:
    """Whether the env of a task's static values can be vmapped (no env key: yes)."""
    if "env" not in static:
        return True
    from sweepax.envs import registry

    return registry.vmappable(static["env"], static.get("renderer", "jax"))


def plan(study: Study, max_vmap: int | None = None) -> Plan:
    """Expand a study into tasks; ``max_vmap`` caps the vmapped configs per task."""
    if max_vmap is not None and max_vmap < 1:
        raise UserError(f"--max-vmap {max_vmap}: must be at least 1")
    entry = study.entry
    static_defaults = {f.name: f.default for f in entry.static_fields}
    sweep_defaults = {f.name: f.default for f in entry.sweep_fields}
    run_options = {
        "study": study.name,
        "spec": str(study.path),
        "spec_hash": study.spec_hash[:16],
        "platform": study.platform,
    }
    tasks: dict[str, Task] = {}
    notes: list[str] = []
    for axes in study.arg_sets:
        static_axes = [a for a in axes if not a.vmapped and a.key in static_defaults]
        array_sweep_axes = [a for a in axes if not a.vmapped and a.key in sweep_defaults]
        vmap_axes = [a for a in axes if a.vmapped]
        swept_values = [{a.key: v} for a in axes if a.key in sweep_defaults for v in a.values]
        for given_static in _product(static_axes):
            static = {**static_defaults, **given_static}
            if problems := entry.problems(static, swept_values):
                raise UserError(f"{study.path}: {problems[0]}; fix the sweep file")
            # configs of this program: job-array values of swept keys x their vmapped values
            groups: dict[tuple, list[dict[str, float]]] = {}
            for array_row in _product(array_sweep_axes):
                for vrow in _product(vmap_axes):
                    given_row = {**array_row, **vrow}
                    if _excluded({**static, **sweep_defaults, **given_row}, study.exclude):
                        continue
                    groups.setdefault(tuple(array_row.items()), []).append(given_row)
            if not _vmappable(static):
                n_before = len(tasks)
                n_configs = sum(len(rows) for rows in groups.values())
                for given_rows in groups.values():
                    _add_unvmapped(
                        tasks, entry, static, given_static, sweep_defaults, given_rows, run_options
                    )
                note = (
                    f"{static['env']} (renderer {static.get('renderer', 'jax')}) cannot vmap: "
                    f"{n_configs} configs x {static['n_seeds']} seeds -> "
                    f"{len(tasks) - n_before} tasks"
                )
                if note not in notes:
                    notes.append(note)
                continue
            for given_rows in groups.values():
                step = max_vmap or len(given_rows)
                for start in range(0, len(given_rows), step):
                    chunk = given_rows[start : start + step]
                    configs = [{**sweep_defaults, **r} for r in chunk]
                    tid = task_args.task_id(entry, static, configs)
                    if tid in tasks:
                        continue
                    argv = task_args.to_argv(entry, given_static, chunk, run_options)
                    seeds = list(range(static["seed"], static["seed"] + static["n_seeds"]))
                    tasks[tid] = Task(len(tasks), tid, static, configs, seeds, argv)
    if not tasks:
        raise UserError(
            f"{study.path}: key 'exclude': the sweep is empty after exclusion; loosen 'exclude'"
        )
    return Plan(study, list(tasks.values()), max_vmap, notes)


def _add_unvmapped(
    tasks: dict[str, Task],
    entry: tp.Any,
    static: dict[str, tp.Any],
    given_static: dict[str, tp.Any],
    sweep_defaults: dict[str, float],
    given_rows: list[dict[str, float]],
    run_options: dict[str, tp.Any],
) -> None:
    """One task per config row and seed: ``--seed s --n_seeds 1``, one config each."""
    for row in given_rows:
        for seed in range(static["seed"], static["seed"] + static["n_seeds"]):
            one_seed = {"seed": seed, "n_seeds": 1}
            configs = [{**sweep_defaults, **row}]
            task_static = {**static, **one_seed}
            tid = task_args.task_id(entry, task_static, configs)
            if tid in tasks:
                continue
            argv = task_args.to_argv(entry, {**given_static, **one_seed}, [row], run_options)
            tasks[tid] = Task(len(tasks), tid, task_static, configs, [seed], argv)


def write(plan: Plan, runs_dir: Path) -> tuple[Path, Path]:
    """Write ``runs/<study>.txt`` (line i = task i) and ``runs/<study>.json`` atomically."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    txt = files.write_text(
        runs_dir / f"{plan.study.name}.txt", "".join(t.command + "\n" for t in plan.tasks)
    )
    manifest = files.write_json(runs_dir / f"{plan.study.name}.json", plan.manifest())
    return txt, manifest
