"""best: planted winners per measure, tie-breaking, JSON record, plots, CLI."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from sweepax.results.best import (
    best,
    main,
    open_scores,
    run_best,
    seed_summary,
    source_row,
    winning_row,
)
from sweepax.results.parse import parse_study
from sweepax.results.store import open_store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (env, hidden_size, lr, lambda0) that each measure should pick
PLANTED = {
    "episode_return": {"tmaze_5": (64, 1e-3, 0.9), "tmaze_10": (32, 1e-4, 0.5)},
    "final_return": {"tmaze_5": (32, 1e-4, 0.5), "tmaze_10": (64, 1e-3, 0.5)},
    "discounted_return": {"tmaze_5": (32, 1e-3, 0.9), "tmaze_10": (64, 1e-4, 0.9)},
    "final_discounted_return": {"tmaze_5": (64, 1e-4, 0.5), "tmaze_10": (32, 1e-3, 0.9)},
}


def planted_value(metric, labels, seed, update):
    """1 + 0.1*seed (+ update for per-update metrics), +10 at the metric's planted config;
    no episode ends in update 0 (NaN), which the auc must skip."""
    if metric not in PLANTED:
        return 0.0
    key = (labels["hidden_size"], labels["lr"], labels["lambda0"])
    bonus = 10.0 if PLANTED[metric][labels["env"]] == key else 0.0
    if update == 0:
        return math.nan
    return 1.0 + bonus + 0.1 * seed + max(update, 0)


def _quiet():
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def scores(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for env in ("tmaze_5", "tmaze_10"):
        for h in (32, 64):
            stores.make(f"{env}_h{h}", env=env, hidden_size=h, value=planted_value)
    return parse_study(stores.study_dir, progress=False, console=_quiet())


@pytest.mark.parametrize(
    ("measure", "discounted", "metric"),
    [
        ("auc", False, "episode_return"),
        ("final", False, "final_return"),
        ("auc", True, "discounted_return"),
        ("final", True, "final_discounted_return"),
    ],
)
def test_best_finds_the_planted_config(scores, measure, discounted, metric):
    result = best(scores, measure, discounted)
    assert result["measure"] == measure and result["discounted"] is discounted
    for env, (h, lr, lam) in PLANTED[metric].items():
        r = result["envs"][env]
        assert (r["hparams"]["hidden_size"], r["hparams"]["lr"], r["hparams"]["lambda0"]) == (
            h,
            lr,
            lam,
        )
        per_update = 2.5 if measure == "auc" else 0.0  # auc: mean of updates 1..4
        expected = [11.0 + 0.1 * s + per_update for s in (0, 1, 2)]
        assert r["per_seed"] == pytest.approx(expected)
        assert r["seeds"] == [0, 1, 2] and r["n_seeds"] == 3
        assert r["score"] == pytest.approx(sum(expected) / 3)
        assert r["std"] == pytest.approx(0.1)
        assert r["sem"] == pytest.approx(0.1 / math.sqrt(3))


def test_best_record_names_fixed_hparams_store_and_config_row(scores):
    result = best(scores, "auc", False)
    r = result["envs"]["tmaze_5"]
    assert set(r) == {
        "hparams",
        "score",
        "std",
        "sem",
        "n_seeds",
        "seeds",
        "per_seed",
        "measure",
        "discounted",
        "store",
        "config_index",
    }
    assert r["hparams"] == {
        "hidden_size": 64,
        "lr": 1e-3,
        "lambda0": 0.9,
        "memoryless": False,
        "double_critic": False,
        "entropy_coeff": 0.01,
    }
    assert result["hparams"] == ["hidden_size", "lr", "lambda0"]
    assert result["fixed"] == {"memoryless": False, "double_critic": False, "entropy_coeff": 0.01}
    assert r["store"].endswith("tmaze_5_h64.zarr")
    row = open_store(r["store"]).isel(config=r["config_index"])
    assert (float(row["lr"]), float(row["lambda0"])) == (1e-3, 0.9)
    assert row.attrs["static"]["hidden_size"] == 64
    json.dumps(result, allow_nan=False)  # strict JSON


def test_best_ties_go_to_the_first_config_in_sorted_order(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("b", hidden_size=64, value=lambda *a: 3.0)
    stores.make("a", hidden_size=32, lr=(1e-3, 1e-4), value=lambda *a: 3.0)
    scores = parse_study(stores.study_dir, progress=False, console=_quiet())
    for measure in ("auc", "final"):
        r = best(scores, measure, False)["envs"]["tmaze_5"]
        assert {k: r["hparams"][k] for k in ("hidden_size", "lr", "lambda0")} == {
            "hidden_size": 32,
            "lr": 1e-4,
            "lambda0": 0.5,
        }
        assert r["std"] == 0.0 and r["score"] == 3.0


def test_best_missing_seeds_do_not_poison_and_empty_configs_never_win(
    stores, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    def value(metric, labels, seed, update):
        return 5.0 if labels["hidden_size"] == 64 and labels["lr"] == 1e-3 else -5.0

    # hidden 64 ran only seeds 0 and 1, and only lr 1e-3: its lr 1e-4 cells are all NaN
    stores.make("h64", hidden_size=64, lr=(1e-3,), seeds=(0, 1), value=value)
    stores.make("h32", hidden_size=32, seeds=(0, 1, 2), value=value)
    scores = parse_study(stores.study_dir, progress=False, console=_quiet())
    r = best(scores, "final", False)["envs"]["tmaze_5"]
    assert (r["hparams"]["hidden_size"], r["hparams"]["lr"]) == (64, 1e-3)
    assert r["n_seeds"] == 2 and r["seeds"] == [0, 1] and r["score"] == 5.0


def test_best_cli_writes_json_png_and_comparison_for_several_studies(
    stores, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    for env in ("tmaze_5", "tmaze_10"):
        stores.make(f"{env}_h32", env=env, hidden_size=32, value=planted_value)
    other = type(stores)(tmp_path / "results" / "tmaze_memoryless")
    for env in ("tmaze_5", "tmaze_10"):
        other.make(f"{env}_mlp", env=env, memoryless=True, value=lambda *a: 0.5)
    assert main(["--no-progress", "--measure", "final"]) == 0
    out = capsys.readouterr().out
    for study_dir in (stores.study_dir, other.study_dir):
        assert (study_dir / "scores.zarr").is_dir()  # parsed first, since it was missing
        record = json.loads((study_dir / "best_final.json").read_text())
        assert set(record["envs"]) == {"tmaze_5", "tmaze_10"}
        assert record["measure"] == "final" and record["discounted"] is False
        png = (study_dir / "best_final.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 1000
    record = json.loads((other.study_dir / "best_final.json").read_text())
    assert record["envs"]["tmaze_10"]["score"] == 0.5
    assert record["envs"]["tmaze_10"]["hparams"]["memoryless"] is True
    comparison = (tmp_path / "results" / "best_final.png").read_bytes()
    assert comparison.startswith(PNG_MAGIC) and len(comparison) > 1000
    # one combined table with a row per study and env
    assert "best by final (final_return)" in out
    assert out.count("tmaze_memoryless") >= 2 and out.count("tmaze_ppo") >= 2


def test_best_reparses_when_a_newer_store_appears(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("h32", hidden_size=32, value=planted_value)
    run_best(
        [stores.study_dir], "auc", True, tmp_path / "results", console=_quiet(), progress=False
    )
    assert len(open_scores(stores.study_dir).attrs["stores"]) == 1
    assert (stores.study_dir / "best_auc_discounted.json").is_file()
    assert (stores.study_dir / "best_auc_discounted.png").read_bytes().startswith(PNG_MAGIC)
    assert not (tmp_path / "results" / "best_auc_discounted.png").exists()  # one study only
    stores.make("h64", hidden_size=64, value=planted_value)
    run_best(
        [stores.study_dir], "auc", True, tmp_path / "results", console=_quiet(), progress=False
    )
    assert len(open_scores(stores.study_dir).attrs["stores"]) == 2
    record = json.loads((stores.study_dir / "best_auc_discounted.json").read_text())
    assert record["envs"]["tmaze_5"]["hparams"]["hidden_size"] == 32
    assert record["envs"]["tmaze_5"]["hparams"]["lr"] == 1e-3


def test_best_cli_unknown_study_is_a_one_line_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.results.best", "tmaze_nope"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: tmaze_nope: no such study folder; pass results/<study> or a "
        "study name under results\n"
    )


def test_winning_row_skips_empty_rows_and_breaks_ties_by_order():
    nan = math.nan
    scores = np.array([[nan, nan], [1.0, 3.0], [2.0, nan], [4.0, 0.0]])
    assert winning_row(scores) == 1  # rows 1, 2 and 3 all average 2.0: the first wins
    assert winning_row(np.array([[nan, 5.0], [4.0, 4.0]])) == 0  # one finite seed is enough
    assert winning_row(np.full((2, 3), nan)) is None


def test_seed_summary_uses_only_seeds_with_a_score():
    r = seed_summary(np.array([1.0, math.nan, 3.0], np.float32), [7, 8, 9])
    assert r == {
        "score": 2.0,
        "std": pytest.approx(math.sqrt(2)),
        "sem": pytest.approx(1.0),
        "n_seeds": 2,
        "seeds": [7, 9],
        "per_seed": [1.0, 3.0],
    }
    assert seed_summary(np.array([4.0]), [0])["std"] == 0.0


def test_source_row_is_the_store_row_that_gave_most_seeds():
    assert source_row(np.array([2, 1, 1, -1]), np.array([0, 3, 3, -1])) == (1, 3)
    assert source_row(np.array([-1, -1]), np.array([-1, -1])) == (None, None)
