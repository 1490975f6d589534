"""One task's arguments: the command line of ``python -m sweepax.train``, its parser and its id.

The planner renders a task to argv with ``to_argv``; ``train`` parses it back with ``parser``;
both compute the same ``task_id`` from the resolved (defaults filled in) arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import shlex
import typing as tp

from sweepax.entries import MODULE, Entry
from sweepax.hparams import Field

# Study names: a folder under results/, the stem of runs/<study>.txt, a SLURM job name.
STUDY_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")


def fmt(value: tp.Any) -> str:
    """A value as it appears on a command line (floats round-trip exactly)."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def product_rows(grid: tp.Mapping[str, tp.Sequence[float]]) -> list[dict[str, float]]:
    """Row-major Cartesian product of a vmapped grid: the last key varies fastest."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def as_product(rows: tp.Sequence[tp.Mapping[str, float]]) -> dict[str, list[float]] | None:
    """The grid whose row-major product is exactly ``rows``, or None if there is none."""
    if not rows:
        return None
    grid: dict[str, list[float]] = {}
    for key in rows[0]:
        seen: list[float] = []
        for row in rows:
            if row[key] not in seen:
                seen.append(row[key])
        grid[key] = seen
    return grid if product_rows(grid) == [dict(r) for r in rows] else None


def to_argv(
    entry: Entry,
    static: tp.Mapping[str, tp.Any],
    rows: tp.Sequence[tp.Mapping[str, float]],
    run_options: tp.Mapping[str, tp.Any],
) -> list[str]:
    """argv (after ``python``) running one task: ``static`` values, vmapped ``rows`` of configs.

    Defaults the entry overrides (a POBAX entry's) are written out too, so the line means the
    same to ``sweepax.train``, which knows only the program's own defaults.

    ``rows`` is written as per-key value lists when it is a product grid, else with ``--grid zip``
    (the i-th values of every key form config i).
    """
    static = {**entry.static_overrides, **static}  # an entry's own defaults, written out
    rows = [{**entry.sweep_overrides, **row} for row in rows]
    argv = ["-m", MODULE, entry.name]
    for key, value in run_options.items():
        if value is True:
            argv.append(f"--{key}")
        elif value is not None and value is not False:
            argv += [f"--{key}", fmt(value)]
    fields = entry.fields
    for key, value in static.items():
        if fields[key].type is bool:
            argv.append(f"--{key}" if value else f"--no-{key}")
        else:
            argv += [f"--{key}", fmt(value)]
    grid = as_product(rows)
    if grid is None:
        argv += ["--grid", "zip"]
        grid = {key: [row[key] for row in rows] for key in rows[0]}
    for key, values in grid.items():
        argv += [f"--{key}", *map(fmt, values)]
    return argv


def to_command(argv: tp.Sequence[str]) -> str:
    """A shell command line for argv (run with the ``python`` on PATH)."""
    return shlex.join(["python", *argv])


def _add_field(parser: argparse.ArgumentParser, field: Field) -> None:
    help_text = f"{field.help} (default: {field.default!r}"
    help_text += ", vmappable: several values run in one program)" if field.vmappable else ")"
    if field.type is bool:
        parser.add_argument(
            f"--{field.name}", action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    elif field.vmappable:
        parser.add_argument(f"--{field.name}", type=field.type, nargs="+", help=help_text)
    else:
        parser.add_argument(f"--{field.name}", type=field.type, help=help_text)


def study_problem(name: tp.Any) -> str | None:
    """Why ``name`` cannot be a study name (folder, runs file, SLURM job name); None if it can."""
    if isinstance(name, str) and STUDY_NAME.fullmatch(name):
        return None
    return (
        f"{name!r} is not a usable study name: use letters, digits and _ . + - "
        "(not starting with '.')"
    )


def add_run_options(run: argparse._ActionsContainer) -> None:
    """The options of ``python -m sweepax.train`` that are not hyperparameters."""
    run.add_argument("--study", default="default", help="study name: results/<study>/")
    run.add_argument("--results_dir", "--results-dir", default="results", help="results root")
    run.add_argument("--spec", default=None, help="sweep file this task was planned from")
    run.add_argument("--spec_hash", "--spec-hash", default=None, help="sha256 of the sweep file")
    run.add_argument(
        "--platform", default=None, help="require a JAX platform: cpu or gpu (fails fast)"
    )
    run.add_argument(
        "--entry_as_written",
        default=None,
        help="the sweep file's entry when it is another code base's (e.g. '-m pobax.algos.ppo'); "
        "recorded in the store",
    )
    run.add_argument(
        "--save_params",
        action="store_true",
        help="keep every run's final network parameters in the store (group final_params)",
    )
    run.add_argument(
        "--grid",
        choices=("product", "zip"),
        default="product",
        help="vmapped values: their Cartesian product (default) or zipped into config rows",
    )


class _Refusing(argparse.ArgumentParser):
    """A parser that raises ``ValueError`` instead of printing usage and exiting."""

    def error(self, message: str) -> tp.NoReturn:
        raise ValueError(message)


def run_options(argv: tp.Sequence[str]) -> argparse.Namespace | None:
    """The run options among a task's arguments (after the entry), read without the entry's
    declarations (so without JAX); None when they do not parse (the full ``parser`` says why)."""
    p = _Refusing(add_help=False)
    p.add_argument("-h", "--help", action="store_true")
    add_run_options(p)
    try:
        return p.parse_known_args(list(argv))[0]
    except ValueError:
        return None


def parser(entry: Entry) -> argparse.ArgumentParser:
    """The parser of ``python -m sweepax.train <entry>``, built from the declarations."""
    p = argparse.ArgumentParser(
        prog=f"python -m {MODULE} {entry.name}",
        description="Train every (config, seed) of one task in one jitted program; "
        "write its store.",
    )
    add_run_options(p.add_argument_group("run options"))
    static = p.add_argument_group("static hyperparameters (one value per program)")
    for field in entry.static_fields:
        _add_field(static, field)
    swept = p.add_argument_group("swept hyperparameters (vmapped inside the program)")
    for field in entry.sweep_fields:
        _add_field(swept, field)
    return p


def resolve(
    entry: Entry, ns: argparse.Namespace, error: tp.Callable[[str], tp.NoReturn]
) -> tuple[dict[str, tp.Any], list[dict[str, float]]]:
    """Parsed args -> (every static value, config rows of every swept value), defaults filled in."""
    static = {
        f.name: f.default if getattr(ns, f.name) is None else getattr(ns, f.name)
        for f in entry.static_fields
    }
    grid = {
        f.name: [f.default] if getattr(ns, f.name) is None else list(getattr(ns, f.name))
        for f in entry.sweep_fields
    }
    if ns.grid == "zip":
        lengths = {key: len(v) for key, v in grid.items() if getattr(ns, key) is not None}
        n = max(lengths.values(), default=1)
        if any(length != n for length in lengths.values()):
            error(f"--grid zip needs the same number of values for every swept flag, got {lengths}")
        rows = [{key: v[i] if len(v) == n else v[0] for key, v in grid.items()} for i in range(n)]
    else:
        rows = product_rows(grid)
    return static, rows


def task_id(entry: Entry, static: tp.Mapping[str, tp.Any], rows: tp.Sequence[tp.Mapping]) -> str:
    """Stable content hash of a task's resolved arguments (12 hex digits)."""
    fields = entry.program.fields
    static = {
        key: value
        for key, value in static.items()
        if fields[key].in_id_at_default or value != fields[key].default
    }
    canonical = json.dumps(
        {"entry": entry.name, "static": static, "configs": [dict(r) for r in rows]},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
