"""best's measures: auc, final and last-k (the last K updates in which an episode ended)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from sweepax.results.best import best, last_k_mean, main, output_stem
from sweepax.results.parse import parse_study

nan = math.nan
A = (1e-3, 0.5)  # (lr, lambda0): learns early, then collapses
B = (1e-4, 0.9)  # learns late; no episode ends in update 10
CURVES = {
    A: [5, 5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1],
    B: [0, 0, 0, 0, 0, 0, 0, 0, 2, 3, nan, 4],
}


def early_or_late(metric, labels, seed, update):
    if metric not in ("episode_return", "discounted_return"):
        return 0.0
    curve = CURVES.get((labels["lr"], labels["lambda0"]), [0.0] * 12)
    return curve[update] + 0.1 * seed + (0.5 if metric == "discounted_return" else 0.0)


def _quiet():
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def scores(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("t", n_update=12, value=early_or_late)
    return parse_study(stores.study_dir, progress=False, console=_quiet())


def _winner(record):
    r = record["envs"]["tmaze_5"]
    return (r["hparams"]["lr"], r["hparams"]["lambda0"]), r


def test_auc_and_last_k_pick_different_winners(scores):
    seeds = np.array([0, 1, 2]) * 0.1
    won, r = _winner(best(scores, "auc"))
    assert won == A  # 9 x 5 + 3 x 1 over 12 updates
    assert r["per_seed"] == pytest.approx(48 / 12 + seeds)
    won, r = _winner(best(scores, "last-k", last=3))
    assert won == B  # its last three updates with an ended episode: 2, 3 and 4
    assert r["per_seed"] == pytest.approx(9 / 3 + seeds)
    assert r["last"] == 3 and r["measure"] == "last-k"
    won, r = _winner(best(scores, "last-k"))  # K = 10: A's 7 x 5 + 3 x 1 beat B's 9 / 10
    assert won == A and r["per_seed"] == pytest.approx(38 / 10 + seeds)
    won, r = _winner(best(scores, "last-k", discounted=True, last=3))
    assert won == B and r["per_seed"] == pytest.approx(3.5 + seeds)


def test_last_k_mean_skips_updates_without_episodes():
    x = np.array([[1.0, 2.0, nan, 3.0, nan], [nan, nan, nan, nan, 7.0], [nan] * 5])
    out = last_k_mean(x, 2)
    assert out[0] == 2.5 and out[1] == 7.0 and math.isnan(out[2])
    assert last_k_mean(x, 10)[0] == 2.0  # fewer than K: all of them


def test_output_stems():
    assert output_stem("last-k", False) == "best_last10"
    assert output_stem("last-k", True, 3) == "best_last3_discounted"
    assert output_stem("auc", True) == "best_auc_discounted"


def test_cli_last_k_writes_best_last_k(scores, stores, capsys):
    assert main([str(stores.study_dir), "--no-progress", "--measure", "last-k",
                 "--last", "3", "--resamples", "1000"]) == 0  # fmt: skip
    record = json.loads((stores.study_dir / "best_last3.json").read_text())
    assert record["measure"] == "last-k" and record["last"] == 3
    assert _winner(record)[0] == B
    assert (stores.study_dir / "best_last3.png").stat().st_size > 1000
    assert "best by last3 (episode_return)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--last", "3"], "--last 3: applies only to --measure last-k; add it"),
        (["--measure", "last-k", "--last", "0"], "--last 0: use at least 1 (the last K updates)"),
    ],
)
def test_cli_bad_last_is_a_one_line_error(tmp_path, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.results.best", "x", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr == f"error: {message}\n"


def test_cli_last_above_the_updates_is_refused(scores, stores, capsys):
    assert main([str(stores.study_dir), "--no-progress", "--measure", "last-k",
                 "--last", "13"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--last 13:" in err and "has 12 updates" in err
    assert not (stores.study_dir / "best_last13.json").exists()
