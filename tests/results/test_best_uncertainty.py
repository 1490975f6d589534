"""best with uncertainty: probability of being best, uncertainty set, CI, JSON and table."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import pytest
from rich.console import Console

from sweepax.results.best import best_record, main, uncertainty
from sweepax.results.parse import parse_study


def _quiet():
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def race(stores, tmp_path, monkeypatch, close_race):
    monkeypatch.chdir(tmp_path)
    for h in (32, 64):
        stores.make(f"h{h}", hidden_size=h, value=close_race.value)
    return parse_study(stores.study_dir, progress=False, console=_quiet())


def _key(hparams):
    return (hparams["hidden_size"], hparams["lr"], hparams["lambda0"])


def test_probability_of_being_best_matches_the_exact_bootstrap_odds(race, close_race):
    a, b = close_race.A, close_race.B
    # A's mean is always 10; B's resampled mean beats it unless all three draws are 9:
    # P(B best) = 1 - (2/3)^3 = 19/27, P(A best) = 8/27; the other six configs never win.
    r = uncertainty(race, "final", n_resamples=20_000, seed=3)["tmaze_5"]
    ranked = r["configs"]
    assert [_key(c["hparams"]) for c in ranked[:2]] == [b, a]
    assert ranked[0]["p_best"] == pytest.approx(19 / 27, abs=0.015)
    assert ranked[1]["p_best"] == pytest.approx(8 / 27, abs=0.015)
    assert len(ranked) == 8 and all(c["p_best"] == 0.0 for c in ranked[2:])
    assert sum(c["p_best"] for c in ranked) == pytest.approx(1.0)
    assert r["p_best"] == ranked[0]["p_best"]
    assert [_key(h) for h in r["uncertainty_set"]] == [b, a]
    # the winner's 95% Student-t interval over its three seeds
    std = math.sqrt((1.1**2 * 2 + 2.2**2) / 2)
    half = close_race.T_975_2 * std / math.sqrt(3)
    assert r["ci"] == pytest.approx([10.1 - half, 10.1 + half], rel=1e-5)
    assert ranked[0]["score"] == pytest.approx(10.1) and ranked[0]["n_seeds"] == 3
    assert ranked[1]["ci"] == [10.0, 10.0]  # equal seeds: a zero-width interval
    # the same seed gives the same numbers, another seed other resamples
    assert uncertainty(race, "final", n_resamples=20_000, seed=3)["tmaze_5"] == r
    assert uncertainty(race, "final", n_resamples=20_000, seed=4)["tmaze_5"] != r


def test_record_keeps_best_fields_and_adds_the_uncertainty(race, close_race):
    b = close_race.B
    record = best_record(race, "final", n_resamples=1000, seed=0)
    r = record["envs"]["tmaze_5"]
    assert _key(r["hparams"]) == b and r["score"] == pytest.approx(10.1)
    assert r["per_seed"] == pytest.approx([9.0, 9.0, 12.3]) and r["n_seeds"] == 3
    assert {"p_best", "ci", "uncertainty_set", "configs"} <= set(r)
    assert record["bootstrap"] == {
        "resamples": 1000,
        "seed": 0,
        "threshold": 0.05,
        "confidence": 0.95,
        "ci_method": "t",
    }
    json.dumps(record, allow_nan=False)


def test_one_seed_has_no_interval(stores, tmp_path, monkeypatch, close_race):
    monkeypatch.chdir(tmp_path)
    stores.make("one", seeds=(0,), value=close_race.value)
    scores = parse_study(stores.study_dir, progress=False, console=_quiet())
    r = uncertainty(scores, "final", n_resamples=1000)["tmaze_5"]
    assert r["ci"] is None and r["p_best"] == 1.0  # A (10) beats the zeros in every resample


def test_cli_records_resamples_and_seed_and_prints_p_best_and_ci(race, stores, capsys):
    assert main([str(stores.study_dir), "--measure", "final", "--no-progress",
                 "--resamples", "2000", "--seed", "7"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    record = json.loads((stores.study_dir / "best_final.json").read_text())
    assert record["bootstrap"]["resamples"] == 2000 and record["bootstrap"]["seed"] == 7
    r = record["envs"]["tmaze_5"]
    assert "P(best)" in out and "95% CI" in out
    assert f"{r['p_best']:.2f} (set of 2)" in out
    assert f"[{r['ci'][0]:.4g}, {r['ci'][1]:.4g}]" in out


def test_cli_refuses_too_few_resamples(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.results.best", "x", "--resamples", "999"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr == "error: --resamples 999: use at least 1000\n"
