"""Collect a study's task stores into one labelled score tensor, ``results/<study>/scores.zarr``.

Needs only the stores: each carries its own labels (``hparams_static`` + ``static`` for the values
fixed per task, one coordinate per vmapped hyperparameter along ``config``). The result has dims
``env``, one per hyperparameter that varies across the study, ``seed`` and ``update``; see
``parse_study``. Usage: ``python -m sweepax.results.parse [STUDY_DIR ...] [--discounted]``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import sys
import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from rich.console import Console
from rich.progress import track

from sweepax import files
from sweepax.console import make_console
from sweepax.errors import UserError, cli
from sweepax.results import pobax_pickles
from sweepax.results.store import (
    COMPLETE,
    CORRUPT,
    UNVERIFIABLE,
    Checked,
    Plain,
    StoreState,
    all_complete_stores,
    check_store,
    layout,
    open_store,
    plain,
    read_ahead,
    read_arrays,
    read_plain,
    seal,
    task_store_paths,
)
from sweepax.results.values import coord_values, jsonable, nanmean

SCORES = "scores.zarr"
WRITE_CHUNKS = 2  # chunks of scores.zarr encoded at once
REPORT_BYTES = 2**20  # the printed summary's means are taken this much of the curves at a time
ENV = "env"
NOT_LABELS = ("env", "seed", "n_seeds")
REASON_MISSING = "missing (task {task_id} has no complete store)"
REASON_NOT_PLANNED = "not planned (excluded or never run)"


def _py(value: tp.Any) -> tp.Any:
    """A coordinate or JSON value as a plain hashable Python scalar."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value


def _sort_key(value: tp.Any) -> tuple:
    """Sort numbers numerically, then strings; None last. Works on mixed types."""
    if value is None:
        return (2, "")
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value))


class Content(tp.NamedTuple):
    """What ``fill`` needs of a store, without holding its data: seeds, updates, env steps, its
    data variables (``name -> (dtype, per update)``) and how to load their values from the
    store's path. Stores of one shape share one ``Content``."""

    seeds: list[int]
    n_update: int
    env_steps: np.ndarray
    variables: dict[str, tuple[np.dtype, bool]]
    load: tp.Callable[[Path | str], dict[str, np.ndarray]]  # var -> (config, seed[, update])


def dataset_content(ds: xr.Dataset) -> Content:
    """``Content`` of an open Dataset (a store written before consolidated metadata, a test's)."""
    return Content(
        seeds=[int(x) for x in ds["seed"].values.tolist()],
        n_update=int(ds.sizes.get("update", 0)),
        env_steps=np.asarray(ds["env_steps"].values),
        variables={n: (v.dtype, "update" in v.dims) for n, v in ds.data_vars.items()},
        load=lambda path: {n: np.asarray(ds[n].values) for n in ds.data_vars},
    )


class TaskStore(tp.NamedTuple):
    """One complete task store as parse reads it: its labels and ``Content``, not its data.
    A study's stores share their label names, values and attributes (one copy of each, see
    ``_one_copy``), so what a store costs beyond them is a few tuples."""

    index: int
    task_id: str
    path: str  # as text: the one string ``attrs["stores"]`` and ``Content.load`` use too
    completed_at: str
    env: tp.Any
    names: tuple[str, ...]  # ENV, then the store's label names (the study's after ``align``)
    rows: tuple[tuple[tp.Any, ...], ...]  # per config row, its value of each of ``names``
    content: Content
    attrs: dict[str, tp.Any]  # the attributes parse uses (``KEPT_ATTRS``)

    def load(self) -> dict[str, np.ndarray]:
        """The store's data variables (``Content.load``)."""
        return self.content.load(self.path)

    def labels(self, row: int) -> dict[str, tp.Any]:
        """``{ENV: env, name: value}`` of config row ``row``."""
        return dict(zip(self.names, self.rows[row], strict=True))


KEPT_ATTRS = ("study", "entry", "hparams_static", "hparams_vmapped")


ABSENT = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()  # a label not given


class PlannedCell(tp.NamedTuple):
    """The cells a manifest plans for one config row of a task: its labels, its seeds and the
    task that should provide them."""

    labels: tuple[tp.Any, ...]  # value of env and of each label name, ``ABSENT`` if not given
    seeds: tuple[int, ...]
    task_id: str


def read_stores(
    study_dir: Path, progress: bool = False, same: dict[tp.Any, tp.Any] | None = None
) -> tuple[list[StoreState], list[TaskStore], list[StoreState]]:
    """Check every store of the study in full (``study_stores(full=True)``) and, in the same
    read, the labels and ``Content`` of each complete one, not its data: ``(states, stores,
    unreadable)``, states and stores oldest first, a store that fails to decode being corrupt
    with the error. ``same``: one copy of what many stores share (see ``_one_copy``)."""
    same = {} if same is None else same

    def read(path: Path) -> tuple[StoreState, tp.Any, Exception | None]:
        checked = check_store(path, full=True, keep=True)
        if not checked.state.complete:
            return checked.state, None, None
        try:  # the state's path: its text, cached, is the one string of the store's path
            return checked.state, read_content(checked.state.path, same, checked), None
        except Exception as err:  # any decode error: the store is damaged, not parse
            return checked.state, None, err

    paths = task_store_paths(study_dir)
    states, read_back, unreadable = [], [], []
    for state, content, err in track(
        read_ahead(read, paths), total=len(paths), description="reading stores",
        disable=not progress, transient=True,
    ):  # fmt: skip
        states.append(state)
        if err is not None:
            unreadable.append(_unreadable(state, err))
        elif content is not None:
            attrs, content, n_config, coords = content
            env, names, rows = store_labels(attrs, n_config, coords, state.path, same)
            kept = _one_copy(same, {k: _one_copy(same, attrs[k]) for k in KEPT_ATTRS if k in attrs})
            _value(same, state.task_id)  # the manifest's task ids become this one copy
            read_back.append((state, env, names, rows, content, kept))
    states.sort(key=_oldest_first)
    read_back.sort(key=lambda r: _oldest_first(r[0]))
    stores = [
        TaskStore(i, s.task_id, str(s.path), str(s.completed_at), env, names, rows, content, kept)
        for i, (s, env, names, rows, content, kept) in enumerate(read_back)
    ]
    return states, stores, unreadable


def _oldest_first(state: StoreState) -> tuple[str, str]:
    return (state.completed_at or "", state.path.name)


def _one_copy(same: dict[tp.Any, tp.Any], value: tp.Any) -> tp.Any:
    """``value``, or an equal one seen before (``same`` remembers them): thousands of stores
    then hold one copy of their identical label names, variables and env steps."""
    if isinstance(value, np.ndarray):
        key: tp.Any = ("array", value.dtype.str, value.shape, value.tobytes())
    else:
        key = ("json", type(value).__name__, json.dumps(value, sort_keys=True, default=str))
    return same.setdefault(key, value)


def _value(same: dict[tp.Any, tp.Any], value: tp.Any) -> tp.Any:
    """``_one_copy`` of a label value or name (a plain scalar, ``_py``), keyed by its type and,
    for a float, its ``repr`` (NaN equals itself, -0.0 stays apart from 0.0)."""
    key = ("value", type(value), repr(value) if isinstance(value, float) else value)
    return same.setdefault(key, value)


def read_content(
    path: Path,
    same: dict[tp.Any, tp.Any] | None = None,
    checked: Checked | None = None,
) -> tuple[dict[str, tp.Any], Content, int, dict[str, list[tp.Any]]]:
    """``(attrs, content, n_config, coords)`` of one store: its attributes, its ``Content``, its
    number of config rows and the values of its coordinates along ``config`` (the vmapped
    labels), read from its root metadata and its small coordinate arrays. ``same``: see
    ``_one_copy``; ``checked``: the store's ``check_store(keep=True)``, whose root document and
    checked bytes are used instead of reading the files again."""
    same = {} if same is None else same
    where = layout(path, checked.doc if checked else None)
    how = {} if where is None else {n: _plain(same, n, m) for n, m in where.arrays.items()}
    if where is None or any(h is None for h in how.values()):
        ds = open_store(path)
        for var in ds.coords.values():
            var.load()
        vmapped = {n: ds[n].values.tolist() for n in ds.coords if ds[n].dims == ("config",)}
        return ds.attrs, dataset_content(ds), int(ds.sizes.get("config", 1)), vmapped
    along = [n for n in where.coords if where.dims(n) == ("config",)]
    small = read_arrays(path, ["seed", "env_steps", *along], where, checked and checked.data)
    variables = {
        n: (how[n].dtype.newbyteorder("="), "update" in where.dims(n)) for n in where.data_vars
    }
    sizes = {d: n for v in where.arrays for d, n in zip(where.dims(v), where.shape(v), strict=True)}
    arrays = tuple((n, how[n]) for n in where.data_vars)  # how fill decodes the data
    arrays = same.setdefault(arrays, arrays)
    content = Content(
        seeds=_one_copy(same, [int(x) for x in small["seed"].tolist()]),
        n_update=int(sizes.get("update", 0)),
        env_steps=_one_copy(same, small["env_steps"]),
        variables=_one_copy(same, variables),
        load=same.setdefault(("load", arrays), functools.partial(_read_plain, arrays)),
    )
    seeds, n_update, steps, variables, load = content  # each one copy already: keyed by id
    content = same.setdefault(
        ("content", id(seeds), n_update, id(steps), id(variables), id(load)), content
    )
    return where.attrs, content, int(sizes.get("config", 1)), {n: small[n].tolist() for n in along}


def _read_plain(arrays: tp.Iterable[tuple[str, Plain]], path: Path | str) -> dict[str, np.ndarray]:
    """``read_plain(path, arrays)``."""
    return read_plain(path, arrays)


def _plain(same: dict[tp.Any, tp.Any], name: str, meta: dict[str, tp.Any]) -> Plain | None:
    """``plain(meta)``, reused when array ``name`` of the store read before had the same
    metadata (the stores of a study share theirs: comparing is cheaper than reading it)."""
    seen = same.get(("plain", name))
    if seen is not None and seen[0] == meta:
        return seen[1]
    how = plain(meta)
    same[("plain", name)] = (meta, how)
    return how


def _unreadable(state: StoreState, err: Exception) -> StoreState:
    reason = f"unreadable ({type(err).__name__}: {err})".replace("\n", " ")
    return state._replace(state=CORRUPT, reason=reason)


class UnreadableStoreError(Exception):
    """A store's data failed to decode while filling the tensor."""

    def __init__(self, store: TaskStore, err: Exception):
        super().__init__(f"{store.path}: {err}")
        self.store, self.err = store, err


def store_labels(
    attrs: tp.Mapping[str, tp.Any],
    n_config: int,
    coords: tp.Mapping[str, list[tp.Any]],
    path: Path,
    same: dict[tp.Any, tp.Any] | None = None,
) -> tuple[tp.Any, tuple[str, ...], tuple[tuple[tp.Any, ...], ...]]:
    """``(env, names, rows)``: a store's env, its label names and the values of each of its
    ``n_config`` config rows, from its attributes and its coordinates along ``config``
    (``coords``). ``same``: see ``_one_copy``; values equal to one seen before are that one."""
    same = {} if same is None else same
    static = attrs.get("static") or {}
    args = attrs.get("args") or {}
    env = static.get(ENV, args.get(ENV))
    if env is None:
        raise UserError(
            f"{path}: attrs 'static' has no 'env'; re-run the task with a current "
            "sweepax so the store records its labels"
        )
    rows: list[dict[str, tp.Any]] = [{} for _ in range(n_config)]
    for name in attrs.get("hparams_static") or []:
        if name in NOT_LABELS:
            continue
        value = _py(static.get(name, args.get(name)))
        for row in rows:
            row[name] = value
    for name in attrs.get("hparams_vmapped") or []:
        values = coords[name] if name in coords else [None] * n_config
        for row, value in zip(rows, values, strict=True):
            row[name] = _py(value)
    env = _value(same, _py(env))
    names = _one_copy(same, (ENV, *(rows[0] if rows else ())))
    rows_of_values = tuple(
        tuple(_value(same, row[n]) if n != ENV else env for n in names) for row in rows
    )
    return env, names, rows_of_values


def align(
    stores: list[TaskStore], names: list[str], same: dict[tp.Any, tp.Any] | None = None
) -> list[TaskStore]:
    """``stores`` with their rows over ``[ENV, *names]`` (None for a name a store has not),
    one copy of each distinct row (``_one_copy``): a planned cell with a store's labels
    (``read_manifest``) then costs no copy of them."""
    same = {} if same is None else same
    keys = _one_copy(same, (ENV, *names))
    out = []
    for s in stores:
        if s.names == keys:  # the usual study: every store has every label, in this order
            rows = tuple(_row(same, row) for row in s.rows)
        else:
            at = [s.names.index(n) if n in s.names else None for n in keys]
            rows = tuple(
                _row(same, tuple(None if k is None else row[k] for k in at)) for row in s.rows
            )
        same_rows = all(a is b for a, b in zip(rows, s.rows, strict=True))
        out.append(s._replace(names=keys) if same_rows else s._replace(names=keys, rows=rows))
    return out


def _row(same: dict[tp.Any, tp.Any], row: tuple[tp.Any, ...]) -> tuple[tp.Any, ...]:
    """``row`` (label values, each ``_value``), or an equal one seen before."""
    return same.setdefault("rows", {}).setdefault(row, row)


def label_names(stores: list[TaskStore]) -> list[str]:
    """Static label names in declaration order as stored, then vmapped ones (first-seen order)."""
    static: list[str] = []
    vmapped: list[str] = []
    for s in stores:
        for name in s.attrs.get("hparams_static") or []:
            if name not in NOT_LABELS and name not in static:
                static.append(name)
        for name in s.attrs.get("hparams_vmapped") or []:
            if name not in vmapped:
                vmapped.append(name)
    return static + [n for n in vmapped if n not in static]


def find_manifest(study: str, manifest: Path | None = None) -> Path | None:
    """``manifest`` if given (it must exist), else ``runs/<study>.json`` if it exists."""
    if manifest is not None:
        if not Path(manifest).is_file():
            raise UserError(
                f"{manifest}: no such manifest; pass --manifest runs/<study>.json or "
                "leave it out (parse needs only the stores)"
            )
        return Path(manifest)
    default = Path("runs") / f"{study}.json"
    return default if default.is_file() else None


def read_manifest(
    path: Path, names: list[str], same: dict[tp.Any, tp.Any] | None = None
) -> list[PlannedCell]:
    """Every cell a manifest (``runs/<study>.json``) plans, from its ``tasks``: one
    ``PlannedCell`` per config row of a task, its labels in the order ``[ENV, *names]``.
    ``same``: see ``_one_copy`` (the stores' values, so the planned ones cost no more)."""
    same = {} if same is None else same
    keys = [ENV, *names]
    try:
        doc = json.loads(path.read_text())
        tasks = doc["tasks"]
        cells = []
        for task in tasks:
            static = task.get("static") or {}
            base = {n: _py(static[n]) for n in names if n in static}
            base[ENV] = _py(static.get(ENV))
            seeds = _one_copy(same, tuple(int(seed) for seed in task["seeds"]))
            task_id = _value(same, str(task["task_id"]))
            for config in task.get("configs") or [{}]:
                labels = dict(base)
                labels.update({n: _py(config[n]) for n in names if n in config})
                values = tuple(_value(same, labels[k]) if k in labels else ABSENT for k in keys)
                cells.append(PlannedCell(_row(same, values), seeds, task_id))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(
            f"{path}: not a sweepax manifest ({type(err).__name__}: {err}); regenerate it with "
            "`nox -s write_jobs`, or pass --manifest to another one"
        ) from None
    return cells


class Grid(tp.NamedTuple):
    """The tensor's coordinates: sorted values of env and every label, which labels vary."""

    coords: dict[str, list[tp.Any]]  # env and every label name -> sorted values
    varying: list[str]  # label names with more than one value: the hyperparameter dims
    fixed: dict[str, tp.Any]  # label names with one value -> that value
    seeds: list[int]
    n_update: int
    pos: dict[str, dict[tp.Any, int]]  # env and every varying name -> value -> index

    @property
    def shape(self) -> tuple[int, ...]:
        """Cell shape: (env, *varying, seed)."""
        return (
            len(self.coords[ENV]),
            *(len(self.coords[n]) for n in self.varying),
            len(self.seeds),
        )

    def head(self, labels: tp.Mapping[str, tp.Any]) -> tuple[int, ...]:
        """Index of ``labels`` along (env, *varying)."""
        return tuple(self.pos[n][labels.get(n)] for n in [ENV, *self.varying])


def coordinate_values(
    stores: list[TaskStore], planned: list[PlannedCell], names: list[str]
) -> Grid:
    """Every value any store (or a fully labelled planned cell) has, sorted per coordinate."""
    values: dict[str, set] = {n: set() for n in [ENV, *names]}
    seeds: set[int] = set()
    for s in stores:
        values[ENV].add(s.env)
        for n in names:
            if n in s.names:
                k = s.names.index(n)
                values[n].update(row[k] for row in s.rows)
            elif s.rows:
                values[n].add(None)
        seeds.update(s.content.seeds)
    for cell in planned:  # labels in the order [ENV, *names]
        if ABSENT not in cell.labels and cell.labels[0] is not None:
            for n, value in zip(values, cell.labels, strict=True):
                values[n].add(value)
            seeds.update(cell.seeds)
    coords = {n: sorted(v, key=_sort_key) for n, v in values.items()}
    varying = [n for n in names if len(coords[n]) > 1]
    return Grid(
        coords=coords,
        varying=varying,
        fixed={n: coords[n][0] for n in names if len(coords[n]) == 1},
        seeds=sorted(seeds),
        n_update=max((s.content.n_update for s in stores), default=0),
        pos={n: {v: i for i, v in enumerate(coords[n])} for n in [ENV, *varying]},
    )


class Tensor(tp.NamedTuple):
    """The arrays being filled: data variables, which store and row filled each cell, steps."""

    per_update: dict[str, np.ndarray]  # (*cell, update)
    final: dict[str, np.ndarray]  # (*cell)
    store_index: np.ndarray  # (*cell) int32, -1 where no store provides the cell
    config_index: np.ndarray  # (*cell) int32, -1 likewise
    env_steps: np.ndarray  # (update,) int64, or (env, *varying, update) float when stores differ


def allocate(stores: list[TaskStore], grid: Grid) -> Tensor:
    """NaN everywhere (-1 for the indices); a variable's dtype is the widest any store has, at
    least float32."""
    per_update, final = [], []
    dtypes: dict[str, np.dtype] = {}
    for s in stores:
        for name, (dtype, along_update) in s.content.variables.items():
            if name not in per_update and name not in final:
                (per_update if along_update else final).append(name)
            dtypes[name] = np.result_type(dtypes.get(name, np.float32), dtype, np.float32)
    shape = grid.shape
    first = np.asarray(stores[0].content.env_steps if stores else [], np.float64)
    if all(
        s.content.env_steps is stores[0].content.env_steps
        or np.array_equal(first, np.asarray(s.content.env_steps, np.float64))
        for s in stores[1:]
    ):  # one copy of the steps many stores share: compared by identity first
        env_steps = first.astype(np.int64)
    else:
        env_steps = np.full((*shape[:-1], grid.n_update), np.nan)
    return Tensor(
        per_update={n: np.full((*shape, grid.n_update), np.nan, dtypes[n]) for n in per_update},
        final={n: np.full(shape, np.nan, dtypes[n]) for n in final},
        store_index=np.full(shape, -1, np.int32),
        config_index=np.full(shape, -1, np.int32),
        env_steps=env_steps,
    )


def fill(stores: list[TaskStore], grid: Grid, tensor: Tensor) -> collections.Counter:
    """Copy every store's values into ``tensor``, newest ``completed_at`` first, so the newest
    store providing a cell wins it; returns ``{(winner index, loser index): cells}``. A store
    whose data fails to decode raises ``UnreadableStoreError`` before it claims any cell."""
    superseded: collections.Counter = collections.Counter()
    seed_pos = {s: i for i, s in enumerate(grid.seeds)}

    def load(s: TaskStore) -> tuple[dict[str, np.ndarray] | None, Exception | None]:
        try:
            return s.load(), None
        except Exception as err:  # any decode error: the store is damaged, not parse
            return None, err

    newest_first = sorted(
        stores, key=lambda s: (s.completed_at, os.path.basename(s.path)), reverse=True
    )
    for s, (arrays, err) in zip(newest_first, read_ahead(load, newest_first), strict=True):
        if err is not None:
            raise UnreadableStoreError(s, err) from err
        u = s.content.n_update
        for c in range(len(s.rows)):
            head = grid.head(s.labels(c))
            if tensor.env_steps.ndim > 1:
                tensor.env_steps[head][:u] = s.content.env_steps
            owner = tensor.store_index[head]  # (seed,): which store won each cell so far
            ks, cells = [], []
            for k, seed in enumerate(s.content.seeds):
                j = seed_pos[seed]
                if owner[j] >= 0:
                    superseded[(int(owner[j]), s.index)] += 1
                    continue
                owner[j] = s.index
                ks.append(k)
                cells.append(j)
            if not ks:
                continue
            tensor.config_index[head][cells] = c
            for n, arr in arrays.items():
                if n in tensor.per_update:
                    tensor.per_update[n][head][cells, :u] = arr[c, ks]
                else:
                    tensor.final[n][head][cells] = arr[c, ks]
    return superseded


def missing_cells(
    grid: Grid,
    store_index: np.ndarray,
    planned: list[PlannedCell],
    corrupt: tp.Mapping[str, str] | None = None,
) -> list[dict[str, tp.Any]]:
    """Cells no store filled, one entry per (labels, task) with its seeds; the task is the
    manifest's where it planned the cell, else None (not planned). ``corrupt`` maps a task id
    to the reason its cells are missing when its only store is corrupt. ``planned``'s labels
    are in the order of ``grid.coords`` (``[ENV, *names]``)."""
    corrupt = corrupt or {}
    seed_pos = {seed: i for i, seed in enumerate(grid.seeds)}
    task_of = {}  # only the missing cells a task plans
    for cell in planned:
        labels = {n: v for n, v in zip(grid.coords, cell.labels, strict=True) if v is not ABSENT}
        if labels.get(ENV) is None or any(n not in labels for n in [*grid.varying, *grid.fixed]):
            continue
        if any(labels[n] != grid.fixed[n] for n in grid.fixed):
            continue
        head = grid.head(labels)
        for seed in cell.seeds:
            if store_index[(*head, seed_pos[seed])] < 0:
                task_of[(*head, seed_pos[seed])] = cell.task_id
    groups: dict[tuple, list[int]] = collections.defaultdict(list)
    for cell in zip(*np.nonzero(store_index < 0), strict=True):
        cell = tuple(int(i) for i in cell)
        groups[(cell[:-1], task_of.get(cell))].append(grid.seeds[cell[-1]])
    missing = []
    for (head, task_id), seeds in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        entry = {ENV: grid.coords[ENV][head[0]]}
        entry.update({n: grid.coords[n][i] for n, i in zip(grid.varying, head[1:], strict=True)})
        entry.update(seeds=sorted(seeds), task_id=task_id)
        if task_id in corrupt:
            entry["reason"] = corrupt[task_id]
        elif task_id:
            entry["reason"] = REASON_MISSING.format(task_id=task_id)
        else:
            entry["reason"] = REASON_NOT_PLANNED
        missing.append(entry)
    return missing


def superseded_records(
    stores: list[TaskStore], superseded: collections.Counter
) -> list[dict[str, tp.Any]]:
    """``attrs["superseded"]``: per (newer, older) pair of stores, how many cells the newer won."""
    return [
        {
            "task_id": stores[loser].task_id,
            "path": str(stores[loser].path),
            "completed_at": stores[loser].completed_at,
            "superseded_by": {"task_id": stores[winner].task_id, "path": str(stores[winner].path)},
            "cells": count,
        }
        for (winner, loser), count in sorted(superseded.items())
    ]


def assemble(grid: Grid, tensor: Tensor, attrs: dict[str, tp.Any]) -> xr.Dataset:
    """The labelled Dataset (see ``parse_study``) from the filled arrays."""
    dims = (ENV, *grid.varying, "seed")
    coords: dict[str, tp.Any] = {ENV: (ENV, coord_values(grid.coords[ENV]))}
    coords.update({n: (n, coord_values(grid.coords[n])) for n in grid.varying})
    coords["seed"] = ("seed", np.asarray(grid.seeds, np.int64))
    coords["update"] = ("update", np.arange(grid.n_update, dtype=np.int64))
    if tensor.env_steps.ndim == 1:
        coords["env_steps"] = ("update", tensor.env_steps)
    else:
        coords["env_steps"] = ((*dims[:-1], "update"), tensor.env_steps)
    coords["store_index"] = (dims, tensor.store_index)
    coords["config_index"] = (dims, tensor.config_index)
    data_vars = {n: ((*dims, "update"), v) for n, v in tensor.per_update.items()}
    data_vars.update({n: (dims, v) for n, v in tensor.final.items()})
    return xr.Dataset(data_vars, coords=coords, attrs=jsonable(attrs))


def write_scores(scores: xr.Dataset, final: Path) -> Path:
    """Write ``scores`` under a hidden temporary name with its completion record (checked like
    a task store's), then swap it in for ``final``. Zarr encodes ``WRITE_CHUNKS`` chunks at a
    time (each a copy of its slice and its compressed bytes) and never sees the attributes
    (``seal`` writes them), so what writing takes beyond the tensor does not grow with it."""
    with files.building(final) as tmp, zarr.config.set({"async.concurrency": WRITE_CHUNKS}):
        keys_only = scores.copy(deep=False)  # the attributes (large: every store) go in last
        keys_only.attrs = dict.fromkeys(scores.attrs)
        keys_only.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
        seal(tmp, sorted(scores.variables), attributes=scores.attrs)
        return files.publish(tmp, final, replace=True)


def parse_study(
    study_dir: Path,
    manifest: Path | None = None,
    progress: bool = True,
    discounted: bool = False,
    console: Console | None = None,
) -> xr.Dataset:
    """Build the study's labelled score tensor and write ``study_dir/scores.zarr``, and beside
    it POBAX's ``parsed_hparam_scores[_discounted].pkl`` (``sweepax.results.pobax_pickles``).

    Parameters
    ----------
    study_dir
        ``results/<study>`` holding ``<task_id>.zarr`` stores; only intact stores are read.
    manifest
        Optional ``runs/<study>.json`` (default: that path relative to the cwd, if it exists); used
        only to name the task of a missing cell and to add planned values no store has yet.
    progress
        Show a progress bar while reading stores.
    discounted
        Recorded in ``attrs["discounted"]``; the printed per-env summary shows
        ``discounted_return`` instead of ``episode_return``. Both are always in the tensor.
    console
        Where to print (default: stdout).

    Returns
    -------
    xr.Dataset
        Dims ``env``, one per varying hyperparameter (static labels in declaration order, then
        vmapped ones; values sorted), ``seed``, ``update``. Per-update metrics have all of them,
        ``final_*`` all but ``update``. Coords ``env_steps`` (on ``update`` when the same for every
        store, else also on ``env`` and the hyperparameter dims), ``store_index`` / ``config_index``
        (which store and config row filled each cell, -1 if none). Attrs: ``study``, ``stores``,
        ``entries``, ``hparams``, ``fixed``, ``missing``, ``corrupt``, ``unverified``,
        ``superseded``, ``discounted``. Cells no store provides are NaN and listed in
        ``missing``; when two stores provide the same cell the newest ``completed_at`` wins and
        the other is listed in ``superseded``. Every store is checked against its completion
        record (sha256 of every file) first: a corrupt one (or one whose data fails to decode)
        is never read, but listed in ``corrupt`` with the reason, and the cells of its task are
        missing with reason ``corrupt store ...`` unless an intact store of the same task
        provides them. Stores written before checksums are read and listed in ``unverified``.
    """
    console = console or make_console()
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise UserError(
            f"{study_dir}: no such study folder; pass results/<study> (see `ls results`)"
        )
    grid, tensor, attrs = collect(study_dir, manifest, progress, discounted)
    scores = assemble(grid, tensor, attrs)
    del tensor  # the Dataset holds the arrays now
    write_scores(scores, study_dir / SCORES)
    pobax_pickles.write_parsed(study_dir, scores)
    _report(console, study_dir, scores, discounted)
    return scores


def collect(
    study_dir: Path, manifest: Path | None, progress: bool, discounted: bool
) -> tuple[Grid, Tensor, dict[str, tp.Any]]:
    """``(grid, tensor, attrs)`` of the study (see ``parse_study``): its stores read and
    checked, the tensor filled, what was missing, corrupt or superseded. What parse holds per
    store and per planned cell is dropped when this returns, before ``scores.zarr`` is written."""
    same: dict[tp.Any, tp.Any] = {}
    states, stores, unreadable = read_stores(study_dir, progress, same)
    corrupt = [s for s in states if s.state == CORRUPT] + unreadable
    unverified = {str(s.path) for s in states if s.complete and not s.verified}
    del states  # what parse needs of each complete store is in ``stores``
    _need_stores(study_dir, stores, corrupt)
    study = str(stores[-1].attrs.get("study") or study_dir.name)
    names = label_names(stores)
    stores = align(stores, names, same)
    manifest_path = find_manifest(study, manifest)
    planned = read_manifest(manifest_path, names, same) if manifest_path else []
    del same
    while True:  # a store that fails to decode is corrupt: set it aside and fill again
        grid = coordinate_values(stores, planned, names)
        tensor = allocate(stores, grid)
        try:
            superseded = fill(stores, grid, tensor)
            break
        except UnreadableStoreError as err:
            bad = err.store
            reason = UNVERIFIABLE if bad.path in unverified else ""
            state = StoreState(Path(bad.path), COMPLETE, reason, bad.task_id, bad.completed_at)
            corrupt.append(_unreadable(state, err.err))
            kept = [s for s in stores if s.path != err.store.path]
            stores = [s._replace(index=i) for i, s in enumerate(kept)]
            _need_stores(study_dir, stores, corrupt)
    corrupt_list = corrupt_records(corrupt, stores)
    attrs = {
        "study": study,
        "entries": sorted({str(s.attrs.get("entry")) for s in stores if s.attrs.get("entry")}),
        "hparams": grid.varying,
        "fixed": grid.fixed,
        "stores": [
            {"task_id": s.task_id, "path": str(s.path), "completed_at": s.completed_at}
            for s in stores
        ],
        "missing": missing_cells(grid, tensor.store_index, planned, _corrupt_reasons(corrupt_list)),
        "corrupt": corrupt_list,
        "unverified": [str(s.path) for s in stores if s.path in unverified],
        "superseded": superseded_records(stores, superseded),
        "discounted": bool(discounted),
        "manifest": str(manifest_path) if manifest_path else None,
        "manifest_sha256": files.sha256_file(manifest_path) if manifest_path else None,
        "parsed_at": files.utc_now("microseconds"),
    }
    return grid, tensor, attrs


def _need_stores(study_dir: Path, stores: list[TaskStore], corrupt: list[StoreState]) -> None:
    """A one-line ``UserError`` when no intact store is left to parse."""
    if stores:
        return
    if not corrupt:
        raise UserError(
            f"{study_dir}: no complete task stores (<task_id>.zarr); run the tasks first "
            "(`nox -s status` lists which are missing)"
        )
    first = corrupt[0]
    raise UserError(
        f"{study_dir}: no intact task stores, {len(corrupt)} corrupt ({first.path}: "
        f"{first.reason}); `nox -s verify -- {study_dir}` lists them, "
        f"`nox -s clean -- {study_dir} --corrupt` removes them so the tasks re-run"
    )


def corrupt_records(corrupt: list[StoreState], stores: list[TaskStore]) -> list[dict[str, tp.Any]]:
    """``attrs["corrupt"]``: each corrupt store's task, path, reason, and the intact store of
    the same task that provides its cells instead (``intact_copy``, None if there is none)."""
    intact = {s.task_id: str(s.path) for s in stores}
    return [
        {
            "task_id": c.task_id,
            "path": str(c.path),
            "reason": c.reason,
            "intact_copy": intact.get(c.task_id),
        }
        for c in sorted(corrupt, key=lambda c: c.path.name)
    ]


def _corrupt_reasons(corrupt: list[dict[str, tp.Any]]) -> dict[str, str]:
    """Task id -> why its cells are missing, for the tasks whose only stores are corrupt."""
    return {
        c["task_id"]: f"corrupt store {c['path']} ({c['reason']})"
        for c in corrupt
        if c["intact_copy"] is None
    }


def _labels_text(entry: dict[str, tp.Any], names: tp.Iterable[str]) -> str:
    return " ".join(f"{n}={entry[n]}" for n in names if n in entry)


def _report(console: Console, study_dir: Path, scores: xr.Dataset, discounted: bool) -> None:
    """Print what was parsed: dims, corrupt and unverified stores, superseded stores, missing
    cells, a per-env summary."""

    def say(text: str, style: str | None = None) -> None:
        console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    a = scores.attrs
    sizes = ", ".join(f"{d}: {n}" for d, n in scores.sizes.items())
    say(f"{a['study']}: {len(a['stores'])} stores -> {study_dir / SCORES} ({sizes})", "bold")
    if a["fixed"]:
        say("fixed: " + ", ".join(f"{k}={v}" for k, v in a["fixed"].items()))
    for c in a["corrupt"]:
        instead = (
            f"its cells come from {c['intact_copy']}"
            if c["intact_copy"]
            else "its cells are missing"
        )
        say(f"corrupt store: {c['path']} (task {c['task_id']}): {c['reason']}; {instead}", "red")
    if a["unverified"]:
        say(
            f"warning: {len(a['unverified'])} stores {UNVERIFIABLE} (e.g. {a['unverified'][0]})",
            "yellow",
        )
    for sup in a["superseded"]:
        say(
            f"duplicate cells: {sup['superseded_by']['path']} won over {sup['path']} "
            f"({sup['cells']} cells ignored, older completed_at)"
        )
    if a["missing"]:
        n_cells = sum(len(m["seeds"]) for m in a["missing"])
        tasks = sorted({m["task_id"] for m in a["missing"] if m["task_id"]})
        say(
            f"missing: {n_cells} (config, seed) cells are NaN"
            + (f"; tasks without a complete store: {', '.join(tasks)}" if tasks else ""),
            "yellow",
        )
        for m in a["missing"][:5]:
            say(f"  {_labels_text(m, [ENV, *a['hparams']])} seeds={m['seeds']}: {m['reason']}")
        if len(a["missing"]) > 5:
            say(f"  ... {len(a['missing']) - 5} more in attrs['missing']")
    metric = "discounted_return" if discounted else "episode_return"
    if metric not in scores:
        return
    hp_dims = list(a["hparams"])
    for env in scores[ENV].values.tolist():
        curve = scores[metric].sel({ENV: env}).transpose(*hp_dims, "seed", "update").values
        per_config = config_means(curve)
        ok = per_config[np.isfinite(per_config)]
        if ok.size:
            say(
                f"  {env}: {metric} (mean over updates and seeds) best {ok.max():.4g}, "
                f"median {np.median(ok):.4g} over {ok.size} configs"
            )
        else:
            say(f"  {env}: no {metric} data")


def config_means(curve: np.ndarray) -> np.ndarray:
    """Mean over updates, then seeds, of each config of ``curve`` (``(*configs, seed,
    update)``), flat in C order; NaN where nothing is finite. Taken a block of configs at a
    time (``REPORT_BYTES``): ``nanmean``'s masks and copies are never as large as the curves."""
    if curve.ndim <= 2 or curve.nbytes <= REPORT_BYTES:
        return nanmean(nanmean(curve, axis=-1), axis=-1).reshape(-1)
    return np.concatenate([config_means(block) for block in curve])


def study_dirs(args: list[str], results_dir: Path) -> list[Path]:
    """The study folders named on the command line (a path, or a name under ``results_dir``);
    with none, every folder under ``results_dir`` holding complete stores."""
    if not args:
        if not results_dir.is_dir():
            raise UserError(
                f"{results_dir}: no results folder; run some tasks first, or pass --results-dir"
            )
        found = [
            p
            for p in sorted(results_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".") and all_complete_stores(p)
        ]
        if not found:
            raise UserError(
                f"{results_dir}: no study folder holds complete task stores; run "
                "the tasks first (`nox -s run_local -- ...`)"
            )
        return found
    return [
        named_folder(arg, results_dir, f"pass results/<study> or a study name under {results_dir}")
        for arg in args
    ]


def named_folder(arg: str, results_dir: Path, fix: str, what: str = "study folder") -> Path:
    """The folder ``arg`` names: a path, else a name under ``results_dir``; ``UserError``
    ("no such <what>; <fix>") when neither is a folder."""
    path = Path(arg)
    if not path.is_dir() and (results_dir / arg).is_dir():
        path = results_dir / arg
    if not path.is_dir():
        raise UserError(f"{arg}: no such {what}; {fix}")
    return path


def add_study_arguments(p: argparse.ArgumentParser) -> None:
    """STUDY_DIR ... and --results-dir, shared by parse and best (resolved by ``study_dirs``)."""
    p.add_argument(
        "study_dirs",
        nargs="*",
        metavar="STUDY_DIR",
        help="results/<study> folders or study names (default: every study under "
        "--results-dir that has stores)",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        help="where study folders live (default: results)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sweepax.results.parse",
        description="Collect each study's task stores into results/<study>/scores.zarr "
        "(dims env, swept hyperparameters, seed, update; missing cells NaN and listed).",
    )
    add_study_arguments(p)
    p.add_argument(
        "--discounted",
        action="store_true",
        help="summarise discounted_return instead of episode_return in the printed "
        "per-env summary and set attrs['discounted']; scores.zarr always holds both",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="runs/<study>.json to name the tasks of missing cells (default: that "
        "file if it exists; only with one STUDY_DIR)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@cli
def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    args = _parser().parse_args(argv)
    dirs = study_dirs(args.study_dirs, args.results_dir)
    if args.manifest is not None and len(dirs) > 1:
        raise UserError("--manifest names one study's manifest; pass a single STUDY_DIR with it")
    for d in dirs:
        parse_study(
            d, manifest=args.manifest, progress=not args.no_progress, discounted=args.discounted
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
