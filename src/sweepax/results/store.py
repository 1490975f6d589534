"""One Zarr store per training task, written under a hidden name and renamed when complete.

Layout of ``results/<study>/<task_id>.zarr`` (Zarr format 3, consolidated metadata): data
variables named as the ``TrainMetrics`` fields with dims ``(config, seed, update)`` (per update) or
``(config, seed)`` (``final_*``); coordinates: one per vmapped hyperparameter along ``config``,
``seed``, ``update`` (0..U-1) and ``env_steps`` (update). Root attributes hold the study, task id,
entry, static and resolved arguments, spec path and hash, provenance, the label names
(``hparams_static``, ``hparams_vmapped``) and, written last, the completion record: ``arrays``,
``files`` (every file's size and sha256), ``complete`` and ``completed_at`` (see ``seal``).
Readers verify it (``store_state``); ``leftovers`` finds what killed writers left behind.
See https://zarr.readthedocs.io and https://docs.xarray.dev/en/stable/user-guide/io.html#zarr.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import ctypes
import functools
import hashlib
import json
import os
import re
import socket
import threading
import typing as tp
import warnings
from concurrent.futures import ThreadPoolExecutor
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


PARAMS_GROUP = "final_params"  # sub-group of a task store holding the final network parameters


def write_task_store(
    study_dir: Path,
    task_id: str,
    metrics: tp.Mapping[str, np.ndarray],
    vmapped: tp.Mapping[str, tp.Sequence[float]],
    seeds: tp.Sequence[int],
    env_steps: np.ndarray,
    attrs: tp.Mapping[str, tp.Any],
    groups: tp.Mapping[str, xr.Dataset] | None = None,
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
        hparams_static); stored as given plus ``hparams_vmapped`` and the completion record
        (``seal``).
    groups
        Further Datasets stored as sub-groups of the store (``PARAMS_GROUP``: the final network
        parameters), read with ``xr.open_zarr(path, group=name)``; their files are in the
        completion record like every other.
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
        for name, group in (groups or {}).items():
            group.to_zarr(tmp, group=name, mode="w-", zarr_format=3, consolidated=False)
        meta = jsonable(dict(attrs))
        meta.update(task_id=task_id, hparams_vmapped=list(vmapped))
        zarr.open_group(tmp, mode="r+", zarr_format=3).update_attributes(meta)
        seal(tmp, sorted(ds.variables))
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


# --- completion record ----------------------------------------------------------------------------
ROOT_META = "zarr.json"
ROOT_DIGEST = "root_sha256"
COMPLETE, CORRUPT, INCOMPLETE = "complete", "corrupt", "incomplete"
UNVERIFIABLE = "written before checksums; `nox -s verify` cannot check it"
NO_RECORD = "no completion record (its writer did not finish)"


def file_record(path: Path) -> dict[str, dict[str, tp.Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file in the store but the root
    ``zarr.json`` (which holds this record): each array's chunks and metadata."""
    path = Path(path)
    record = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel != ROOT_META:
            record[rel] = {"size": file.stat().st_size, "sha256": files.sha256_file(file)}
    return record


def root_digest(doc: tp.Mapping[str, tp.Any]) -> str:
    """sha256 of a root ``zarr.json`` document as canonical JSON (sorted keys, no spaces),
    leaving out its own ``root_sha256`` attribute: covers the labels, the provenance, the
    completion record and the consolidated metadata."""
    attrs = {k: v for k, v in (doc.get("attributes") or {}).items() if k != ROOT_DIGEST}
    text = json.dumps({**doc, "attributes": attrs}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def seal(
    path: Path, arrays: tp.Sequence[str], attributes: tp.Mapping[str, tp.Any] | None = None
) -> None:
    """Write the completion record of a finished (still hidden) store: ``arrays``, ``files``
    (``file_record``), ``complete`` and ``completed_at``, then the consolidated metadata (so a
    plain ``xr.open_zarr`` opens it quietly), then ``root_sha256`` (``root_digest``) into the
    root ``zarr.json``. Only the rename to the final name comes after. ``attributes``: values
    of root attributes the store was written with (each key already there, e.g. as None) that
    go in only with the digest, so zarr's own steps never decode and encode them again (large
    ones, such as a study's list of stores)."""
    group = zarr.open_group(path, mode="r+", zarr_format=3)
    record = file_record(path)
    group.update_attributes(
        {
            "arrays": list(arrays),
            "files": record,
            "complete": True,
            "completed_at": files.utc_now("microseconds"),
        }
    )
    consolidate(path)
    root = Path(path) / ROOT_META
    doc = json.loads(root.read_bytes())
    if attributes:
        missing = set(attributes) - set(doc["attributes"])
        if missing:
            raise ValueError(f"{path}: seal(attributes=...) names {sorted(missing)}, not written")
        doc["attributes"].update(attributes)
    doc["attributes"][ROOT_DIGEST] = root_digest(doc)
    with open(root, "w") as f:  # written as it is encoded: no copy of a large document
        json.dump(doc, f, indent=2)


class StoreState(tp.NamedTuple):
    """What a store under a final name is: ``complete``, ``corrupt`` or ``incomplete``."""

    path: Path
    state: str
    reason: str = ""  # why corrupt or incomplete; for a complete store, UNVERIFIABLE or ""
    task_id: str = ""
    completed_at: str | None = None

    @property
    def complete(self) -> bool:
        """Counts as a result (verified, or written before checksums)."""
        return self.state == COMPLETE

    @property
    def verified(self) -> bool:
        """Complete and its completion record checked."""
        return self.state == COMPLETE and not self.reason


def _what(rel: str) -> str:
    """How a problem names a file of the store: ``chunk x/c/0/0``, ``metadata x/zarr.json``."""
    parts = rel.split("/")
    if len(parts) > 2 and parts[1] == "c":
        return f"chunk {rel}"
    return f"metadata {rel}" if parts[-1] == ROOT_META else f"file {rel}"


KEEP_BYTES = 1 << 16  # ``check_store(keep=True)`` keeps the checked bytes of files this small
_BLOCK = 1 << 20


def _check_file(
    file: str, rel: str, want: tp.Mapping[str, tp.Any], full: bool, keep: bool
) -> tuple[str, bytes | None]:
    """``(problem or "", bytes or None)`` of one file the record lists: missing, unreadable,
    wrong size, and with ``full`` a checksum mismatch (the file is read once, and with ``keep``
    its bytes come back when it has at most ``KEEP_BYTES``). ``TypeError``/``KeyError`` when
    the record's entry is not ``{"size": int, "sha256": str}``."""
    size, sha256 = want["size"], want["sha256"]
    if not isinstance(size, int):
        raise TypeError(f"size of {rel} is not an integer")
    try:
        if not full:
            got = os.stat(file).st_size
            return (f"{_what(rel)} size {got} != {size}" if got != size else ""), None
        fd = os.open(file, os.O_RDONLY)
    except FileNotFoundError:
        return f"{_what(rel)} missing", None
    except OSError as err:
        return f"{_what(rel)} unreadable ({err.strerror})", None
    digest, blocks, kept, left = hashlib.sha256(), [], keep and size <= KEEP_BYTES, size + 1
    try:  # read one byte more than recorded: a longer file shows without a stat
        while left and (block := os.read(fd, min(left, _BLOCK))):
            digest.update(block)
            left -= len(block)
            if kept:
                blocks.append(block)
        if left != 1:
            return f"{_what(rel)} size {os.fstat(fd).st_size} != {size}", None
    except OSError as err:
        return f"{_what(rel)} unreadable ({err.strerror})", None
    finally:
        os.close(fd)
    if digest.hexdigest() != sha256:
        return f"{_what(rel)} checksum mismatch", None
    return "", b"".join(blocks) if kept else None


def _file_problems(
    path: Path, record: tp.Mapping[str, tp.Any], full: bool, keep: bool = False
) -> tuple[list[str], dict[str, bytes]]:
    """``(problems, kept)``: what is wrong with the files ``record`` lists (missing, wrong size,
    and with ``full`` a checksum mismatch or a file the record does not list), and with ``keep``
    the checked bytes of its small files (``KEEP_BYTES``) by relative path."""
    problems, kept = [], {}
    base = os.fspath(path)
    for rel, want in record.items():
        problem, data = _check_file(f"{base}/{rel}", rel, want, full, keep)
        if problem:
            problems.append(problem)
        elif data is not None:
            kept[rel] = data
    if full:
        for rel in _files_in(path):
            if rel != ROOT_META and rel not in record and not rel.split("/")[-1].startswith("."):
                problems.append(f"{_what(rel)} not in the completion record")
    return problems, kept


def _files_in(path: Path) -> list[str]:
    """Every file under ``path`` as a relative POSIX path, in ``sorted(path.rglob("*"))`` order
    (``os.scandir``: several times faster than ``rglob`` on a store's many small folders)."""
    found, folders = [], [("", os.fspath(path))]
    while folders:
        prefix, folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((f"{prefix}{entry.name}/", entry.path))
                else:
                    found.append(prefix + entry.name)
    return sorted(found, key=lambda rel: rel.split("/"))


def _summary(problems: list[str], shown: int = 3) -> str:
    more = f" (+{len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


class Checked(tp.NamedTuple):
    """A store checked by ``check_store``: its state, and for a complete one its root
    ``zarr.json`` document and (``keep``) the checked bytes of its small files."""

    state: StoreState
    doc: dict[str, tp.Any] | None = None
    data: tp.Mapping[str, bytes] = {}


def store_state(path: Path, full: bool = True) -> StoreState:
    """Check a store against its completion record.

    The root ``zarr.json`` is always checked against its ``root_sha256``. Then ``full=True``
    reads every listed file and compares its sha256 (parse, best, verify); ``full=False`` only
    checks that every listed file exists with its recorded size (stat only: status, run_local).
    A store without ``files`` and ``root_sha256`` was written by an older sweepax: it counts as
    complete when every array it lists is there, with reason ``UNVERIFIABLE``.
    """
    return check_store(path, full).state


def check_store(path: Path, full: bool = True, keep: bool = False) -> Checked:
    """``store_state`` with what it read: the root document of a complete store and, with
    ``keep`` (and ``full``), the checked bytes of every listed file up to ``KEEP_BYTES``, so a
    reader decodes the small arrays from the very bytes that were verified."""
    path = path if isinstance(path, Path) else Path(path)  # Path(a Path) interns its parts
    task_id = path.name.split(".")[0]

    def refused(state: str, reason: str, done: str | None = None) -> Checked:
        return Checked(StoreState(path, state, reason, task_id, done))

    try:
        meta = json.loads((path / ROOT_META).read_bytes())
        attrs = meta.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise TypeError("attributes is not an object")
    except FileNotFoundError:
        return refused(CORRUPT, f"{ROOT_META} missing")
    except (OSError, ValueError, AttributeError, TypeError):
        return refused(CORRUPT, f"{ROOT_META} unreadable")
    done = attrs.get("completed_at")
    if attrs.get("complete") is not True or not isinstance(done, str) or not done:
        task_id = str(attrs.get("task_id") or task_id)
        return refused(INCOMPLETE, NO_RECORD)
    record = attrs.get("files")
    sealed = ROOT_DIGEST in attrs or record is not None
    if sealed and attrs.get(ROOT_DIGEST) != root_digest(meta):
        return refused(CORRUPT, f"{ROOT_META} checksum mismatch", done)
    task_id = str(attrs.get("task_id") or task_id)
    arrays = attrs.get("arrays")
    if not isinstance(arrays, list) or not arrays:
        return refused(CORRUPT, "completion record lists no arrays", done)
    if record is None:  # written before checksums
        problems = [
            f"metadata {a}/{ROOT_META} missing"
            for a in arrays
            if not (path / str(a) / ROOT_META).is_file()
        ]
        if problems:
            return refused(CORRUPT, _summary(problems), done)
        return Checked(StoreState(path, COMPLETE, UNVERIFIABLE, task_id, done), meta)
    try:
        problems, kept = _file_problems(path, record, full, keep)
    except (AttributeError, KeyError, TypeError):
        return refused(CORRUPT, "completion record unreadable", done)
    if problems:
        return refused(CORRUPT, _summary(problems), done)
    return Checked(StoreState(path, COMPLETE, "", task_id, done), meta, kept)


READ_AHEAD = 16  # stores read at once by ``read_ahead``'s threads


def read_ahead(
    read: tp.Callable[[tp.Any], tp.Any], items: tp.Iterable[tp.Any], ahead: int = READ_AHEAD
) -> tp.Iterator[tp.Any]:
    """``read(item)`` of every item, in order, computed by a few threads at most ``ahead`` items
    in front of the consumer (memory stays bounded). Reading a store is mostly waiting for the
    file system (open, stat, read), which threads overlap; an exception is raised where its
    item is consumed."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=min(4, ahead)) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.submit(read, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def is_complete(path: Path) -> bool:
    """True when the store has its completion record and every file it lists is there with its
    size (``store_state(path, full=False)``)."""
    return store_state(path, full=False).complete


def study_stores(study_dir: Path, full: bool = False) -> list[StoreState]:
    """The state of every store under a final name in ``study_dir`` (re-runs included), oldest
    ``completed_at`` first (stores without one first).

    Hidden entries (temporary stores of running or killed writers) and ``scores.zarr`` are skipped.
    """
    check = functools.partial(store_state, full=full)
    states = list(read_ahead(check, task_store_paths(study_dir)))
    return sorted(states, key=lambda s: (s.completed_at or "", s.path.name))


def task_store_paths(study_dir: Path) -> list[Path]:
    """Every task store under a final name in ``study_dir`` (re-runs included), sorted by name:
    no hidden entry (temporary stores of running or killed writers), no ``scores.zarr``."""
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        return []
    return [
        path
        for path in sorted(study_dir.iterdir())
        if not path.name.startswith(".")
        and path.name.endswith(STORE_SUFFIX)
        and path.name != "scores.zarr"
        and path.is_dir()
    ]


def all_complete_stores(study_dir: Path, full: bool = False) -> list[dict[str, tp.Any]]:
    """``{task_id, path, completed_at}`` of every complete store in ``study_dir`` (re-runs
    included), oldest ``completed_at`` first; see ``study_stores``."""
    return [
        {"task_id": s.task_id, "path": s.path, "completed_at": s.completed_at}
        for s in study_stores(study_dir, full)
        if s.complete
    ]


def complete_stores(study_dir: Path) -> dict[str, Path]:
    """The winning store per task id: the complete one (stat check) with the newest
    ``completed_at``. A corrupt store never counts: its task is re-run like a missing one."""
    winners: dict[str, Path] = {}
    for info in all_complete_stores(study_dir):  # oldest first: later ones overwrite
        winners[info["task_id"]] = info["path"]
    return dict(sorted(winners.items()))


def corrupt_stores(study_dir: Path, full: bool = False) -> dict[str, tuple[Path, str]]:
    """``{task_id: (path, reason)}`` of the tasks whose stores are all corrupt (the newest
    corrupt one is named): what status lists as corrupt and a re-run replaces."""
    states = study_stores(study_dir, full)
    complete = {s.task_id for s in states if s.complete}
    return {
        s.task_id: (s.path, s.reason)
        for s in states
        if s.state == CORRUPT and s.task_id not in complete
    }


# --- leftovers ------------------------------------------------------------------------------------
_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")
_REPLACED = re.compile(r"^\.(?P<name>.+)\.old-(?P<pid>\d+)$")


class Leftover(tp.NamedTuple):
    """Something in a study folder that is not a result: what it is, and whether ``clean`` may
    remove it (only when it is provably dead)."""

    path: Path
    kind: str  # temporary store | temporary file | reproduce scratch | replaced copy | broken store
    reason: str
    removable: bool


def pid_alive(pid: int) -> bool:
    """Does a process with this id run on this host (or might it: no permission to ask)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def this_host() -> str:
    """This host's name as ``files.temp_path`` writes it into temporary names."""
    return files.temp_owner(files.temp_path("x"))[1]


def _owner_verdict(host: str | None, pid: int) -> tuple[str, bool]:
    """(reason, removable) for a temporary name written by ``pid`` on ``host``."""
    if host is None:
        return (
            f"older temporary name without a host: cannot tell whether pid {pid} still "
            "writes it; remove it by hand once no task of this study runs",
            False,
        )
    if host != this_host():
        return f"written on {host}: cannot tell from here whether pid {pid} still runs", False
    if pid_alive(pid):
        return f"pid {pid} on this host still runs", False
    return f"pid {pid} on this host has ended", True


def _temp_kind(name: str) -> str:
    if name.startswith(SCRATCH_PREFIX):
        return "reproduce scratch"
    return "temporary store" if name.endswith(STORE_SUFFIX) else "temporary file"


def _leftover(path: Path) -> Leftover | None:
    """What ``path`` (an entry of a study folder) is, if it is a leftover; else None."""
    name = path.name
    if owner := files.temp_owner(path):
        final, host, pid = owner
        return Leftover(path, _temp_kind(final), *_owner_verdict(host, pid))
    if match := _OLD_TEMP.match(name):
        # Older writers named temporaries without the host; their provenance may record it.
        prov = (_root_attrs(path) or {}).get("provenance")
        host = prov.get("host") if isinstance(prov, dict) else None
        host = (this_host() if host == socket.gethostname() else host) if host else None
        return Leftover(path, _temp_kind(match["name"]), *_owner_verdict(host, int(match["pid"])))
    if match := _REPLACED.match(name):
        if (path.parent / match["name"]).exists():
            return Leftover(path, "replaced copy", f"{match['name']} replaced it", True)
        return Leftover(
            path,
            "replaced copy",
            f"the only copy of {match['name']} (its replacement never arrived); rename it back",
            False,
        )
    if not name.startswith(".") and name.endswith(STORE_SUFFIX) and path.is_dir():
        state = store_state(path, full=False)
        if state.reason in (f"{ROOT_META} missing", f"{ROOT_META} unreadable"):
            return Leftover(path, "broken store", f"root {state.reason}: not readable data", True)
    return None


def leftovers(study_dir: Path) -> list[Leftover]:
    """What killed writers and finished re-runs left in ``study_dir`` (cheap: no checksums).

    Temporary names ``.<name>.tmp-<host>-<pid>`` (stores, files, ``reproduce --run`` scratch
    folders) are removable when written on this host by a process that has ended; older
    ``.<name>.tmp-<pid>`` ones only when their provenance names this host. ``.<name>.old-<pid>``
    copies are removable when ``<name>`` exists again; stores whose root ``zarr.json`` is
    missing or unreadable always.
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        return []
    found = (_leftover(p) for p in sorted(study_dir.iterdir()))
    return [x for x in found if x is not None]


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


# --- reading a store without xarray ---------------------------------------------------------------
# ``parse`` reads thousands of stores; opening each with xarray costs ~30 ms. The stores sweepax
# writes are simple (regular chunks, ``bytes`` then ``zstd``, no transform but a NaN fill), so
# their arrays are decoded here straight from the chunk files, and anything else through xarray.
_PLAIN_TYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_PLAIN_TYPES |= {"float16", "float32", "float64"}
_SPECIAL_FLOATS = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}


class Layout(tp.NamedTuple):
    """A store's contents as its root ``zarr.json`` describes them: the decoded attributes
    (``read_attrs``), every array's metadata, and which arrays xarray opens as coordinates
    (named by an array's ``coordinates`` attribute, or named like a dimension) or as data."""

    attrs: dict[str, tp.Any]
    arrays: dict[str, dict[str, tp.Any]]
    coords: list[str]
    data_vars: list[str]

    def dims(self, name: str) -> tuple[str, ...]:
        return tuple(self.arrays[name].get("dimension_names") or ())

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(n) for n in self.arrays[name]["shape"])


def layout(path: Path, doc: tp.Mapping[str, tp.Any] | None = None) -> Layout | None:
    """The store's ``Layout`` from its root ``zarr.json`` (``doc``: that document, already
    read); None without consolidated metadata (then open it with ``open_store``). Raises
    ``OSError``/``ValueError`` if unreadable."""
    if doc is None:
        doc = json.loads((Path(path) / ROOT_META).read_bytes())
    meta = (doc.get("consolidated_metadata") or {}).get("metadata")
    if not isinstance(meta, dict):
        return None
    arrays = {k: v for k, v in meta.items() if v.get("node_type") == "array" and "/" not in k}
    named = {n for m in arrays.values() for n in (m.get("attributes") or {}).get("coordinates", "")
             .split()}  # fmt: skip
    dims = {d for m in arrays.values() for d in m.get("dimension_names") or ()}
    coords = [k for k in arrays if k in named or k in dims]
    data_vars = [k for k in arrays if k not in coords]
    return Layout(read_attrs(doc.get("attributes") or {}), arrays, coords, data_vars)


@functools.lru_cache(maxsize=64)
def _nan_fill(value: tp.Any) -> bool:
    """Is an xarray ``_FillValue`` attribute NaN (masking with it changes nothing)?"""
    if isinstance(value, str):
        with contextlib.suppress(ValueError, TypeError):
            raw = base64.b64decode(value, validate=True)
            return len(raw) in (2, 4, 8) and bool(np.isnan(np.frombuffer(raw, f"<f{len(raw)}")[0]))
        return value == "NaN"
    return isinstance(value, float) and np.isnan(value)


class Plain(tp.NamedTuple):
    """How an array stored as sweepax writes it is decoded from its chunk files (``plain``)."""

    dtype: np.dtype  # as stored (byte order included)
    zstd: bool
    fill: bool | int | float
    shape: tuple[int, ...]
    chunks: tuple[int, ...]


def plain(meta: tp.Mapping[str, tp.Any]) -> Plain | None:
    """The ``Plain`` decoding of an array from its metadata, None when xarray must read it."""
    codecs = meta.get("codecs") or []
    names = [c.get("name") for c in codecs]
    grid, keys = meta.get("chunk_grid") or {}, meta.get("chunk_key_encoding") or {}
    attrs = meta.get("attributes") or {}
    if (
        names not in (["bytes"], ["bytes", "zstd"])
        or meta.get("data_type") not in _PLAIN_TYPES
        or grid.get("name") != "regular"
        or keys.get("name") != "default"
        or (keys.get("configuration") or {}).get("separator", "/") != "/"
        or meta.get("storage_transformers")
        or set(attrs) - {"coordinates", "_FillValue"}
    ):
        return None
    dtype = np.dtype(meta["data_type"])
    fill_attr = attrs.get("_FillValue")
    masks = "_FillValue" in attrs and not isinstance(fill_attr, str | float)
    if masks or ("_FillValue" in attrs and not (dtype.kind == "f" and _nan_fill(fill_attr))):
        return None  # xarray would mask values: leave it to xarray
    endian = (codecs[0].get("configuration") or {}).get("endian", "little")
    dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    fill = meta.get("fill_value")
    fill = _SPECIAL_FLOATS.get(fill, fill) if isinstance(fill, str) else fill
    if not isinstance(fill, bool | int | float):
        return None
    shape = tuple(int(n) for n in meta["shape"])
    chunks = tuple(int(n) for n in grid["configuration"]["chunk_shape"])
    return Plain(dtype, names[-1] == "zstd", fill, shape, chunks)


def chunk_files(name: str, how: Plain) -> list[tuple[tuple[int, ...], str]]:
    """``(chunk index, file relative to the store)`` of every chunk of array ``name``."""
    grid = (-(-n // c) for n, c in zip(how.shape, how.chunks, strict=True))
    return [
        (index, "/".join([name, "c", *map(str, index)])) for index in np.ndindex(*grid)
    ]  # fmt: skip


def decode(name: str, how: Plain, read: tp.Callable[[str], bytes | None]) -> np.ndarray:
    """Array ``name``'s values from its chunk files, ``read(relative file)`` giving each one's
    bytes (None: never written, so it holds the fill value)."""
    native = how.dtype.newbyteorder("=")
    if how.chunks == how.shape and all(how.shape):  # one chunk: the whole array
        raw = read("/".join([name, "c", *("0" * len(how.shape))]))
        if raw is None:
            return np.full(how.shape, how.fill, native)
        raw = unzstd(raw, _nbytes(how)) if how.zstd else raw
        return np.frombuffer(raw, how.dtype).reshape(how.shape).astype(native)
    out = np.full(how.shape, how.fill, native)
    for index, rel in chunk_files(name, how):
        raw = read(rel)
        if raw is None:
            continue
        raw = unzstd(raw, _nbytes(how)) if how.zstd else raw
        block = np.frombuffer(raw, how.dtype).reshape(how.chunks)
        where = tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(index, how.chunks, how.shape, strict=True)
        )
        out[where] = block[tuple(slice(0, s.stop - s.start) for s in where)]
    return out


def read_file(path: Path | str, rel: str) -> bytes | None:
    """The bytes of file ``rel`` of a store, None if it does not exist (``os.read``: a chunk
    file is small, and thousands of stores have many)."""
    try:
        fd = os.open(f"{os.fspath(path)}/{rel}", os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        blocks = []
        while block := os.read(fd, KEEP_BYTES if not blocks else _BLOCK):
            blocks.append(block)
    finally:
        os.close(fd)
    return b"".join(blocks)


def plain_dtype(meta: tp.Mapping[str, tp.Any]) -> np.dtype | None:
    """The (native) dtype ``read_arrays`` decodes an array to itself, None if xarray reads it."""
    how = plain(meta)
    return None if how is None else how.dtype.newbyteorder("=")


def _nbytes(how: Plain) -> int:
    """Bytes of one decoded chunk (zarr stores edge chunks whole, padded)."""
    return how.dtype.itemsize * int(np.prod(how.chunks, dtype=np.int64))


class _DCtx:
    """A zstd decompression context of libzstd, freed with its thread's ``_LOCAL``."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib, self.ptr = lib, lib.ZSTD_createDCtx()
        if not self.ptr:
            raise MemoryError("ZSTD_createDCtx failed")

    def __del__(self) -> None:
        self.lib.ZSTD_freeDCtx(self.ptr)


_LOCAL = threading.local()


@functools.cache
def _libzstd() -> ctypes.CDLL | None:
    """The system's libzstd (``libzstd.so.1``, a dependency of dpkg on Debian), None where
    there is none (then zarr's own codec decodes)."""
    try:
        lib = ctypes.CDLL("libzstd.so.1")
    except OSError:
        return None
    lib.ZSTD_createDCtx.restype = ctypes.c_void_p
    lib.ZSTD_freeDCtx.argtypes = [ctypes.c_void_p]
    lib.ZSTD_decompressDCtx.restype = ctypes.c_size_t
    lib.ZSTD_decompressDCtx.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
    ]  # fmt: skip
    lib.ZSTD_isError.restype = ctypes.c_uint
    lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
    lib.ZSTD_getErrorName.restype = ctypes.c_char_p
    lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    return lib


def unzstd(raw: bytes, size: int) -> bytes | bytearray:
    """Decompress a zstd chunk that decodes to ``size`` bytes; ``RuntimeError`` ("Zstd
    decompression error: ...") when it does not. Through libzstd with one context per thread
    where the system has it: numcodecs' ``Zstd`` makes a context per call (~30 us, most of
    the time of a small chunk, and parse decodes ~20 chunks per store)."""
    lib = _libzstd()
    if lib is None:
        out = _zstd().decode(raw)
        if len(out) != size:
            raise RuntimeError(f"Zstd decompression error: {len(out)} bytes, expected {size}")
        return out
    ctx = getattr(_LOCAL, "dctx", None)
    if ctx is None:
        ctx = _LOCAL.dctx = _DCtx(lib)
    out = bytearray(size)
    dest = (ctypes.c_char * size).from_buffer(out) if size else None
    n = lib.ZSTD_decompressDCtx(ctx.ptr, dest, size, raw, len(raw))
    if lib.ZSTD_isError(n):
        raise RuntimeError(f"Zstd decompression error: {lib.ZSTD_getErrorName(n).decode()}")
    if n != size:
        raise RuntimeError(f"Zstd decompression error: {n} bytes, expected {size}")
    return out


@functools.cache
def _zstd() -> tp.Any:
    from numcodecs import Zstd  # zarr's own zstd codec

    return Zstd()


def read_arrays(
    path: Path,
    names: tp.Iterable[str],
    where: Layout | None = None,
    data: tp.Mapping[str, bytes] | None = None,
) -> dict[str, np.ndarray]:
    """The values of arrays ``names`` of a store, equal to ``open_store(path)[name].values``:
    decoded from the chunk files where the array is plain (see ``plain``), else via xarray.
    ``where``: the store's ``layout`` if already read; ``data``: bytes of its files already
    read and checked (``check_store(keep=True)``), used instead of reading them again."""
    where = where or layout(path)
    data = data or {}
    out: dict[str, np.ndarray] = {}
    rest = []
    for name in names:
        meta = where.arrays.get(name) if where else None
        how = None if meta is None else plain(meta)
        if how is None:
            rest.append(name)
        else:
            out[name] = decode(name, how, lambda rel: data.get(rel) or read_file(path, rel))
    if rest:
        ds = open_store(path)
        out.update({name: np.asarray(ds[name].values) for name in rest})
    return out


def read_plain(path: Path | str, arrays: tp.Iterable[tuple[str, Plain]]) -> dict[str, np.ndarray]:
    """The values of plain ``arrays`` (``(name, Plain)``) of a store, from its chunk files."""
    return {name: decode(name, how, functools.partial(read_file, path)) for name, how in arrays}
