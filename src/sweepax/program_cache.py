"""Compiled training programs kept on disk, so a study's later tasks start without tracing.

JAX's persistent compilation cache is keyed on the lowered program, so every task still traces
and lowers its programs before it finds them there (seconds per task). This cache is keyed on
what defines the programs instead, and holds them serialized
(``jax.experimental.serialize_executable``): the entry (``ppo``, ``transformer``), every static
value but ``seed`` (the seeds are the programs' input, not part of them), the shapes and dtypes
of the inputs, the chunk of updates, every file of the sweepax package, the installed versions
of the packages that decide the numbers, Python's version, the backend, its version and the
devices, and JAX's configuration and ``XLA_*`` / ``JAX_*`` environment. Whatever of these
changes, the key changes and the task compiles afresh.

An entry is one file ``<folder>/<key>.programs``: a header line, the sha256 of the payload and
the payload (a pickle). An entry that cannot be read, whose digest does not match or that was
written for other key parts counts as a miss: the task compiles and writes it again.

Only programs compiled in this process are written: an executable that JAX loaded from its own
persistent cache serializes without its code (on the CPU, running it again fails with
``Function ... not found``), so a task whose programs came from there writes no entry
(``jax_cache_hits`` tells).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import sys
import typing as tp
from pathlib import Path

from sweepax import files, provenance

FORMAT = 1
HEADER = b"sweepax-programs %d\n" % FORMAT
SUFFIX = ".programs"
FOLDER = "sweepax-programs"  # inside the compilation cache folder
ENV_PREFIXES = ("XLA_", "JAX_")
# JAX settings that do not change a compiled program: the caches, and how many CPU devices were
# asked for (the devices themselves are part of the key)
_NOT_PROGRAM = ("compilation_cache", "persistent_cache", "num_cpu_devices")


PACKAGE = Path(__file__).resolve().parent


@functools.cache
def source_digest() -> str:
    """``tree_digest`` of the sweepax package: the code (and data) that runs."""
    return tree_digest(PACKAGE)


def tree_digest(root: Path) -> str:
    """sha256 over the names and contents of every file under ``root`` (but compiled Python)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(bytes.fromhex(files.sha256_file(path)))
    return digest.hexdigest()


def environment() -> dict[str, tp.Any]:
    """What outside sweepax's code decides the compiled programs (JAX already imported)."""
    import jax

    devices = jax.devices()
    config = {k: v for k, v in jax.config.values.items() if not any(n in k for n in _NOT_PROGRAM)}
    return {
        "python": sys.version,
        "packages": provenance.packages(),
        "backend": jax.default_backend(),
        "platform_version": devices[0].client.platform_version,
        "devices": [d.device_kind for d in devices],
        "environ": {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)},
        "jax_config": json.loads(json.dumps(config, sort_keys=True, default=repr)),
    }


_JAX_CACHE_HITS = [0]


@functools.cache
def _count_jax_cache_hits() -> None:
    import jax

    def count(event: str, **_: tp.Any) -> None:
        if event == "/jax/compilation_cache/cache_hits":
            _JAX_CACHE_HITS[0] += 1

    jax.monitoring.register_event_listener(count)


def jax_cache_hits() -> int:
    """Programs JAX loaded from its persistent cache in this process since the first call."""
    _count_jax_cache_hits()
    return _JAX_CACHE_HITS[0]


def key_parts(program: dict[str, tp.Any]) -> dict[str, tp.Any]:
    """Everything the key covers: ``program`` (entry, static values, input shapes, chunk), the
    package's files and ``environment()``."""
    return json.loads(
        json.dumps(
            {"format": FORMAT, "program": program, "source": source_digest(), **environment()},
            sort_keys=True,
        )
    )


def key(parts: dict[str, tp.Any]) -> str:
    """The entry's name: sha256 of ``parts`` as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class ProgramCache:
    """The entries of one folder. ``load`` and ``save`` never raise for the cache's sake: a task
    that cannot use the cache compiles as it would without it."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        # what this process did, for the store's provenance (``program_cache``)
        self.record: dict[str, tp.Any] = {"dir": str(self.folder), "key": None, "result": None}

    def path(self, parts: dict[str, tp.Any]) -> Path:
        """Where the entry for ``parts`` lives."""
        return self.folder / (key(parts) + SUFFIX)

    def load(self, parts: dict[str, tp.Any]) -> tuple[tp.Any, str]:
        """``(payload, "hit")``, or ``(None, why)``: ``"miss"`` (no entry) or what was wrong."""
        self.record["key"] = key(parts)
        programs, self.record["result"] = self._read(parts)
        return programs, self.record["result"]

    def _read(self, parts: dict[str, tp.Any]) -> tuple[tp.Any, str]:
        path = self.path(parts)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, "miss"
        except OSError as err:
            return None, f"unreadable ({err.strerror or err})"
        head, _, rest = data.partition(b"\n")
        digest, _, payload = rest.partition(b"\n")
        if head + b"\n" != HEADER:
            return None, "unreadable (not an entry of this format)"
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            return None, "damaged (digest mismatch)"
        try:
            stored_parts, programs = pickle.loads(payload)
        except Exception as err:  # noqa: BLE001 (any unpickling failure means: compile instead)
            return None, f"unreadable ({type(err).__name__})"
        if stored_parts != parts:
            return None, "miss (entry written for other key parts)"
        return programs, "hit"

    def discard(self, parts: dict[str, tp.Any]) -> None:
        """Remove the entry for ``parts`` (one that cannot be used), if there is one."""
        with contextlib.suppress(OSError):  # a folder this user cannot write: it stays
            self.path(parts).unlink(missing_ok=True)

    def save(self, parts: dict[str, tp.Any], programs: tp.Any) -> str | None:
        """Write the entry atomically; None, or why it could not be written."""
        payload = pickle.dumps((parts, programs), protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.sha256(payload).hexdigest().encode()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            files.write_bytes(self.path(parts), HEADER + digest + b"\n" + payload)
        except OSError as err:
            self.record["saved"] = False
            return f"not saved ({err.strerror or err})"
        self.record["saved"] = True
        return None
