"""best's sensitivity figure: per env and swept hyperparameter, the best score over the others."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from sweepax.results.best import main, per_seed_scores
from sweepax.results.parse import parse_study
from sweepax.results.sensitivity import sensitivity, sensitivity_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def race(stores, tmp_path, monkeypatch, close_race):
    monkeypatch.chdir(tmp_path)
    for h in (32, 64):
        stores.make(f"h{h}", hidden_size=h, value=close_race.value)
    return parse_study(stores.study_dir, progress=False, console=Console(file=io.StringIO()))


def test_each_value_shows_the_best_config_over_the_others(race, close_race):
    lines = sensitivity(per_seed_scores(race, "final", False), race)["tmaze_5"]
    assert list(lines) == ["hidden_size", "lr", "lambda0"]
    std = np.sqrt((1.1**2 * 2 + 2.2**2) / 2)  # B's seeds 9, 9, 12.3
    half = close_race.T_975_2 * std / np.sqrt(3)
    b = (10.1, 10.1 - half, 10.1 + half)
    a = (10.0, 10.0, 10.0)  # A's seeds all 10
    zero = (0.0, 0.0, 0.0)  # every hidden_size 64 config scores 0
    expected = {"hidden_size": ([32, 64], [b, zero]), "lr": ([1e-4, 1e-3], [b, a]),
                "lambda0": ([0.5, 0.9], [a, b])}  # fmt: skip
    for name, (values, points) in expected.items():
        line = lines[name]
        assert line.values == values
        got = np.stack([line.mean, line.low, line.high], axis=1)
        assert got == pytest.approx(np.array(points), rel=1e-5), name


def test_figure_has_one_panel_per_env_and_swept_hyperparameter(race):
    lines = sensitivity(per_seed_scores(race, "final", False), race)
    two_envs = {"tmaze_5": lines["tmaze_5"], "tmaze_10": lines["tmaze_5"]}
    fig = sensitivity_figure(two_envs, "t", "final_return")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == [f"{e}: {h}" for e in two_envs for h in ("hidden_size", "lr", "lambda0")]
    assert [ax.get_xscale() for ax in fig.axes[:3]] == ["linear", "log", "linear"]


def test_cli_writes_the_sensitivity_png(race, stores):
    assert main([str(stores.study_dir), "--measure", "final", "--no-progress",
                 "--resamples", "1000"]) == 0  # fmt: skip
    png = (stores.study_dir / "best_final_sensitivity.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 5000
