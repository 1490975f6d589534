"""Atomic writes, hashes and timestamps shared by every stage."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket

import pytest

from sweepax import files


def test_write_text_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "runs" / "study.txt"
    path.parent.mkdir()
    path.write_text("old\n")
    files.write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["study.txt"]


def test_write_bytes_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "scores.pkl"
    path.write_bytes(b"old")
    assert files.write_bytes(path, b"\x80\x04new") == path
    assert path.read_bytes() == b"\x80\x04new"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.pkl"]


def test_write_json_round_trips_with_trailing_newline(tmp_path):
    path = files.write_json(tmp_path / "m.json", {"a": [1, 2]})
    assert path.read_text().endswith("}\n")
    assert json.loads(path.read_text()) == {"a": [1, 2]}


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("{}\n")
    with pytest.raises(TypeError):
        files.write_json(path, {"x": object()})
    assert path.read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_temp_path_names_host_and_pid_and_parses_back(tmp_path):
    tmp = files.temp_path(tmp_path / "abc.zarr")
    assert tmp.parent == tmp_path and tmp.name.startswith(".abc.zarr.tmp-")
    assert files.temp_owner(tmp) == ("abc.zarr", socket.gethostname(), os.getpid())
    assert files.temp_owner(tmp_path / "abc.zarr") is None


def test_building_removes_the_temporary_when_the_body_fails(tmp_path):
    final = tmp_path / "s.zarr"
    with pytest.raises(RuntimeError), files.building(final) as tmp:
        tmp.mkdir()
        (tmp / "chunk").write_text("x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_publish_never_clobbers_unless_asked_and_replace_swaps_whole(tmp_path):
    final = tmp_path / "scores.zarr"
    for version in ("one", "two"):
        with files.building(final) as tmp:
            tmp.mkdir()
            (tmp / "v").write_text(version)
            if version == "two":
                with pytest.raises(FileExistsError):
                    files.publish(tmp, final)
                files.publish(tmp, final, replace=True)
            else:
                files.publish(tmp, final)
    assert (final / "v").read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.zarr"]


def test_sha256_file_equals_hashlib_on_a_multi_block_file(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "big").write_bytes(data)
    assert files.sha256_file(tmp_path / "big") == hashlib.sha256(data).hexdigest()


def test_timestamps_are_utc_and_sortable():
    now = dt.datetime.fromisoformat(files.utc_now("microseconds"))
    assert now.utcoffset() == dt.timedelta(0)
    stamp = files.utc_stamp()
    assert len(stamp) == 22 and stamp.endswith("Z")
    assert dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ")
