"""POBAX's result pickles: parse and best write them beside scores.zarr / best_<measure>.json."""

from __future__ import annotations

import io
import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from rich.console import Console

from sweepax.results import pobax_pickles
from sweepax.results.best import main as best_main
from sweepax.results.best import run_best
from sweepax.results.parse import parse_study

from .conftest import default_value

PARSED_KEYS = {"envs", "scores", "swept_hyperparams", "all_hyperparams", "dim_ref", "discounted"}
# the fields POBAX's scripts/best_hyperparams_per_env.py writes into best_hyperparam_per_env_res.pkl
BEST_KEYS = {"hyperparams", "scores", "dim_ref", "envs", "all_hyperparams", "discounted", "fpaths"}
LABELS = ["hidden_size", "lr", "lambda0", "memoryless", "double_critic", "entropy_coeff"]


class NumpyOnly(pickle.Unpickler):
    """Loads only builtins and numpy's own types: what a POBAX script has without sweepax."""

    def find_class(self, module: str, name: str):
        if module.split(".")[0] != "numpy":
            raise pickle.UnpicklingError(f"{module}.{name} is not numpy")
        return super().find_class(module, name)


def load(path: Path) -> dict:
    with open(path, "rb") as f:
        return NumpyOnly(f).load()


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def study(stores, tmp_path, monkeypatch):
    """tmaze_5 x hidden_size {32, 64} x lr x lambda0 x 3 seeds; tmaze_10 only at hidden_size 32
    and lr 1e-3 (its other configs are never run)."""
    monkeypatch.chdir(tmp_path)
    stores.make("t5_h32", env="tmaze_5", hidden_size=32)
    stores.make("t5_h64", env="tmaze_5", hidden_size=64)
    stores.make("t10_h32", env="tmaze_10", hidden_size=32, lr=(1e-3,))
    parse_study(stores.study_dir, progress=False, console=quiet())
    return stores


def test_parse_writes_both_pickles_loadable_with_numpy_alone(study):
    for discounted in (False, True):
        path = study.study_dir / pobax_pickles.parsed_name(discounted)
        parsed = load(path)
        assert set(parsed) == PARSED_KEYS
        assert parsed["discounted"] is discounted
        assert parsed["dim_ref"] == ["hparams", "num_update", "num_steps", "seeds"]
    assert pobax_pickles.parsed_name(True) == "parsed_hparam_scores_discounted.pkl"
    assert not list(study.study_dir.glob(".*tmp*"))


def test_parsed_scores_hold_every_config_update_and_seed_at_its_labels(study):
    parsed = load(study.study_dir / "parsed_hparam_scores.pkl")
    assert parsed["envs"] == ["tmaze_10", "tmaze_5"]
    swept = parsed["swept_hyperparams"]["tmaze_5"]
    assert list(swept) == LABELS
    combos = list(itertools.product([32, 64], [1e-4, 1e-3], [0.5, 0.9]))  # first varies slowest
    assert list(zip(swept["hidden_size"], swept["lr"], swept["lambda0"], strict=True)) == combos
    assert swept["memoryless"] == [False] * 8 and swept["entropy_coeff"] == [0.01] * 8
    env = parsed["scores"]["tmaze_5"]
    assert env["scores"].shape == (8, 5, 1, 3)  # hparams, num_update, num_steps, seeds
    assert env["final_scores"].shape == (8, 1, 1, 3)
    assert isinstance(env["scores"], np.ndarray) and env["scores"].dtype == np.float32
    for i, (hidden, lr, lam) in enumerate(combos):
        labels = {"env": "tmaze_5", "hidden_size": hidden, "lr": lr, "lambda0": lam}
        for k, seed in enumerate((0, 1, 2)):
            want = [default_value("episode_return", labels, seed, u) for u in range(5)]
            np.testing.assert_allclose(env["scores"][i, :, 0, k], want, rtol=1e-6)
            final = default_value("final_return", labels, seed, -1)
            np.testing.assert_allclose(env["final_scores"][i, 0, 0, k], final, rtol=1e-6)
    store = str(study.study_dir / "t5_h32.zarr")
    assert env["fpaths"] == [store] * 4 + [str(study.study_dir / "t5_h64.zarr")] * 4


def test_parsed_discounted_pickle_holds_the_discounted_returns(study):
    parsed = load(study.study_dir / "parsed_hparam_scores_discounted.pkl")
    env = parsed["scores"]["tmaze_10"]
    labels = {"env": "tmaze_10", "hidden_size": 32, "lr": 1e-3, "lambda0": 0.9}
    want = [default_value("discounted_return", labels, 2, u) for u in range(5)]
    np.testing.assert_allclose(env["scores"][1, :, 0, 2], want, rtol=1e-6)
    final = default_value("final_discounted_return", labels, 2, -1)
    np.testing.assert_allclose(env["final_scores"][1, 0, 0, 2], final, rtol=1e-6)


def test_an_env_lists_only_the_configs_it_ran(study):
    parsed = load(study.study_dir / "parsed_hparam_scores.pkl")
    swept = parsed["swept_hyperparams"]["tmaze_10"]
    assert swept["hidden_size"] == [32, 32] and swept["lr"] == [1e-3, 1e-3]
    assert swept["lambda0"] == [0.5, 0.9]
    assert parsed["scores"]["tmaze_10"]["scores"].shape == (2, 5, 1, 3)
    assert np.isfinite(parsed["scores"]["tmaze_10"]["scores"]).all()


def test_missing_seeds_stay_nan(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("a", seeds=(0, 1, 2))
    stores.make("b", lr=(1e-2,), seeds=(0,))
    parse_study(stores.study_dir, progress=False, console=quiet())
    parsed = load(stores.study_dir / "parsed_hparam_scores.pkl")
    lrs = parsed["swept_hyperparams"]["tmaze_5"]["lr"]
    assert lrs == [1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2]
    scores = parsed["scores"]["tmaze_5"]["scores"]
    assert np.isfinite(scores[4:, :, :, 0]).all() and np.isnan(scores[4:, :, :, 1:]).all()


def test_a_study_of_one_config_has_one_config_and_it_wins(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("only", lr=(1e-3,), lambda0=(0.9,), seeds=(4, 5))
    run_best([stores.study_dir], "auc", False, tmp_path, console=quiet(), progress=False,
             n_resamples=1000)  # fmt: skip
    parsed = load(stores.study_dir / "parsed_hparam_scores.pkl")
    assert parsed["swept_hyperparams"]["tmaze_5"]["lr"] == [1e-3]
    assert parsed["swept_hyperparams"]["tmaze_5"]["hidden_size"] == [32]
    assert parsed["scores"]["tmaze_5"]["scores"].shape == (1, 5, 1, 2)
    best = load(stores.study_dir / "best_hyperparam_per_env_res.pkl")
    assert best["fpaths"]["tmaze_5"]["max_idx"] == 0
    assert best["hyperparams"]["tmaze_5"]["lambda0"] == 0.9


def _blocks(array: np.ndarray, step: int):
    return lambda: (array[i : i + step] for i in range(0, len(array), step))


def test_dump_writes_streamed_arrays_block_by_block_as_pickle_writes_whole_ones(tmp_path):
    rng = np.random.default_rng(0)
    large = rng.normal(size=(40, 100, 1, 3)).astype(np.float32)  # 48 KB: a frame holds it
    larger = rng.normal(size=(300, 100, 1, 3)).astype(np.float32)  # 360 KB: written apart
    value = {
        "envs": ["a", "b"],
        "scores": {
            "a": {"scores": pobax_pickles.Streamed(larger.shape, larger.dtype, _blocks(larger, 7))},
            "b": {"scores": pobax_pickles.Streamed(large.shape, large.dtype, _blocks(large, 9))},
        },
        "final": larger[:, 0],  # the same dtype again: pickle refers back to it
        "swept_hyperparams": {"a": {"lr": [1e-3] * 300}},
    }
    whole = {**value, "scores": {"a": {"scores": larger}, "b": {"scores": large}}}
    with open(tmp_path / "streamed.pkl", "wb") as f:
        pobax_pickles.dump(value, f)
    assert (tmp_path / "streamed.pkl").read_bytes() == pickle.dumps(whole, protocol=4)
    pickler = pobax_pickles._Pickler(io.BytesIO())
    pickler.dump(value)
    assert pickler.streamed == 1  # the large one: its bytes never held whole


def test_dump_rewrites_from_whole_arrays_when_the_pickler_keeps_a_stand_in(tmp_path, monkeypatch):
    # a stand-in smaller than pickle's frame is copied into the frame, never handed to write
    monkeypatch.setattr(pobax_pickles._Pickler, "FRAME", 16)
    array = np.arange(60, dtype=np.float32).reshape(20, 3)
    value = {"x": pobax_pickles.Streamed(array.shape, array.dtype, _blocks(array, 6)), "y": 1}
    with open(tmp_path / "p.pkl", "wb") as f:
        f.write(b"kept")
        pobax_pickles.dump(value, f)
    data = (tmp_path / "p.pkl").read_bytes()
    assert data == b"kept" + pickle.dumps({"x": array, "y": 1}, protocol=4)


def test_parsed_scores_made_in_blocks_equal_the_whole_transposed_curves(study, monkeypatch):
    scores = xr.open_zarr(study.study_dir / "scores.zarr").load()
    whole = pobax_pickles.parsed(scores, False)
    monkeypatch.setattr(pobax_pickles, "BLOCK_BYTES", 1)  # one config per block
    n_configs = {}
    for env in scores["env"].values.tolist():
        configs = pobax_pickles.env_configs(scores, env, False)
        curve = configs.per_update[configs.rows]
        expected = np.ascontiguousarray(curve.transpose(0, 2, 1)[:, :, None, :])
        assert len(list(configs.scores_blocks())) == len(configs.rows)
        np.testing.assert_array_equal(configs.scores(), expected)
        np.testing.assert_array_equal(whole["scores"][env]["scores"], expected)
        streamed = pobax_pickles.parsed(scores, False, streamed=True)["scores"][env]["scores"]
        np.testing.assert_array_equal(streamed.array(), expected)
        n_configs[env] = (len(configs.rows), len(configs.per_update))
    assert n_configs == {"tmaze_5": (8, 8), "tmaze_10": (2, 8)}  # tmaze_10 ran only some configs


def test_all_hyperparams_are_the_resolved_args_with_swept_values_as_lists(study):
    parsed = load(study.study_dir / "parsed_hparam_scores.pkl")
    hp = parsed["all_hyperparams"]
    assert hp["env"] == ["tmaze_10", "tmaze_5"]
    assert hp["hidden_size"] == [32, 64] and hp["lr"] == [1e-4, 1e-3]
    assert hp["lambda0"] == [0.5, 0.9] and hp["memoryless"] is False
    assert hp["seed"] == 0 and hp["n_seeds"] == 3


def pobax_pick(parsed: dict, env: str, measure: str = "auc") -> int:
    """POBAX's choice on a parsed pickle, as scripts/best_hyperparams_per_env.py (taodav/pobax,
    the version writing ``fpaths``) makes it: mean over the dims named seeds, num_update and
    num_steps, in that order, found by name in ``dim_ref``, then argmax over what is left."""
    score = parsed["scores"][env]["scores" if measure == "auc" else "final_scores"]
    order = list(parsed["dim_ref"])
    for name in ["seeds", "num_update", "num_steps"]:
        score = score.mean(axis=order.index(name))
        order.remove(name)
    assert score.ndim == 1
    return int(np.argmax(score))


@pytest.mark.parametrize(
    ("measure", "discounted"), [("auc", False), ("final", False), ("auc", True)]
)
def test_best_pickle_is_the_winner_pobax_would_pick(study, measure, discounted):
    run_best(
        [study.study_dir],
        measure,
        discounted,
        study.study_dir.parent,
        console=quiet(),
        progress=False,
        n_resamples=1000,
    )
    path = study.study_dir / pobax_pickles.best_name(discounted)
    best = load(path)
    assert set(best) == BEST_KEYS
    parsed = load(study.study_dir / pobax_pickles.parsed_name(discounted))
    stem = f"best_{measure}" + ("_discounted" if discounted else "")
    record = json.loads((study.study_dir / f"{stem}.json").read_text())
    assert best["envs"] == parsed["envs"] and best["discounted"] is discounted
    assert best["dim_ref"] == ["num_update", "num_steps", "seeds"]
    assert best["all_hyperparams"] == parsed["all_hyperparams"]
    key = "scores" if measure == "auc" else "final_scores"
    for env in best["envs"]:
        i = pobax_pick(parsed, env, measure)
        swept = parsed["swept_hyperparams"][env]
        assert best["hyperparams"][env] == {k: v[i] for k, v in swept.items()}
        assert best["hyperparams"][env] == record["envs"][env]["hparams"]
        np.testing.assert_array_equal(best["scores"][env], parsed["scores"][env][key][i])
        assert best["fpaths"][env] == {"fpath": parsed["scores"][env]["fpaths"], "max_idx": i}
    assert best["hyperparams"]["tmaze_5"]["hidden_size"] == 64  # the planted best
    assert best["scores"]["tmaze_5"].shape == ((5, 1, 3) if measure == "auc" else (1, 1, 3))


def test_best_cli_writes_the_discounted_pickle_and_keeps_the_undiscounted(study):
    assert best_main([str(study.study_dir), "--resamples", "1000"]) == 0
    plain = (study.study_dir / "best_hyperparam_per_env_res.pkl").read_bytes()
    assert best_main([str(study.study_dir), "--discounted", "--resamples", "1000"]) == 0
    assert (study.study_dir / "best_hyperparam_per_env_res.pkl").read_bytes() == plain
    assert load(study.study_dir / "best_hyperparam_per_env_res_discounted.pkl")["discounted"]


def test_pickles_load_in_a_python_without_sweepax(study, tmp_path):
    code = (
        "import pickle, sys\n"
        "sys.modules['sweepax'] = None\n"  # any import of sweepax now fails
        "for p in sys.argv[1:]:\n"
        "    d = pickle.load(open(p, 'rb'))\n"
        "    print(sorted(d), d['scores']['tmaze_5']['scores'].shape)\n"
    )
    paths = [study.study_dir / pobax_pickles.parsed_name(d) for d in (False, True)]
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, *map(str, paths)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("(8, 5, 1, 3)") == 2


TINY = ["--env", "tmaze_5", "--total_steps", "2048", "--num_steps", "32", "--num_envs", "4",
        "--hidden_size", "8", "--eval_steps", "64", "--lr", "0.001", "0.003",
        "--lambda0", "0.5", "0.9", "--seed", "7", "--n_seeds", "2"]  # fmt: skip


def test_a_real_task_gives_pickles_pobax_plots_against_env_steps(tmp_path):
    def run(*argv: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", *argv], cwd=tmp_path, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr

    run("sweepax.train", "ppo", "--study", "real", *TINY)
    study = tmp_path / "results" / "real"
    run("sweepax.results.parse", str(study), "--no-progress")
    run("sweepax.results.best", str(study), "--resamples", "1000")
    scores = xr.open_zarr(study / "scores.zarr")
    parsed = load(study / "parsed_hparam_scores.pkl")
    best = load(study / "best_hyperparam_per_env_res.pkl")
    assert parsed["envs"] == best["envs"] == ["tmaze_5"]
    assert parsed["all_hyperparams"]["total_steps"] == 2048
    assert parsed["all_hyperparams"]["env"] == "tmaze_5"
    assert parsed["all_hyperparams"]["num_envs"] == 4
    env = parsed["scores"]["tmaze_5"]
    assert env["scores"].shape == (4, 16, 1, 2) and env["final_scores"].shape == (4, 1, 1, 2)
    curve = scores["episode_return"].sel(env="tmaze_5").transpose("lr", "lambda0", "seed", "update")
    want = curve.values.reshape(4, 2, 16).transpose(0, 2, 1)
    np.testing.assert_array_equal(env["scores"][:, :, 0, :], want)
    swept = parsed["swept_hyperparams"]["tmaze_5"]
    assert list(zip(swept["lr"], swept["lambda0"], strict=True)) == [
        (0.001, 0.5), (0.001, 0.9), (0.003, 0.5), (0.003, 0.9)]  # fmt: skip
    (store,) = [p for p in study.glob("*.zarr") if p.name != "scores.zarr"]
    winner = best["fpaths"]["tmaze_5"]
    assert [Path(p).name for p in winner["fpath"]] == [store.name] * 4
    record = json.loads((study / "best_auc.json").read_text())["envs"]["tmaze_5"]
    i = winner["max_idx"]
    assert (swept["lr"][i], swept["lambda0"][i]) == (
        record["hparams"]["lr"], record["hparams"]["lambda0"])  # fmt: skip
    # POBAX's scripts/plotting/plot_best_hyperparams.py: x = arange(num_update) * step multiplier,
    # all_hyperparams['total_steps'] // scores[env].shape[0]: the env steps of each update
    multiplier = best["all_hyperparams"]["total_steps"] // best["scores"]["tmaze_5"].shape[0]
    steps = np.arange(best["scores"]["tmaze_5"].shape[0]) * multiplier + multiplier
    np.testing.assert_array_equal(steps, scores["env_steps"].values)
