"""Reading a store without xarray: the values equal xarray's, and anything else goes to xarray."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from sweepax.results import parse, store
from sweepax.results.parse import read_content
from sweepax.results.store import layout, open_store, plain_dtype, read_arrays, write_task_store


def _write(tmp_path, n_config=3, n_update=6, task_id="t"):
    """A store as a task writes it: NaN where no episode ended, an all-NaN metric, ints."""
    rng = np.random.default_rng(0)
    shape = (n_config, 2, n_update)
    ret = rng.normal(size=shape).astype(np.float32)
    ret[:, :, 0] = np.nan
    metrics = {
        "episode_return": ret,
        "discounted_return": np.full(shape, np.nan, np.float32),  # a chunk zarr never writes
        "episodes": rng.integers(0, 9, shape).astype(np.int32),
        "final_return": ret[..., -1],
        "final_episodes": np.arange(n_config * 2, dtype=np.int32).reshape(n_config, 2),
    }
    vmapped = {"lr": [1e-3 * (i + 1) for i in range(n_config)], "lambda0": [0.5] * n_config}
    attrs = {"study": "s", "static": {"env": "tmaze_5", "hidden_size": 8}, "entry": "ppo"}
    steps = np.arange(1, n_update + 1) * 128
    return write_task_store(tmp_path, task_id, metrics, vmapped, [3, 4], steps, attrs)


def _assert_same_as_xarray(path, names):
    ds = open_store(path)
    got = read_arrays(path, names)
    for name in names:
        want = ds[name].values
        assert got[name].dtype == want.dtype, name
        np.testing.assert_array_equal(got[name], want, err_msg=name)  # NaN equal to NaN


def test_read_arrays_equals_xarray_for_every_array_of_a_task_store(tmp_path):
    path = _write(tmp_path)
    where = layout(path)
    assert set(where.data_vars) == {
        "episode_return",
        "discounted_return",
        "episodes",
        "final_return",
        "final_episodes",
    }
    assert set(where.coords) == {"lr", "lambda0", "seed", "update", "env_steps"}
    assert all(plain_dtype(m) is not None for m in where.arrays.values())
    assert not (path / "discounted_return" / "c").exists()  # all fill value: no chunk file
    _assert_same_as_xarray(path, [*where.data_vars, *where.coords])


def test_read_arrays_joins_several_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_CHUNK_BYTES", 2 * 6 * 4)  # one config row per chunk
    path = _write(tmp_path, n_config=5)
    assert len(list((path / "episode_return" / "c").iterdir())) == 5
    _assert_same_as_xarray(path, ["episode_return", "episodes", "final_return", "lr"])


def test_an_array_xarray_would_decode_is_read_through_xarray(tmp_path):
    """A fill value xarray masks (here -1 in an int array) is not plain: the values come from
    xarray, masked to NaN, and parse reads the whole store through xarray."""
    ds = xr.Dataset(
        {"episodes": (("config", "seed"), np.array([[1, -1]], np.int32))},
        coords={"seed": [0, 1], "env_steps": ("update", [128])},
    )
    ds["episodes"].encoding["_FillValue"] = -1
    path = tmp_path / "masked.zarr"
    ds.to_zarr(path, zarr_format=3, consolidated=True)
    with (path / "zarr.json").open() as f:
        doc = json.load(f)
    doc["attributes"] = {"static": {"env": "e"}}
    (path / "zarr.json").write_text(json.dumps(doc))
    where = layout(path)
    assert plain_dtype(where.arrays["episodes"]) is None
    values = read_arrays(path, ["episodes", "seed"])["episodes"]
    assert values.dtype == np.float64 and values[0, 0] == 1 and np.isnan(values[0, 1])
    attrs, content, n_config, _ = read_content(path)
    assert attrs["static"] == {"env": "e"} and n_config == 1
    assert content.variables["episodes"] == (np.dtype(np.float64), False)
    assert np.isnan(content.load(path)["episodes"][0, 1])


def test_read_content_gives_what_parse_needs_without_the_data(tmp_path):
    path = _write(tmp_path)
    attrs, content, n_config, coords = read_content(path)
    assert attrs["static"]["hidden_size"] == 8 and n_config == 3
    assert content.seeds == [3, 4] and content.n_update == 6
    assert content.env_steps.tolist() == [128, 256, 384, 512, 640, 768]
    assert content.variables["episodes"] == (np.dtype(np.int32), True)
    assert content.variables["final_return"] == (np.dtype(np.float32), False)
    assert coords == {"lr": pytest.approx([1e-3, 2e-3, 3e-3]), "lambda0": [0.5] * 3}
    loaded = content.load(path)
    np.testing.assert_array_equal(loaded["episode_return"], open_store(path)["episode_return"])


def test_read_ahead_keeps_order_bounds_lookahead_and_raises_where_consumed():
    import threading
    import time

    started, lock = [], threading.Lock()

    def read(i):
        with lock:
            started.append(i)
        time.sleep(0.002 * (i % 3))  # finish out of order
        if i == 7:
            raise ValueError("store 7 is damaged")
        return i * i

    reader = store.read_ahead(read, range(40), ahead=4)
    got = [next(reader) for _ in range(5)]
    assert got == [0, 1, 4, 9, 16]
    with lock:
        assert max(started) < 5 + 4  # never more than `ahead` in front of the consumer
    assert next(reader) == 25 and next(reader) == 36
    with pytest.raises(ValueError, match="store 7 is damaged"):
        next(reader)


def test_study_stores_read_with_threads_equal_one_by_one(tmp_path):
    for i in range(20):
        _write(tmp_path, task_id=f"t{i:02d}")
    (tmp_path / "t03.zarr" / "episodes" / "c" / "0" / "0" / "0").write_bytes(b"broken")
    states = store.study_stores(tmp_path, full=True)
    one_by_one = sorted(
        (store.store_state(p, True) for p in tmp_path.glob("*.zarr")),
        key=lambda s: (s.completed_at or "", s.path.name),
    )
    assert states == one_by_one
    assert [s.task_id for s in states if not s.complete] == ["t03"]


def test_check_store_keeps_the_checked_bytes_and_parse_reads_labels_from_them(tmp_path):
    path = _write(tmp_path)
    checked = store.check_store(path, full=True, keep=True)
    assert checked.state.verified
    assert checked.doc == json.loads((path / "zarr.json").read_bytes())
    record = checked.doc["attributes"]["files"]
    assert set(checked.data) == set(record)  # every file of a small store is kept
    for rel, data in checked.data.items():
        assert data == (path / rel).read_bytes(), rel
    without = store.check_store(path, full=True)
    assert without.state == checked.state and without.data == {}
    # the labels and content read from the kept bytes equal those read from the files
    attrs, content, n_config, coords = read_content(path, checked=checked)
    want = read_content(path)
    assert (attrs, n_config, coords) == (want[0], want[2], want[3])
    assert content.seeds == want[1].seeds and content.variables == want[1].variables
    np.testing.assert_array_equal(content.env_steps, want[1].env_steps)
    loaded, ds = content.load(path), open_store(path)
    assert set(loaded) == set(want[1].variables)
    for name, values in loaded.items():
        assert values.dtype == ds[name].dtype, name
        np.testing.assert_array_equal(values, ds[name].values, err_msg=name)


def test_read_content_uses_no_kept_bytes_of_a_damaged_store(tmp_path):
    """A flipped bit in a coordinate chunk: the store is corrupt, nothing of it comes back."""
    path = _write(tmp_path)
    chunk = path / "lr" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0x01
    chunk.write_bytes(bytes(data))
    checked = store.check_store(path, full=True, keep=True)
    assert checked.state.state == "corrupt"
    assert checked.state.reason == "chunk lr/c/0 checksum mismatch"
    assert checked.doc is None and checked.data == {}


def test_a_longer_file_is_named_with_its_size_by_both_checks(tmp_path):
    path = _write(tmp_path)
    chunk = path / "episode_return" / "c" / "0" / "0" / "0"
    size = chunk.stat().st_size
    chunk.write_bytes(chunk.read_bytes() + b"x")
    for full in (True, False):
        state = store.store_state(path, full=full)
        assert state.state == "corrupt", full
        assert state.reason == f"chunk episode_return/c/0/0/0 size {size + 1} != {size}", full


def test_read_plain_equals_xarray_and_refuses_a_short_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_CHUNK_BYTES", 2 * 6 * 4)  # one config row per chunk
    path = _write(tmp_path, n_config=4)
    where = layout(path)
    arrays = [(n, store.plain(where.arrays[n])) for n in where.data_vars]
    got, ds = store.read_plain(path, arrays), open_store(path)
    for name, values in got.items():
        assert values.dtype == ds[name].dtype, name
        np.testing.assert_array_equal(values, ds[name].values, err_msg=name)
    (path / "episodes" / "c" / "2" / "0" / "0").write_bytes(b"\x28\xb5\x2f\xfd")  # zstd magic only
    with pytest.raises(RuntimeError, match="Zstd decompression error"):
        store.read_plain(path, arrays)


def test_parse_checks_every_store_as_study_stores_does_in_the_same_read(tmp_path):
    for i in range(6):
        _write(tmp_path, task_id=f"t{i}")
    chunk = tmp_path / "t1.zarr" / "final_return" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-1])  # corrupt
    for task, drop in (("t2", ("complete",)), ("t3", ("files", "root_sha256"))):
        doc = json.loads((tmp_path / f"{task}.zarr" / "zarr.json").read_text())
        for key in drop:  # t2: incomplete, t3: written before checksums
            del doc["attributes"][key]
        (tmp_path / f"{task}.zarr" / "zarr.json").write_text(json.dumps(doc))
    states, stores, unreadable = parse.read_stores(tmp_path)
    assert states == store.study_stores(tmp_path, full=True)
    assert [s.state for s in states if s.task_id in ("t1", "t2")] == ["incomplete", "corrupt"]
    assert [s.task_id for s in stores] == [s.task_id for s in states if s.complete]
    assert [s.index for s in stores] == list(range(4)) and unreadable == []
    old = next(s for s in stores if s.task_id == "t3")  # read from its files, not kept bytes
    np.testing.assert_array_equal(
        old.load()["episode_return"], open_store(old.path)["episode_return"]
    )


@pytest.mark.parametrize("libzstd", [True, False], ids=["libzstd", "numcodecs"])
def test_unzstd_equals_zarr_codec_on_every_chunk_and_refuses_a_damaged_one(
    tmp_path, monkeypatch, libzstd
):
    from numcodecs import Zstd

    if not libzstd:
        monkeypatch.setattr(store, "_libzstd", lambda: None)
    elif store._libzstd() is None:
        pytest.skip("no libzstd.so.1 on this machine: numcodecs decodes (the other case)")
    path = _write(tmp_path)
    where = layout(path)
    decoded = 0
    for name, meta in where.arrays.items():
        how = store.plain(meta)
        for _, rel in store.chunk_files(name, how):
            if (path / rel).exists():
                raw = (path / rel).read_bytes()
                assert bytes(store.unzstd(raw, store._nbytes(how))) == Zstd().decode(raw), rel
                decoded += 1
    assert decoded >= 8
    raw = (path / "episode_return" / "c" / "0" / "0" / "0").read_bytes()
    size = store._nbytes(store.plain(where.arrays["episode_return"]))
    with pytest.raises(RuntimeError, match="Zstd decompression error"):
        store.unzstd(raw[: len(raw) // 2], size)  # truncated
    with pytest.raises(RuntimeError, match="Zstd decompression error"):
        store.unzstd(raw, size - 4)  # more than the chunk holds
    damaged = bytearray(raw)
    damaged[len(raw) // 2] ^= 0xFF
    try:  # a flipped bit may still decode (zstd frames here carry no checksum) ...
        values = store.unzstd(bytes(damaged), size)
    except RuntimeError as err:
        assert str(err).startswith("Zstd decompression error")
    else:  # ... but never to the original values
        assert bytes(values) != Zstd().decode(raw)
