"""Small file mechanisms every stage shares: atomic writes, content hashes, UTC timestamps.

Atomic writes go through a hidden temporary name beside the final one,
``.<name>.tmp-<host>-<pid>``, renamed into place when complete: a reader never sees half a file
or folder, and a writer killed half-way leaves only a hidden leftover whose host and process id
say whether its writer can still be alive (``temp_owner``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import typing as tp
from pathlib import Path

TEMP_MARK = ".tmp-"
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<host>[^/]*)-(?P<pid>\d+)$")


def utc_now(timespec: str = "seconds") -> str:
    """The current UTC time in ISO 8601 (``timespec`` as ``datetime.isoformat``); sorts as text."""
    return dt.datetime.now(dt.UTC).isoformat(timespec=timespec)


def utc_stamp() -> str:
    """The current UTC time for file names: ``20261203T074122123456Z`` (sorts as text)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in blocks (large images need not fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_path(final: str | os.PathLike) -> Path:
    """The hidden temporary name this process writes ``final`` under."""
    final = Path(final)
    host = socket.gethostname().replace("/", "_")
    return final.with_name(f".{final.name}{TEMP_MARK}{host}-{os.getpid()}")


def temp_owner(path: str | os.PathLike) -> tuple[str, str, int] | None:
    """``(final name, host, pid)`` of a temporary name made by ``temp_path``, else None."""
    match = _TEMP.match(Path(path).name)
    if match is None:
        return None
    return match["name"], match["host"], int(match["pid"])


def remove(path: str | os.PathLike) -> None:
    """Delete a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary name, then ``os.replace``)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        remove(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (temporary name, then ``os.replace``)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data: tp.Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (one trailing newline) to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=indent) + "\n")


@contextlib.contextmanager
def building(final: str | os.PathLike) -> tp.Iterator[Path]:
    """A fresh hidden temporary path beside ``final`` to build a folder (or file) in.

    Nothing is created; a leftover of this very process is removed first. If the body raises,
    the temporary is removed. Publish it with ``publish``.
    """
    tmp = temp_path(final)
    remove(tmp)
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        raise


def publish(tmp: str | os.PathLike, final: str | os.PathLike, replace: bool = False) -> Path:
    """Rename the finished ``tmp`` to ``final``.

    ``replace=False``: ``final`` must not exist (``FileExistsError``, ``tmp`` kept).
    ``replace=True``: an existing ``final`` is moved aside, ``tmp`` renamed in, the old one
    deleted, so a reader sees either the old or the new one whole.
    """
    tmp, final = Path(tmp), Path(final)
    if not replace:
        if final.exists():
            raise FileExistsError(final)
        os.rename(tmp, final)
        return final
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    remove(old)
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    remove(old)
    return final
