"""Checkpoints of a running task: save its whole training state now and then, resume from it.

A task's checkpoints live in ``<results_dir>/<study>/.checkpoints/<task_id>/update-<k>/``, one
orbax-checkpoint folder per saved update ``k``: the runner state of every [config, seed] cell
(parameters, optimiser state, env states, RNG keys, observation statistics), the metrics of
updates ``0..k-1`` and a JSON record (what made it, checksums of every array, the segments of
the run so far). orbax writes each folder under a temporary name and renames it when whole, so a
kill during a save leaves the previous checkpoint usable. The newest two are kept.

Resuming refuses, in one line, a checkpoint made by other code or other hyperparameters, one
whose arrays have other shapes, and one whose files are truncated or damaged (checksums), and
tries the next older one; with none left the task starts afresh. A resumed run continues with
the same compiled programs from the same state, so its store is bit-identical to an
uninterrupted run on the same device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import socket
import sys
import time
import typing as tp
from pathlib import Path

import numpy as np

from sweepax import files
from sweepax.errors import UserError

FORMAT = 1
FOLDER = ".checkpoints"
KEEP = 2  # checkpoints kept: the newest, and one before it in case the newest is damaged
EVERY_ENV = "SWEEPAX_CHECKPOINT_EVERY"
DEFAULT_EVERY_S = 300.0
# exit code of a task that saved a checkpoint and stopped on request (SIGUSR1/SIGTERM/SIGINT):
# "try again later" (EX_TEMPFAIL); the SLURM script requeues the task on it
EXIT_STOPPED = 75
STOP_SIGNALS = ("SIGUSR1", "SIGTERM", "SIGINT")
_NAME = re.compile(r"^update-(\d{8})$")


def default_every() -> float:
    """Seconds between checkpoints when ``--checkpoint_every`` is not given:
    ``$SWEEPAX_CHECKPOINT_EVERY``, else ``DEFAULT_EVERY_S``."""
    raw = os.environ.get(EVERY_ENV, "")
    if not raw:
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UserError(
            f"${EVERY_ENV}={raw!r}: not a number of seconds >= 0; set it to e.g. 300 "
            "(0 checkpoints after every chunk of updates) or unset it"
        )
    return value


CODE = "src"  # the package's code in a checkout: what decides the numbers


def code_version() -> dict[str, str | None]:
    """The checkout's commit and a hash of every uncommitted change to its ``src/`` (diff and
    untracked files): a checkpoint resumes only under the same code. Edits elsewhere in the
    checkout (sweep files, notes) do not count. Outside a checkout: all None (the packages'
    versions, sweepax's included, are compared instead)."""
    from sweepax import provenance

    commit = provenance.git_output("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "src_changes_sha256": None}
    digest = hashlib.sha256((provenance.git_output("diff", "HEAD", "--", CODE) or "").encode())
    untracked = provenance.git_output("ls-files", "--others", "--exclude-standard", "-z", CODE)
    for name in sorted(n for n in (untracked or "").split("\0") if n):
        digest.update(name.encode() + b"\0")
        try:
            digest.update(bytes.fromhex(files.sha256_file(provenance.PROJECT_ROOT / name)))
        except OSError:
            digest.update(b"unreadable")
    return {"commit": commit, "src_changes_sha256": digest.hexdigest()}


def task_folder(study_dir: Path, task_id: str) -> Path:
    """Where the checkpoints of ``task_id`` go."""
    return Path(study_dir) / FOLDER / task_id


def last_saved(study_dir: Path, task_id: str) -> str | None:
    """``"k/N"``: the update of the task's newest checkpoint (as its record says), else None.
    Cheap (reads one small JSON file), for ``status``."""
    folder = task_folder(study_dir, task_id)
    if not folder.is_dir():
        return None
    for path in sorted((p for p in folder.iterdir() if _NAME.match(p.name)), reverse=True):
        try:
            meta = json.loads((path / "meta" / "metadata").read_text())
            return f"{int(meta['update'])}/{int(meta['num_updates'])}"
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def segment_now(start_update: int) -> dict[str, tp.Any]:
    """The record of the run segment starting now, at ``start_update``: host, process, SLURM."""
    env = os.environ
    job = (
        f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
        if "SLURM_ARRAY_JOB_ID" in env and "SLURM_ARRAY_TASK_ID" in env
        else env.get("SLURM_JOB_ID")
    )
    restarts = env.get("SLURM_RESTART_COUNT")
    return {
        "start_update": start_update,
        "end_update": None,
        "started_at": files.utc_now(),
        "ended_at": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job": job,
        "slurm_restart_count": int(restarts) if restarts and restarts.isdigit() else None,
    }


def _leaves_sha256(leaves: tp.Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for leaf in leaves:
        leaf = np.ascontiguousarray(leaf)
        digest.update(f"{leaf.dtype.str}{leaf.shape}".encode())
        digest.update(leaf.tobytes())
    return digest.hexdigest()


def _as_dict(leaves: tp.Sequence[tp.Any]) -> dict[str, np.ndarray]:
    return {f"leaf_{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}


def _as_list(tree: tp.Mapping[str, tp.Any]) -> list[np.ndarray]:
    return [np.asarray(tree[k]) for k in sorted(tree)]


def signature(leaves: tp.Sequence[tp.Any]) -> list[list[tp.Any]]:
    """Shape and dtype of every leaf (what a restored state must match)."""
    return [[list(np.shape(x)), np.dtype(x.dtype).str] for x in leaves]


@dataclasses.dataclass
class Saved:
    """A checkpoint read back and checked: the state after ``update`` updates."""

    path: Path
    update: int
    runner: list[np.ndarray]  # leaves of the runner state, in tree order
    metrics: list[np.ndarray]  # leaves of the per-update metrics of updates 0..update-1
    segments: list[dict[str, tp.Any]]


class RefusedError(Exception):
    """A checkpoint that must not be resumed from; the message says why, in a few words."""


def _checkpointer() -> tp.Any:
    import orbax.checkpoint as ocp

    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


class Checkpoints:
    """The checkpoints of one task: find the newest usable one, save, stop on request, clean up.

    ``fingerprint``: what must be equal for a checkpoint to be resumable (code version,
    packages, the task's resolved arguments, chunk length); ``runner_signature`` /
    ``metrics_signature``: shapes and dtypes of the state's leaves (``_signature``).
    """

    def __init__(
        self,
        folder: Path,
        *,
        every: float,
        fingerprint: dict[str, tp.Any],
        num_updates: int,
        say: tp.Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True),
    ) -> None:
        self.folder = Path(folder).absolute()  # orbax wants absolute paths
        self.every = every
        self.fingerprint = fingerprint
        self.num_updates = num_updates
        self.say = say
        self.segments: list[dict[str, tp.Any]] = []
        self.last_save = time.monotonic()
        self.stop_signal: str | None = None
        self.saved_update: int | None = None
        self.save_seconds = 0.0
        self.saves = 0

    # --- finding ------------------------------------------------------------------------------
    def paths(self) -> list[Path]:
        """Finished checkpoint folders, newest first (orbax's temporaries are never listed)."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if _NAME.match(p.name) and p.is_dir()]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def read(
        self, path: Path, runner_signature: list, metrics_signature: tp.Callable[[int], list]
    ) -> Saved:
        """Read and check one checkpoint (``RefusedError`` with the reason)."""
        import orbax.checkpoint as ocp

        try:
            with _quiet_absl():
                meta = (
                    _checkpointer()
                    .restore(path, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
                    .meta
                )
        except Exception as err:  # noqa: BLE001 (any failure to read means: unusable)
            raise RefusedError(f"its record is unreadable ({type(err).__name__})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise RefusedError(f"written by another checkpoint format ({meta.get('format')!r})")
        mine, theirs = self.fingerprint, meta.get("fingerprint", {})
        for key in mine:
            if mine[key] != theirs.get(key):
                raise RefusedError(f"made with other {key.replace('_', ' ')}")
        update = meta.get("update")
        if not isinstance(update, int) or not 0 < update <= self.num_updates:
            raise RefusedError(f"update {update!r} is not in 1..{self.num_updates}")
        if meta.get("runner_signature") != runner_signature or meta.get(
            "metrics_signature"
        ) != metrics_signature(update):
            raise RefusedError("its arrays have other shapes or dtypes")
        try:
            with _quiet_absl():
                state = _checkpointer().restore(
                    path,
                    args=ocp.args.Composite(
                        runner=ocp.args.PyTreeRestore(), metrics=ocp.args.PyTreeRestore()
                    ),
                )
            runner, metrics = _as_list(state.runner), _as_list(state.metrics)
        except Exception as err:  # noqa: BLE001
            raise RefusedError(f"its arrays are unreadable ({type(err).__name__})") from None
        if signature(runner) != runner_signature or signature(metrics) != metrics_signature(update):
            raise RefusedError("its arrays have other shapes or dtypes")
        if _leaves_sha256(runner) != meta.get("runner_sha256") or _leaves_sha256(
            metrics
        ) != meta.get("metrics_sha256"):
            raise RefusedError("its arrays do not match their checksums (damaged)")
        return Saved(path, update, runner, metrics, list(meta.get("segments", [])))

    def newest(
        self, runner_signature: list, metrics_signature: tp.Callable[[int], list]
    ) -> Saved | None:
        """The newest checkpoint that passes every check; each one refused is said in one line."""
        for path in self.paths():
            try:
                return self.read(path, runner_signature, metrics_signature)
            except RefusedError as why:
                self.say(f"checkpoint {path}: refused, {why}; not resuming from it")
        return None

    # --- saving ---------------------------------------------------------------------------------
    def due(self) -> bool:
        """Is a checkpoint due now (the interval passed, or the task was asked to stop)?"""
        return self.stop_signal is not None or time.monotonic() - self.last_save >= self.every

    def save(self, update: int, runner: tp.Sequence[tp.Any], metrics: tp.Sequence[tp.Any]) -> Path:
        """Save the state after ``update`` updates; keep the newest ``KEEP`` checkpoints."""
        import orbax.checkpoint as ocp

        t0 = time.perf_counter()
        runner = [np.asarray(x) for x in runner]
        metrics = [np.asarray(x) for x in metrics]
        now = files.utc_now()
        ended = {**self.segments[-1], "end_update": update, "ended_at": now}
        segments = [*self.segments[:-1], ended]
        meta = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "update": update,
            "num_updates": self.num_updates,
            "saved_at": now,
            "segments": segments,
            "runner_signature": signature(runner),
            "metrics_signature": signature(metrics),
            "runner_sha256": _leaves_sha256(runner),
            "metrics_sha256": _leaves_sha256(metrics),
        }
        path = self.folder / f"update-{update:08d}"
        self.folder.mkdir(parents=True, exist_ok=True)
        files.remove(path)  # an older run's checkpoint of the same update (refused or not)
        # make room first: a kill at any moment then leaves at most KEEP finished checkpoints,
        # and the newest finished one stays on disk while the new one is written
        for old in self.paths()[KEEP - 1 :]:
            files.remove(old)
        with _quiet_absl():
            _checkpointer().save(
                path,
                args=ocp.args.Composite(
                    runner=ocp.args.PyTreeSave(_as_dict(runner)),
                    metrics=ocp.args.PyTreeSave(_as_dict(metrics)),
                    meta=ocp.args.JsonSave(meta),
                ),
            )
        self.last_save = time.monotonic()
        self.saved_update = update
        self.save_seconds += time.perf_counter() - t0
        self.saves += 1
        return path

    def remove_temporaries(self) -> None:
        """Delete what killed saves left (orbax's temporary folders) in this task's folder."""
        if self.folder.is_dir():
            for p in self.folder.iterdir():
                if not _NAME.match(p.name):
                    files.remove(p)

    def remove_all(self) -> None:
        """Delete every checkpoint of the task (its store is complete)."""
        files.remove(self.folder)
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()  # .checkpoints/, when no other task has any

    # --- stopping on request --------------------------------------------------------------------
    @contextlib.contextmanager
    def stop_on_signals(self) -> tp.Iterator[None]:
        """While inside: SIGUSR1, SIGTERM and SIGINT ask the run to checkpoint at the end of the
        current chunk of updates and stop (a second SIGINT interrupts at once)."""

        def _ask(signum: int, _frame: tp.Any) -> None:
            name = signal.Signals(signum).name
            if self.stop_signal is not None:  # asked already: a second Ctrl-C stops at once
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                return
            self.stop_signal = name
            self.say(f"{name}: checkpointing at the end of this chunk of updates, then stopping")

        old = {}
        for name in STOP_SIGNALS:
            signum = getattr(signal, name)
            old[signum] = signal.signal(signum, _ask)
        try:
            yield
        finally:
            for signum, handler in old.items():
                signal.signal(signum, handler)


class StoppedError(Exception):
    """The run saved a checkpoint and stopped because it was asked to (``stop_signal``)."""

    def __init__(self, update: int, signal_name: str) -> None:
        super().__init__(f"stopped at update {update} on {signal_name}")
        self.update = update
        self.signal_name = signal_name


@contextlib.contextmanager
def _quiet_absl() -> tp.Iterator[None]:
    """orbax logs every save at INFO through absl: keep the task's log to what matters."""
    try:
        from absl import logging as absl_logging
    except ImportError:  # pragma: no cover (orbax depends on absl)
        yield
        return
    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.WARNING)
    try:
        yield
    finally:
        absl_logging.set_verbosity(level)
