"""compare: two synthetic studies end to end; the table's numbers against the stats functions."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from sweepax.results.compare import Selected, Settings, aggregate, main, run_compare
from sweepax.results.stats import (
    bootstrap_best,
    iqm,
    iqm_ci,
    mean_ci,
    normalise_per_env,
    probability_of_improvement,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RESAMPLES = 1000
ENVS = ("tmaze_10", "tmaze_5")
GRID = [(1e-4, 0.5), (1e-4, 0.9), (1e-3, 0.5), (1e-3, 0.9)]  # (lr, lambda0) as parse sorts them
# final_return per seed: the sweep's best config (lr 1e-3, lambda0 0.9) and the confirmation study
SWEEP_BEST = {"tmaze_5": [3.0, 3.6, 2.7], "tmaze_10": [1.0, 1.4, 0.2]}
CONFIRM = {"tmaze_5": [3.1, 2.5, 3.3, 2.9, 3.5], "tmaze_10": [0.6, 0.9, 1.1, 0.4, 0.8]}


def sweep_value(metric, labels, seed, update):
    """Four configs; (1e-3, 0.9) is best by final_return and by auc; per-update returns climb."""
    if metric.startswith("final_"):
        if (labels["lr"], labels["lambda0"]) == (1e-3, 0.9):
            return SWEEP_BEST[labels["env"]][seed]
        return -1.0 - labels["lambda0"] + 0.1 * seed
    return update * (1 + labels["lambda0"]) + 0.3 * seed + 100 * labels["lr"]


def confirm_value(metric, labels, seed, update):
    if metric.startswith("final_"):
        return CONFIRM[labels["env"]][seed]
    return 2.0 * update + 0.5 * seed - 0.95


@pytest.fixture
def two_studies(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    confirm = type(stores)(tmp_path / "results" / "tmaze_confirm")
    for env in ENVS:
        stores.make(f"{env}_sweep", env=env, value=sweep_value)
        confirm.make(
            f"{env}_confirm",
            env=env,
            lr=(1e-3,),
            lambda0=(0.9,),
            seeds=range(5),
            value=confirm_value,
        )
    return stores.study_dir, confirm.study_dir


def _section(text, title):
    part = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in part.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return {
        cells[0].rstrip("*"): dict(zip(header, cells, strict=True))
        for cells in ([c.strip() for c in r.strip("|").split("|")] for r in rows[1:])
    }


def _numbers(cell):
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell)]


def _close(cell, *expected):
    assert _numbers(cell) == pytest.approx(list(expected), rel=1e-3, abs=1e-9)


def test_compare_cli_writes_figures_and_a_table_of_the_stats(two_studies, tmp_path):
    sweep, confirm = two_studies
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.results.compare", "results/tmaze_ppo", "tmaze_confirm"]
        + ["--no-progress", "--resamples", str(RESAMPLES), "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert (sweep / "scores.zarr").is_dir() and (confirm / "scores.zarr").is_dir()  # parsed
    for name in ("compare_final_curves", "compare_final_aggregate"):
        png = (out / f"{name}.png").read_bytes()
        svg = (out / f"{name}.svg").read_text()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
        assert "<svg" in svg and svg.rstrip().endswith("</svg>") and len(svg) > 5000
    text = (out / "compare_final.md").read_text()
    assert text in proc.stdout  # the table is printed as written
    assert text.startswith("# Comparison by final (final_return)\n")

    for env in ENVS:
        rows = _section(text, env)
        a, b = rows["tmaze_ppo"], rows["tmaze_confirm"]
        # the sweep is shown at its best config, marked as selected; the confirmation as is
        assert a["study"] == "tmaze_ppo*" and a["config"] == "lr=0.001, lambda0=0.9 (best of 4)"
        assert b["study"] == "tmaze_confirm" and b["config"] == "(no swept values)"
        # the other three configs score below -1 at every seed: the choice is certain
        assert (a["P(best); set"], b["P(best); set"]) == ("1; 1", "–")
        assert (a["seeds"], b["seeds"]) == ("3", "5")
        for row, runs in ((a, SWEEP_BEST[env]), (b, CONFIRM[env])):
            score = mean_ci(runs)
            _close(row["final_return"], score.value)
            _close(row["95% CI"], score.low, score.high)
        p = probability_of_improvement([SWEEP_BEST[env]], [CONFIRM[env]], n_resamples=RESAMPLES)
        q = probability_of_improvement([CONFIRM[env]], [SWEEP_BEST[env]], n_resamples=RESAMPLES)
        _close(a["P(> tmaze_confirm)"], *p[:3])
        _close(b["P(> tmaze_ppo)"], *q[:3])
        assert p.value + q.value == pytest.approx(1.0)

    # across envs: IQM of scores normalised by the lowest and highest run of either study
    reference = {
        e: (min(SWEEP_BEST[e] + CONFIRM[e]), max(SWEEP_BEST[e] + CONFIRM[e])) for e in ENVS
    }
    runs = {
        s: normalise_per_env(v, reference)
        for s, v in (("tmaze_ppo", SWEEP_BEST), ("tmaze_confirm", CONFIRM))
    }
    rows = _section(text, "Across envs")
    for study in runs:
        expected = iqm_ci([runs[study][e] for e in ENVS], n_resamples=RESAMPLES)
        assert (rows[study]["envs"], rows[study]["runs"]) == (
            "2",
            "6" if study == "tmaze_ppo" else "10",
        )
        _close(rows[study]["IQM"], expected.value)
        _close(rows[study]["95% CI"], expected.low, expected.high)
    p = probability_of_improvement(
        [runs["tmaze_ppo"][e] for e in ENVS],
        [runs["tmaze_confirm"][e] for e in ENVS],
        n_resamples=RESAMPLES,
    )
    _close(rows["tmaze_ppo"]["P(> tmaze_confirm)"], *p[:3])


def test_compare_auc_discounted_and_stated_reference(two_studies, tmp_path):
    sweep, confirm = two_studies
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"tmaze_5": [0, 4], "tmaze_10": [0, 2]}))
    console = Console(file=io.StringIO(), width=200)
    settings = Settings("auc", True, RESAMPLES, 3)
    text = run_compare([sweep, confirm], tmp_path / "c", settings, ref, console, progress=False)
    assert (tmp_path / "c" / "compare_auc_discounted.md").read_text() == text
    assert (tmp_path / "c" / "compare_auc_discounted_curves.svg").is_file()
    assert "reference scores in " + str(ref) in text
    # auc of discounted_return: the mean over updates 0..4 of the per-update return
    row = _section(text, "tmaze_5")["tmaze_ppo"]
    assert row["config"] == "lr=0.001, lambda0=0.9 (best of 4)"
    per_seed = [2 * 1.9 + 0.3 * s + 0.1 for s in range(3)]
    _close(row["discounted_return"], mean_ci(per_seed).value)
    # (lr, lambda0) in sorted order: lr 1e-3 beats lr 1e-4 by only 0.1 at every seed
    table = [[2 * (1 + lam) + 0.3 * s + 100 * lr for s in range(3)] for lr, lam in GRID]
    choice = bootstrap_best(table, RESAMPLES, seed=3)
    assert choice.best == 3 and choice.uncertainty_set == (3, 1)
    _close(row["P(best); set"], choice.probability[3], 2)
    agg = _section(text, "Across envs")["tmaze_ppo"]
    confirm_runs = [2 * 2.0 + 0.5 * s - 0.95 for s in range(5)]  # no ties with per_seed
    both = probability_of_improvement(
        [np.array(per_seed) / 4, np.array(per_seed) / 2],
        [np.array(confirm_runs) / 4, np.array(confirm_runs) / 2],
        n_resamples=RESAMPLES,
        seed=3,
    )
    _close(agg["P(> tmaze_confirm)"], *both[:3])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tmaze_ppo"], "error: compare needs two or more studies, got 1 (results/tmaze_ppo); "),
        (["tmaze_ppo", "tmaze_confirm", "--resamples", "10"], "error: --resamples 10: use at "),
        (["tmaze_ppo", "nope"], "error: nope: no such study folder"),
        (["tmaze_ppo", "results/tmaze_ppo"], "error: two study folders share a name (results/"),
        (["tmaze_ppo", "tmaze_confirm", "--reference", "ref.json"], "error: ref.json: no refer"),
    ],
)
def test_compare_bad_input_is_one_line_and_writes_nothing(
    two_studies, tmp_path, capsys, args, message
):
    (tmp_path / "ref.json").write_text(json.dumps({"tmaze_5": [0, 1]}))
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "results" / "compare").exists()


def _selected(runs):
    runs = np.asarray(runs, dtype=np.float64)
    return Selected({}, 1, None, runs, np.zeros((runs.size, 2)), np.array([1.0, 2.0]))


def test_aggregate_uses_the_envs_every_study_has_and_leaves_out_flat_ones():
    chosen = {
        "a": {"e1": _selected([1.0, 3.0]), "e2": _selected([5.0, 5.0]), "e3": _selected([0.0])},
        "b": {"e1": _selected([2.0, 0.0, 4.0]), "e2": _selected([5.0])},
    }
    agg = aggregate(chosen, None, Settings(n_resamples=RESAMPLES))
    assert agg.envs == ["e1"]
    assert agg.left_out == ["e3 (only in a)", "e2 (every run scores 5)"]
    # e1 normalised by the lowest and highest run of either study: 0 and 4
    a, b = agg.rows
    assert (a.study, a.runs, b.study, b.runs) == ("a", 2, "b", 3)
    assert a.iqm == iqm_ci([[0.25, 0.75]], n_resamples=RESAMPLES)
    assert b.iqm == iqm_ci([[0.5, 0.0, 1.0]], n_resamples=RESAMPLES)
    assert agg.beats[("a", "b")].value == pytest.approx(3 / 6)
    stated = aggregate(chosen, {"e1": (0.0, 8.0), "e2": (0.0, 10.0)}, Settings(n_resamples=1000))
    assert stated.envs == ["e1", "e2"] and stated.left_out == ["e3 (only in a)"]
    assert stated.rows[1].iqm.value == pytest.approx(iqm([0.25, 0.0, 0.5, 0.5]))


def test_compare_refuses_planned_cells_that_never_ran_unless_partial(
    two_studies, stores, tmp_path, capsys
):
    stores.plan("tmaze_5_h64", hidden_size=64)
    stores.write_manifest(tmp_path / "runs" / "tmaze_ppo.json")
    args = ["tmaze_ppo", "tmaze_confirm", "--no-progress", "--resamples", str(RESAMPLES)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: results/tmaze_ppo: 12 planned (config, seed) cells missing (tasks tmaze_5_h64); "
    )
    assert err.count("\n") == 1 and "--partial" in err
    assert not (tmp_path / "results" / "compare").exists()
    assert main([*args, "--partial"]) == 0
    text = (tmp_path / "results" / "compare" / "compare_final.md").read_text()
    assert text.endswith(
        "\nPartial: results/tmaze_ppo: 12 planned (config, seed) cells missing "
        "(tasks tmaze_5_h64).\n"
    )
