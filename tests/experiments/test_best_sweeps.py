"""The recorded experiments at POBAX's ``best/`` settings plan POBAX's files with only their budget
changed: the sweep files they write differ from ``pobax_best/`` in the keys they say, no other."""

from __future__ import annotations

import importlib
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from sweepax.sweep import load, plan

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
# experiment -> its write_sweep_files arguments, the static values they set, the first seed
CASES = {
    "rocksample11": ((4, 2048, "cpu"), {"n_seeds": 4, "total_steps": 2048}, 2025),
    "navix_maze01": ((4, 65_536, "cpu"), {"n_seeds": 4, "total_steps": 65_536}, 2126),
    "walker_masked": ((3, 4096, "cpu"), {"n_seeds": 3, "total_steps": 4096}, 2025),
    "craftax_short": (
        (4, 16_384, "cpu", "craftax_classic"),
        {"n_seeds": 4, "total_steps": 16_384, "env": "craftax_classic"},
        2050,
    ),
}


@pytest.fixture
def experiment(request, tmp_path, monkeypatch):
    """The experiment's module, its folder moved to ``tmp_path`` (``pobax_best/`` copied)."""
    monkeypatch.syspath_prepend(str(EXPERIMENTS))
    module = importlib.import_module(request.param)
    shutil.copytree(EXPERIMENTS / request.param / "pobax_best", tmp_path / "pobax_best")
    monkeypatch.setattr(module, "OUT", tmp_path)
    yield module
    sys.modules.pop(request.param)


@pytest.mark.parametrize("experiment", list(CASES), indirect=True)
def test_sweep_files_change_only_the_budget(experiment):
    args, changed, first_seed = CASES[experiment.__name__]
    written = experiment.write_sweep_files(*args)
    studies = list(getattr(experiment, "STUDIES", [getattr(experiment, "STUDY", None)]))
    assert written == [f"sweeps/{name}.py" for name in studies]
    for name in studies:
        (ours,) = plan.plan(load.load(experiment.OUT / "sweeps" / f"{name}.py"), None).tasks
        pobax = plan.plan(load.load(experiment.OUT / "pobax_best" / f"{name}.py"), None).tasks
        assert ours.seeds == list(range(first_seed, first_seed + changed["n_seeds"]))
        differ = {k for k in ours.static if ours.static[k] != pobax[0].static.get(k)}
        assert differ - {"platform", "seed"} == set(changed), name
        assert {k: ours.static[k] for k in changed} == changed, name
        assert ours.configs == pobax[0].configs, name  # lr, lambdas, entropy... as POBAX wrote


@pytest.mark.pobax
def test_pobax_best_files_are_pobax_s_own(pobax_sdist):
    with tarfile.open(pobax_sdist) as tar:
        theirs = {
            Path(m.name).name: tar.extractfile(m).read()
            for m in tar.getmembers()
            if "/scripts/hyperparams/" in m.name and "/best/" in m.name and m.isfile()
        }
    ours = sorted(EXPERIMENTS.glob("*/pobax_best/*.py"))
    assert {p.parent.parent.name for p in ours} == set(CASES)
    for path in ours:
        assert path.read_bytes() == theirs[path.name], path
