"""One Zarr store per training task, written under a hidden name and renamed when complete.

Layout of ``results/<study>/<task_id>.zarr`` (Zarr format 3, consolidated metadata): data
variables named as the ``TrainMetrics`` fields with dims ``(config, seed, update)`` (per update) or
``(config, seed)`` (``final_*``); coordinates: one per vmapped hyperparameter along ``config``,
``seed``, ``update`` (0..U-1) and ``env_steps`` (update). Root attributes hold the study, task id,
entry, static and resolved arguments, spec path and hash, provenance, the label names
(``hparams_static``, ``hparams_vmapped``) and, written last, ``complete`` and ``completed_at``.
See https://zarr.readthedocs.io and https://docs.xarray.dev/en/stable/user-guide/io.html#zarr.
"""

from __future__ import annotations

import contextlib
import json
import os
import typing as tp
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from sweepax import files
from sweepax.results.values import coord_values, jsonable

STORE_SUFFIX = ".zarr"
SCRATCH_PREFIX = "reproduce-"
DIMS = ("config", "seed", "update")
_CHUNK_BYTES = 8 * 2**20


def _chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Whole arrays when small, else a block of whole config rows of at most ~8 MiB."""
    row = itemsize * int(np.prod(shape[1:], dtype=np.int64))
    rows = max(1, min(shape[0], _CHUNK_BYTES // max(row, 1)))
    return (rows, *shape[1:])


def build_dataset(
    metrics: tp.Mapping[str, np.ndarray],
    vmapped: tp.Mapping[str, tp.Sequence[float]],
    seeds: tp.Sequence[int],
    env_steps: np.ndarray,
) -> xr.Dataset:
    """The task's Dataset (no attrs), checking every shape against config x seed x update."""
    seeds = [int(s) for s in seeds]
    env_steps = np.asarray(env_steps)
    n_seed, n_update = len(seeds), int(env_steps.shape[0])
    n_config = None
    for name, values in vmapped.items():
        if n_config is None:
            n_config = len(values)
        elif len(values) != n_config:
            raise ValueError(f"vmapped {name!r} has {len(values)} values, expected {n_config}")
    data_vars = {}
    for name, value in metrics.items():
        arr = np.asarray(value)
        if n_config is None:
            n_config = arr.shape[0] if arr.ndim else 1
        dims = DIMS[:2] if name.startswith("final_") else DIMS
        want = (n_config, n_seed, n_update)[: len(dims)]
        if arr.shape != want:
            raise ValueError(f"metric {name!r} has shape {arr.shape}, expected {want} {dims}")
        data_vars[name] = (dims, arr)
    coords: dict[str, tp.Any] = {
        name: ("config", coord_values(values)) for name, values in vmapped.items()
    }
    coords["seed"] = ("seed", np.asarray(seeds, dtype=np.int64))
    coords["update"] = ("update", np.arange(n_update, dtype=np.int64))
    coords["env_steps"] = ("update", env_steps.astype(np.int64))
    return xr.Dataset(data_vars, coords=coords)


def _final_name(study_dir: Path, task_id: str) -> Path:
    """``<task_id>.zarr``, or a timestamped name when that exists (a re-run never clobbers)."""
    path = study_dir / f"{task_id}{STORE_SUFFIX}"
    if not path.exists():
        return path
    stamp = files.utc_stamp().removesuffix("Z")
    return study_dir / f"{task_id}.{stamp}{STORE_SUFFIX}"


def write_task_store(
    study_dir: Path,
    task_id: str,
    metrics: tp.Mapping[str, np.ndarray],
    vmapped: tp.Mapping[str, tp.Sequence[float]],
    seeds: tp.Sequence[int],
    env_steps: np.ndarray,
    attrs: tp.Mapping[str, tp.Any],
) -> Path:
    """Write one task's results atomically and return the path of the completed store.

    Parameters
    ----------
    study_dir
        ``results/<study>``; created if needed.
    task_id
        The task's stable id (from the manifest); the store is ``<task_id>.zarr``, or
        ``<task_id>.<UTC yyyymmddTHHMMSSffffff>.zarr`` when a store of that name already exists.
    metrics
        Every ``TrainMetrics`` field: per-update ones (config, seed, update), ``final_*`` ones
        (config, seed).
    vmapped
        One sequence of length n_config per swept hyperparameter (the values of each config row).
    seeds
        The seed of each run along ``seed``.
    env_steps
        (update,) cumulative environment steps at the end of each update.
    attrs
        JSON-able metadata (study, task_id, entry, static, args, spec_path, spec_hash, provenance,
        hparams_static); stored as given plus ``hparams_vmapped``, ``complete``, ``completed_at``.
    """
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    ds = build_dataset(metrics, vmapped, seeds, env_steps)
    encoding = {
        name: {"chunks": _chunks(var.shape, var.dtype.itemsize)}
        for name, var in ds.data_vars.items()
    }
    with files.building(study_dir / f"{task_id}{STORE_SUFFIX}") as tmp:
        ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False, encoding=encoding)
        group = zarr.open_group(tmp, mode="r+", zarr_format=3)
        meta = jsonable(dict(attrs))
        meta.update(task_id=task_id, hparams_vmapped=list(vmapped), arrays=sorted(ds.variables))
        group.update_attributes(meta)
        # The marker that makes the store count as a result; only the consolidated copy of the
        # metadata (so a plain ``xr.open_zarr`` opens it quietly) and the rename come after.
        group.update_attributes({"complete": True, "completed_at": files.utc_now("microseconds")})
        consolidate(tmp)
        try:
            final = files.publish(tmp, _final_name(study_dir, task_id))
        except OSError:  # another writer took the name in between
            final = files.publish(tmp, _final_name(study_dir, task_id))
    return final


def scratch_path(store_path: Path, task_id: str) -> Path:
    """The default results root of ``reproduce --run``: a hidden folder beside the store, named
    by this host and process (``files.temp_path``), so ``leftovers`` can tell when it is dead."""
    return files.temp_path(Path(store_path).parent / f"{SCRATCH_PREFIX}{task_id}")


def _root_attrs(path: Path) -> dict[str, tp.Any] | None:
    """The root group's attributes read straight from ``zarr.json`` (cheap), or None."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    return attrs if isinstance(attrs, dict) else None


def is_complete(path: Path) -> bool:
    """True when the store was marked complete and every array it lists is present."""
    path = Path(path)
    attrs = _root_attrs(path)
    if not attrs or attrs.get("complete") is not True or not attrs.get("completed_at"):
        return False
    arrays = attrs.get("arrays")
    if not isinstance(arrays, list) or not arrays:
        return False
    return all((path / name / "zarr.json").is_file() for name in arrays)


def store_info(path: Path) -> dict[str, tp.Any] | None:
    """``{task_id, path, completed_at}`` of a complete store, else None."""
    if not is_complete(path):
        return None
    attrs = _root_attrs(path) or {}
    task_id = attrs.get("task_id") or Path(path).name.split(".")[0]
    return {"task_id": str(task_id), "path": Path(path), "completed_at": attrs["completed_at"]}


def all_complete_stores(study_dir: Path) -> list[dict[str, tp.Any]]:
    """Every complete store in ``study_dir`` (re-runs included), oldest ``completed_at`` first.

    Hidden entries (temporary stores of running or killed writers) and ``scores.zarr`` are skipped.
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        return []
    out = []
    for path in sorted(study_dir.iterdir()):
        if path.name.startswith(".") or not path.name.endswith(STORE_SUFFIX):
            continue
        if path.name == "scores.zarr" or not path.is_dir():
            continue
        info = store_info(path)
        if info is not None:
            out.append(info)
    out.sort(key=lambda i: (i["completed_at"], i["path"].name))
    return out


def complete_stores(study_dir: Path) -> dict[str, Path]:
    """The winning store per task id: the complete one with the newest ``completed_at``."""
    winners: dict[str, Path] = {}
    for info in all_complete_stores(study_dir):  # oldest first: later ones overwrite
        winners[info["task_id"]] = info["path"]
    return dict(sorted(winners.items()))


def consolidate(path: Path) -> None:
    """Embed the children's metadata in the root ``zarr.json`` (what ``xr.open_zarr`` looks for
    first), without zarr's warning that this is not yet in the Zarr 3 spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Consolidated metadata is currently not part", category=UserWarning
        )
        zarr.consolidate_metadata(Path(path), zarr_format=3)


def open_zarr(path: Path) -> xr.Dataset:
    """``xr.open_zarr`` (lazy, no dask), using consolidated metadata where the store has it."""
    try:
        with open(Path(path) / "zarr.json") as f:
            consolidated = "consolidated_metadata" in json.load(f)
    except (OSError, ValueError):
        consolidated = False
    return xr.open_zarr(Path(path), consolidated=consolidated, zarr_format=3, chunks=None)


def read_attrs(attrs: tp.Mapping[str, tp.Any] | Path | str) -> dict[str, tp.Any]:
    """A store's attributes (given its path, or the attrs mapping itself), with any
    JSON-string-encoded dict or list decoded back."""
    if isinstance(attrs, str | os.PathLike):
        path, attrs = attrs, _root_attrs(Path(attrs))
        if attrs is None:
            raise FileNotFoundError(f"{path}: no zarr group metadata (zarr.json)")
    out = {}
    for key, value in attrs.items():
        if isinstance(value, str) and value.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[key] = value
    return out


def open_store(path: Path) -> xr.Dataset:
    """Open one task store lazily (attrs decoded with ``read_attrs``)."""
    ds = open_zarr(path)
    ds.attrs = read_attrs(ds.attrs)
    return ds
