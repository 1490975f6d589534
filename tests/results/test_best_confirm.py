"""best --confirm: the chosen configs as a sweep file on fresh seeds, planned back for real."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from sweepax.results.best import main
from sweepax.sweep import load, plan

SWEEP = """from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{"env": "tmaze_5", "hidden_size": [32, 64], "lr": vmap([1e-3, 1e-4]),
              "lambda0": vmap([0.5, 0.9]), "seed": 0, "n_seeds": 3}],
}
"""


def _quiet():
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def study(stores, tmp_path, monkeypatch, close_race):
    """The ``CloseRace`` (B wins ~70% of resamples, A ~30%), with the
    sweep file its stores name."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "hyperparams" / "tmaze" / "tmaze_ppo.py"
    spec.parent.mkdir(parents=True)
    spec.write_text(SWEEP)
    for h in (32, 64):
        stores.make(f"h{h}", hidden_size=h, value=close_race.value)
    return stores.study_dir


def _best(study, *extra):
    return main([str(study), "--measure", "final", "--no-progress", "--resamples", "2000",
                 "--confirm", *extra])  # fmt: skip


def _planned(path: Path) -> list[tuple[dict, list[dict], list[int]]]:
    tasks = plan.plan(load.load(path)).tasks
    return [(t.static, t.configs, t.seeds) for t in tasks]


def _config(config):
    return (config["lr"], config["lambda0"], config["entropy_coeff"])


TARGET = Path("hyperparams/tmaze/best/tmaze_ppo_best.py")


def test_confirm_writes_the_winner_on_fresh_seeds(study, capsys, close_race):
    b = close_race.B
    assert _best(study, "--seeds", "5") == 0
    assert str(TARGET) in capsys.readouterr().out
    text = TARGET.read_text()
    assert "Chosen by `best --confirm`" in text and "final (final_return)" in text
    loaded = load.load(TARGET)
    assert loaded.name == "tmaze_ppo_best" and loaded.entry.name == "ppo"
    ((static, configs, seeds),) = _planned(TARGET)
    assert seeds == [3, 4, 5, 6, 7]  # the sweep's seeds were 0, 1, 2
    assert {k: static[k] for k in ("env", "hidden_size", "memoryless", "double_critic")} == {
        "env": "tmaze_5",
        "hidden_size": b[0],
        "memoryless": False,
        "double_critic": False,
    }
    assert [_config(c) for c in configs] == [(b[1], b[2], 0.01)]


def test_confirm_top_two_writes_each_config_as_its_own_task(study, close_race):
    a, b = close_race.A, close_race.B
    assert _best(study, "--top", "2") == 0
    planned = _planned(TARGET)
    assert [(s["hidden_size"], *_config(c)[:2]) for s, (c,), _ in planned] == [b, a]
    assert all(seeds == list(range(3, 33)) for _, _, seeds in planned)  # 30 by default


def test_confirm_does_not_overwrite_without_force(study, capsys):
    assert _best(study) == 0
    TARGET.write_text("# edited by hand\n")
    capsys.readouterr()
    assert _best(study, "--top", "2") == 2
    err = capsys.readouterr().err
    assert err == f"error: {TARGET}: exists; pass --force to replace it\n"
    assert TARGET.read_text() == "# edited by hand\n"
    assert _best(study, "--top", "2", "--force") == 0
    assert len(_planned(TARGET)) == 2


def test_confirm_refuses_when_the_sweep_file_is_gone(study, capsys):
    Path("hyperparams/tmaze/tmaze_ppo.py").unlink()
    assert _best(study) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: hyperparams/tmaze/tmaze_ppo.py: the sweep file of ")
    assert not TARGET.exists()


def test_confirm_options_need_confirm(study, capsys):
    assert main([str(study), "--top", "2", "--no-progress"]) == 2
    assert capsys.readouterr().err == "error: --top: applies only with --confirm; add it\n"


def test_confirm_without_the_task_stores_is_a_one_line_error(study, capsys):
    assert main([str(study), "--no-progress", "--resamples", "1000"]) == 0  # parses
    for store in study.glob("h*.zarr"):
        store.rename(store.parent.parent / store.name)  # results synced without --raw
    capsys.readouterr()
    assert _best(study) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--confirm takes every value from it" in err
    assert not TARGET.exists()
