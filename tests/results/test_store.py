"""Task stores: round trip, atomic completion, re-runs never clobber."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import numpy as np
import pytest
import xarray as xr

from sweepax.results.store import (
    all_complete_stores,
    complete_stores,
    is_complete,
    open_store,
    read_attrs,
    write_task_store,
)


def test_store_round_trip_keeps_dims_coords_values_and_attrs(stores):
    path = stores.make("task_a", env="tmaze_10", hidden_size=64, seeds=(7, 8, 9))
    assert path == stores.study_dir / "task_a.zarr"
    assert is_complete(path)
    ds = open_store(path)
    assert ds["episode_return"].dims == ("config", "seed", "update")
    assert ds["final_return"].dims == ("config", "seed")
    assert ds.sizes == {"config": 4, "seed": 3, "update": 5}
    assert ds["lr"].dims == ("config",)
    np.testing.assert_array_equal(ds["lr"].values, [1e-3, 1e-3, 1e-4, 1e-4])
    np.testing.assert_array_equal(ds["lambda0"].values, [0.5, 0.9, 0.5, 0.9])
    assert ds["seed"].values.tolist() == [7, 8, 9]
    assert ds["update"].values.tolist() == [0, 1, 2, 3, 4]
    assert ds["env_steps"].dims == ("update",)
    assert ds["env_steps"].values.tolist() == [512, 1024, 1536, 2048, 2560]
    # config row 2 = (lr 1e-4, lambda0 0.5), seed 8, update 3
    expected = 64 + 1000 * 1e-4 + 10 * 0.5 + 0.08 + 5 + 3
    assert float(ds["episode_return"][2, 1, 3]) == pytest.approx(expected, rel=1e-6)
    a = ds.attrs
    assert a["static"]["hidden_size"] == 64 and a["static"]["env"] == "tmaze_10"
    assert a["provenance"] == {"git_commit": "deadbeef", "dirty": False, "host": "test"}
    assert a["hparams_static"] == ["env", "memoryless", "double_critic", "hidden_size"]
    assert a["hparams_vmapped"] == ["lr", "lambda0", "entropy_coeff"]
    assert a["task_id"] == "task_a" and a["entry"] == "ppo" and a["study"] == "tmaze_ppo"
    assert a["complete"] is True
    done = dt.datetime.fromisoformat(a["completed_at"])
    assert done.tzinfo is not None and abs(dt.datetime.now(dt.UTC) - done).total_seconds() < 60


def test_store_opens_with_plain_xarray_open_zarr_and_read_attrs(stores):
    path = stores.make("task_a")
    ds = xr.open_zarr(path)  # consolidated metadata: no fallback warning (warnings are errors)
    assert set(ds.data_vars) >= {"episode_return", "discounted_return", "final_return"}
    assert ds.attrs["complete"] is True
    attrs = read_attrs(path)
    assert attrs["task_id"] == "task_a" and attrs["static"]["n_seeds"] == 3
    assert read_attrs({"x": '{"a": [1]}', "y": "[oops"}) == {"x": {"a": [1]}, "y": "[oops"}


def test_store_rejects_metric_with_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match="episode_return.*expected \\(2, 3, 4\\)"):
        write_task_store(
            tmp_path,
            "t",
            {"episode_return": np.zeros((2, 3, 5))},
            {"lr": [0.1, 0.2]},
            [0, 1, 2],
            np.arange(4),
            {},
        )
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even the temp dir


def test_killed_writer_is_not_taken_as_complete(stores):
    good = stores.make("task_a")
    # A killed writer leaves its hidden temp dir (a store with data but no `complete` marker) ...
    tmp = stores.study_dir / ".task_b.zarr.tmp-4242"
    shutil.copytree(good, tmp)
    # ... and a store under a final name without the marker is not a result either.
    unmarked = stores.study_dir / "task_c.zarr"
    xr.Dataset({"episode_return": (("config", "seed", "update"), np.zeros((1, 1, 2)))}).to_zarr(
        unmarked, zarr_format=3, consolidated=False
    )
    assert is_complete(tmp)  # copied marker: only the hidden name protects it
    assert not is_complete(unmarked)
    assert complete_stores(stores.study_dir) == {"task_a": good}
    assert [i["path"] for i in all_complete_stores(stores.study_dir)] == [good]


def test_store_with_a_missing_array_is_not_complete(stores):
    path = stores.make("task_a")
    shutil.rmtree(path / "final_return")
    assert not is_complete(path)
    assert complete_stores(stores.study_dir) == {}


def test_rerun_never_clobbers_and_newest_wins(stores):
    first = stores.make("task_a")
    before = (first / "zarr.json").read_text()
    second = stores.make("task_a", value=lambda *a: 1.0)
    assert first.exists() and (first / "zarr.json").read_text() == before
    assert re.fullmatch(r"task_a\.\d{8}T\d{12}\.zarr", second.name)
    assert complete_stores(stores.study_dir) == {"task_a": second}
    assert float(open_store(second)["episode_return"].max()) == 1.0
    assert not [p for p in stores.study_dir.iterdir() if p.name.startswith(".")]


def test_string_vmapped_values_round_trip_without_warnings(tmp_path):
    metrics = {"episode_return": np.ones((2, 1, 3)), "final_return": np.ones((2, 1))}
    path = write_task_store(
        tmp_path,
        "t",
        metrics,
        {"schedule": ["linear", "constant"]},
        [0],
        np.arange(1, 4),
        {"study": "s", "static": {"env": "tmaze_5"}},
    )
    assert open_store(path)["schedule"].values.tolist() == ["linear", "constant"]


def test_float32_vmapped_values_keep_their_decimal_labels(tmp_path):
    metrics = {"episode_return": np.ones((2, 1, 3)), "final_return": np.ones((2, 1))}
    lrs = np.asarray([2.5e-4, 2.5e-3], dtype=np.float32)  # as a traced config would hold them
    path = write_task_store(tmp_path, "t", metrics, {"lr": lrs}, [0], np.arange(1, 4), {})
    assert open_store(path)["lr"].values.tolist() == [2.5e-4, 2.5e-3]


def test_a_writer_that_fails_half_way_leaves_nothing(stores, monkeypatch):
    import sweepax.results.store as store_mod

    def boom(path):
        raise OSError("disk full")

    monkeypatch.setattr(store_mod, "consolidate", boom)
    with pytest.raises(OSError, match="disk full"):
        stores.make("task_a")
    assert list(stores.study_dir.iterdir()) == []


def test_values_are_plain_json():
    from pathlib import Path

    from sweepax.results.values import jsonable

    got = jsonable({1: (np.float32(0.5), np.int64(3)), "p": Path("a/b"), "x": [float("nan")]})
    assert got == {"1": [0.5, 3], "p": "a/b", "x": [None]}
