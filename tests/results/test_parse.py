"""parse: stores -> one labelled tensor (dims, coords, values, missing, duplicates, CLI)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from rich.console import Console

from sweepax.results import parse
from sweepax.results.parse import (
    ABSENT,
    REASON_NOT_PLANNED,
    PlannedCell,
    TaskStore,
    _value,
    align,
    allocate,
    coordinate_values,
    dataset_content,
    fill,
    label_names,
    main,
    missing_cells,
    parse_study,
    read_manifest,
    read_stores,
)
from sweepax.results.store import open_store
from sweepax.results.values import nanmean


def _parse(study_dir, **kwargs):
    out = io.StringIO()
    ds = parse_study(study_dir, progress=False, console=Console(file=out, width=200), **kwargs)
    return ds, out.getvalue()


@pytest.fixture
def study(stores, tmp_path, monkeypatch):
    """tmaze_5 x {32, 64} and tmaze_10 x 32 ran; tmaze_10 x 64 planned but never finished;
    tmaze_5 x 64 only with lr 1e-3 (lr 1e-4 excluded from the plan)."""
    monkeypatch.chdir(tmp_path)
    stores.make("t5_h32", env="tmaze_5", hidden_size=32)
    stores.make("t5_h64", env="tmaze_5", hidden_size=64, lr=(1e-3,))
    stores.make("t10_h32", env="tmaze_10", hidden_size=32)
    stores.plan("t10_h64", env="tmaze_10", hidden_size=64)
    stores.write_manifest(tmp_path / "runs" / "tmaze_ppo.json")
    return stores


def test_parse_dims_coords_and_fixed_hparams(study):
    ds, _ = _parse(study.study_dir)
    assert ds["episode_return"].dims == ("env", "hidden_size", "lr", "lambda0", "seed", "update")
    assert ds["final_return"].dims == ("env", "hidden_size", "lr", "lambda0", "seed")
    assert ds["env"].values.tolist() == ["tmaze_10", "tmaze_5"]
    assert ds["hidden_size"].values.tolist() == [32, 64]
    assert ds["lr"].values.tolist() == [1e-4, 1e-3]
    assert ds["lambda0"].values.tolist() == [0.5, 0.9]
    assert ds["seed"].values.tolist() == [0, 1, 2]
    assert ds["update"].values.tolist() == [0, 1, 2, 3, 4]
    assert ds["env_steps"].dims == ("update",)
    assert ds["env_steps"].values.tolist() == [512, 1024, 1536, 2048, 2560]
    assert ds.attrs["fixed"] == {"memoryless": False, "double_critic": False, "entropy_coeff": 0.01}
    assert ds.attrs["hparams"] == ["hidden_size", "lr", "lambda0"]
    assert ds.attrs["study"] == "tmaze_ppo" and ds.attrs["entries"] == ["ppo"]
    assert {s["task_id"] for s in ds.attrs["stores"]} == {"t5_h32", "t5_h64", "t10_h32"}
    assert set(ds.data_vars) == {
        "episode_return",
        "discounted_return",
        "episodes",
        "loss_total",
        "loss_value",
        "loss_policy",
        "entropy",
        "approx_kl",
        "final_return",
        "final_discounted_return",
        "final_episodes",
    }


def test_parse_values_land_at_their_labelled_cells(study):
    ds, _ = _parse(study.study_dir)
    labels = {"env": "tmaze_10", "hidden_size": 32, "lr": 1e-4, "lambda0": 0.9}
    got = ds["episode_return"].sel(**labels, seed=2, update=4)
    assert float(got) == pytest.approx(study.value("episode_return", labels, 2, 4), rel=1e-6)
    labels = {"env": "tmaze_5", "hidden_size": 64, "lr": 1e-3, "lambda0": 0.5}
    got = ds["final_discounted_return"].sel(**labels, seed=1)
    assert float(got) == pytest.approx(
        study.value("final_discounted_return", labels, 1, -1), rel=1e-6
    )
    # the provenance coords point back at the store row that holds the cell
    cell = ds.sel(**labels, seed=1)
    store = ds.attrs["stores"][int(cell["store_index"])]
    assert store["task_id"] == "t5_h64"
    row = open_store(store["path"]).isel(config=int(cell["config_index"]))
    assert (float(row["lr"]), float(row["lambda0"])) == (1e-3, 0.5)


def test_parse_missing_cells_are_nan_and_named_by_the_manifest(study):
    ds, printed = _parse(study.study_dir)
    assert np.isnan(ds["episode_return"].sel(env="tmaze_10", hidden_size=64)).all()
    assert np.isnan(ds["final_return"].sel(env="tmaze_5", hidden_size=64, lr=1e-4)).all()
    assert not np.isnan(ds["final_return"].sel(env="tmaze_5", hidden_size=64, lr=1e-3)).any()
    missing = ds.attrs["missing"]
    assert len(missing) == 6
    never_done = [m for m in missing if m["task_id"] == "t10_h64"]
    assert len(never_done) == 4
    assert never_done[0] == {
        "env": "tmaze_10",
        "hidden_size": 64,
        "lr": 1e-4,
        "lambda0": 0.5,
        "seeds": [0, 1, 2],
        "task_id": "t10_h64",
        "reason": "missing (task t10_h64 has no complete store)",
    }
    excluded = [m for m in missing if m["task_id"] is None]
    assert [(m["env"], m["hidden_size"], m["lr"], m["lambda0"]) for m in excluded] == [
        ("tmaze_5", 64, 1e-4, 0.5),
        ("tmaze_5", 64, 1e-4, 0.9),
    ]
    assert excluded[0]["reason"] == "not planned (excluded or never run)"
    assert "missing: 18 (config, seed) cells are NaN" in printed
    assert "t10_h64" in printed


def test_parse_without_manifest_still_works_and_lists_missing_as_unplanned(study, tmp_path):
    (tmp_path / "runs" / "tmaze_ppo.json").unlink()
    ds, _ = _parse(study.study_dir)
    # tmaze_10 x 64 is unknown without the manifest: the cells exist only by the product
    assert ds.attrs["manifest"] is None
    assert {m["task_id"] for m in ds.attrs["missing"]} == {None}
    assert len(ds.attrs["missing"]) == 6


def test_parse_writes_scores_zarr_atomically(study):
    ds, _ = _parse(study.study_dir, discounted=True)
    path = study.study_dir / "scores.zarr"
    reread = xr.open_zarr(path).load()
    xr.testing.assert_identical(reread.drop_attrs(), ds.drop_attrs())
    assert reread.attrs["discounted"] is True
    assert reread.attrs["missing"] == ds.attrs["missing"]
    _parse(study.study_dir)  # re-parse replaces it
    assert not [p for p in study.study_dir.iterdir() if p.name.startswith(".")]


def test_parse_duplicate_cells_newest_store_wins_and_is_reported(study):
    rerun = study.make("t5_h32", value=lambda *a: -1.0, plan=False)
    # a re-plan that split tasks differently: lr 1e-3 of tmaze_5 x 32 again, newest of all
    split = study.make("t5_h32_lr3", lr=(1e-3,), value=lambda *a: -2.0, plan=False)
    ds, printed = _parse(study.study_dir)
    cell = ds["final_return"].sel(env="tmaze_5", hidden_size=32)
    assert (cell.sel(lr=1e-3) == -2.0).all()
    assert (cell.sel(lr=1e-4) == -1.0).all()
    sup = {(s["path"], s["superseded_by"]["path"]): s["cells"] for s in ds.attrs["superseded"]}
    first = str(study.study_dir / "t5_h32.zarr")
    assert sup == {(first, str(rerun)): 6, (first, str(split)): 6, (str(rerun), str(split)): 6}
    assert f"{split} won over {rerun} (6 cells ignored" in printed


def test_parse_pads_shorter_runs_with_nan_and_broadcasts_env_steps(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("short", hidden_size=32, n_update=3, steps_per_update=100)
    stores.make("long", hidden_size=64, n_update=5)
    ds, _ = _parse(stores.study_dir)
    assert ds.sizes["update"] == 5
    short = ds["episode_return"].sel(hidden_size=32)
    assert np.isnan(short.sel(update=[3, 4])).all() and not np.isnan(short.sel(update=2)).any()
    assert ds["env_steps"].dims == ("env", "hidden_size", "lr", "lambda0", "update")
    np.testing.assert_array_equal(
        ds["env_steps"].sel(env="tmaze_5", hidden_size=32, lr=1e-3, lambda0=0.5),
        [100, 200, 300, np.nan, np.nan],
    )
    assert ds["env_steps"].sel(hidden_size=64, lr=1e-3, lambda0=0.5, update=4).item() == 2560


def test_parse_ignores_temp_dirs_of_killed_writers(study):
    import shutil

    shutil.copytree(study.study_dir / "t5_h32.zarr", study.study_dir / ".t10_h64.zarr.tmp-99")
    ds, _ = _parse(study.study_dir)
    assert len(ds.attrs["stores"]) == 3
    assert np.isnan(ds["episode_return"].sel(env="tmaze_10", hidden_size=64)).all()


def test_parse_cli_missing_folder_is_a_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.results.parse", "results/nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: results/nope: no such study folder")


def test_parse_cli_folder_without_complete_stores(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "empty" / ".x.zarr.tmp-1").mkdir(parents=True)
    assert main(["empty", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: results/empty: no complete task stores (<task_id>.zarr); run the "
        "tasks first (`nox -s status` lists which are missing)\n"
    )
    assert main([]) == 2
    assert "no study folder holds complete task stores" in capsys.readouterr().err


def test_parse_cli_bad_manifest_names_the_file(study, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"tasks": [{"index": 0}]}')
    assert main([str(study.study_dir), "--manifest", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: not a sweepax manifest") and err.count("\n") == 1


def test_parse_cli_parses_every_study_when_none_named(study, tmp_path, capsys):
    assert main(["--no-progress", "--discounted"]) == 0
    assert (study.study_dir / "scores.zarr" / "zarr.json").is_file()
    out = capsys.readouterr().out
    assert "tmaze_ppo: 3 stores" in out and "discounted_return" in out


def _grid_store(env, rows, seeds=(0,), n_update=2, dtype=np.float32, steps=(10, 20), final=1.0):
    """A ``TaskStore`` with the given label rows, built in memory (the parse steps' input)."""
    n = len(rows)
    ds = xr.Dataset(
        {
            "episode_return": (
                ("config", "seed", "update"),
                np.zeros((n, len(seeds), n_update), dtype),
            ),
            "final_return": (("config", "seed"), np.full((n, len(seeds)), final, dtype)),
        },
        coords={"seed": list(seeds), "env_steps": ("update", list(steps)[:n_update])},
    )
    names = ("env", *rows[0])
    values = tuple((env, *row.values()) for row in rows)
    return TaskStore(0, "t", Path("t.zarr"), "2026", env, names, values, dataset_content(ds), {})


def test_stores_and_planned_cells_hold_one_copy_of_each_label_value(study):
    same = {}
    _, stores, _ = read_stores(study.study_dir, same=same)
    planned = read_manifest(Path("runs/tmaze_ppo.json"), label_names(stores), same)
    for s in stores:  # each config row's labels, as the store's attributes and coords say
        ds = open_store(s.path)
        for c in range(ds.sizes["config"]):
            labels = s.labels(c)
            assert labels["env"] == ds.attrs["static"]["env"]
            assert labels["hidden_size"] == ds.attrs["static"]["hidden_size"]
            for name in ds.attrs["hparams_vmapped"]:
                assert labels[name] == ds[name].values[c].item()
    seen = {}
    for values in [*(row for s in stores for row in s.rows), *(c.labels for c in planned)]:
        for value in values:
            if value is not ABSENT:
                assert seen.setdefault((type(value), repr(value)), value) is value
    ids = {s.task_id: s.task_id for s in stores}
    assert {c.task_id for c in planned} == {*ids, "t10_h64"}
    assert all(c.task_id is ids[c.task_id] for c in planned if c.task_id in ids)
    assert len({id(s.names) for s in stores}) == 1 and len({id(s.attrs) for s in stores}) == 1
    assert len({id(s.content) for s in stores}) == 2  # t5_h64 has fewer config rows
    aligned = align(stores, label_names(stores), same)
    planned = read_manifest(Path("runs/tmaze_ppo.json"), label_names(stores), same)
    rows = {id(row) for s in aligned for row in s.rows}
    ran = [c for c in planned if c.task_id != "t10_h64"]
    assert ran and all(id(c.labels) in rows for c in ran)  # the stores' rows, not copies
    assert [s.labels(c) for s in aligned for c in range(len(s.rows))] == [
        s.labels(c) for s in stores for c in range(len(s.rows))
    ]


def test_one_copy_of_a_label_value_keeps_types_nan_and_signed_zero_apart():
    same = {}
    nan = float("nan")
    assert _value(same, nan) is nan and _value(same, float("nan")) is nan
    assert _value(same, 0.0) is not _value(same, -0.0)
    assert [type(_value(same, v)) for v in (1, 1.0, True, "1", None)] == [
        int, float, bool, str, type(None)
    ]  # fmt: skip


def test_config_means_a_block_at_a_time_equal_the_means_of_the_whole_curves(monkeypatch):
    rng = np.random.default_rng(1)
    curve = rng.normal(size=(3, 4, 2, 5, 7)).astype(np.float32)  # (*configs, seed, update)
    curve[0, 1] = np.nan  # configs with no finite value
    curve[2, 3, :, 1:] = np.nan
    whole = nanmean(nanmean(curve, axis=-1), axis=-1).reshape(-1)
    monkeypatch.setattr(parse, "REPORT_BYTES", 64)  # smaller than one config's curves
    np.testing.assert_array_equal(parse.config_means(curve), whole)
    assert np.isnan(whole[2:4]).all() and np.isfinite(whole[23])
    np.testing.assert_array_equal(parse.config_means(curve[0, 0, 0]), whole[:1])  # no hparams


def test_coordinate_values_sort_numbers_then_strings_then_none_and_split_fixed():
    stores = [
        _grid_store("b", [{"x": 10, "s": "z", "k": 1}, {"x": 2.5, "s": None, "k": 1}]),
        _grid_store("a", [{"x": 1, "s": "a", "k": 1}], seeds=(3, 1)),
    ]
    planned = [
        PlannedCell(("c", 0, "a", 1), (7,), "p"),
        PlannedCell(("d", -1, ABSENT, ABSENT), (9,), "q"),  # not fully labelled: adds nothing
    ]
    grid = coordinate_values(stores, planned, ["x", "s", "k"])
    assert grid.coords == {
        "env": ["a", "b", "c"],
        "x": [0, 1, 2.5, 10],
        "s": ["a", "z", None],
        "k": [1],
    }
    assert grid.varying == ["x", "s"] and grid.fixed == {"k": 1}
    assert grid.seeds == [0, 1, 3, 7] and grid.shape == (3, 4, 3, 4)
    assert grid.head({"env": "b", "x": 2.5, "s": None, "k": 1}) == (1, 2, 2)


def test_allocate_takes_the_widest_dtype_and_fill_lets_the_newest_store_win():
    old = _grid_store("e", [{"x": 1}, {"x": 2}])
    new = _grid_store("e", [{"x": 2}], dtype=np.float64, final=5.0)
    new = new._replace(index=1, completed_at="2027")
    stores = [old, new]
    grid = coordinate_values(stores, [], ["x"])
    tensor = allocate(stores, grid)
    assert tensor.final["final_return"].dtype == np.float64
    assert np.isnan(tensor.final["final_return"]).all() and (tensor.store_index == -1).all()
    assert tensor.env_steps.tolist() == [10, 20]  # the same for every store: one (update,) row
    superseded = fill(stores, grid, tensor)
    assert superseded == {(1, 0): 1}
    assert tensor.final["final_return"][0, :, 0].tolist() == [1.0, 5.0]
    assert tensor.store_index[0, :, 0].tolist() == [0, 1]
    assert tensor.config_index[0, :, 0].tolist() == [0, 0]


def test_missing_cells_group_seeds_per_task_and_name_unplanned_ones():
    stores = [_grid_store("e", [{"x": 1}], seeds=(0,))]
    planned = [PlannedCell(("e", 2), (0, 1), "t2")]
    grid = coordinate_values(stores, planned, ["x"])
    tensor = allocate(stores, grid)
    fill(stores, grid, tensor)
    assert missing_cells(grid, tensor.store_index, planned) == [
        {"env": "e", "x": 1, "seeds": [1], "task_id": None, "reason": REASON_NOT_PLANNED},
        {
            "env": "e",
            "x": 2,
            "seeds": [0, 1],
            "task_id": "t2",
            "reason": "missing (task t2 has no complete store)",
        },
    ]
