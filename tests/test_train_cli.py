"""``python -m sweepax.train``: one real jitted task writes a labelled, provenance-rich store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from sweepax import entries
from sweepax.results import store
from sweepax.sweep import args as task_args

TINY = ["--env", "tmaze_5", "--total_steps", "2048", "--num_steps", "32", "--num_envs", "4",
        "--hidden_size", "8", "--eval_steps", "64"]  # fmt: skip


def train(tmp_path: Path, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweepax.train", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        **kwargs,
    )


def test_train_writes_one_store_with_dims_coords_and_provenance(tmp_path):
    spec = ["--spec", "hyperparams/x.py", "--spec_hash", "abc"]
    argv = ["ppo", "--study", "st", *TINY, "--lr", "0.001", "0.003", "--lambda0", "0.5", "0.9",
            "--seed", "7", "--n_seeds", "2", *spec]  # fmt: skip
    proc = train(tmp_path, *argv)
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "results" / "st").glob("*.zarr")

    entry = entries.get("ppo")
    ns = task_args.parser(entry).parse_args(argv[1:])
    static, rows = task_args.resolve(entry, ns, pytest.fail)
    assert path.name == f"{task_args.task_id(entry, static, rows)}.zarr"  # same id as the planner's

    ds = xr.open_zarr(path, consolidated=None)
    assert ds["episode_return"].dims == ("config", "seed", "update")
    assert ds["final_return"].dims == ("config", "seed")
    assert ds.sizes == {"config": 4, "seed": 2, "update": 2048 // (32 * 4)}
    assert list(ds["lr"].values) == [0.001, 0.001, 0.003, 0.003]
    assert list(ds["lambda0"].values) == [0.5, 0.9, 0.5, 0.9]
    assert list(ds["seed"].values) == [7, 8]
    assert list(ds["env_steps"].values) == [128 * (u + 1) for u in range(16)]
    for name in ("discounted_return", "final_discounted_return", "loss_total", "entropy"):
        assert name in ds

    attrs = store.read_attrs(path)
    assert attrs["study"] == "st" and attrs["task_id"] == path.stem and attrs["entry"] == "ppo"
    assert attrs["spec_path"] == "hyperparams/x.py" and attrs["spec_hash"] == "abc"
    assert attrs["static"]["hidden_size"] == 8 and attrs["args"]["lr"] == [
        0.001,
        0.001,
        0.003,
        0.003,
    ]
    prov = attrs["provenance"]
    assert len(prov["git"]["commit"]) == 40 and isinstance(prov["git"]["dirty"], bool)
    assert prov["packages"]["jax"] == "0.10.2"
    assert prov["device"].startswith("TFRT_CPU") or "cpu" in prov["device"].lower()
    assert prov["compile_seconds"] > 0 and prov["run_seconds"] > 0
    assert set(prov["slurm"]) >= {"job_id", "array_job_id", "array_task_id"}
    assert "container" in prov and prov["host"]
    assert "wrote results/st/" in proc.stdout and "final_return" in proc.stdout


def test_train_killed_mid_run_leaves_nothing_parse_takes_as_complete(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweepax.train",
            "ppo",
            "--study",
            "st",
            "--env",
            "tmaze_5",
            "--total_steps",
            "4000000",
            "--num_steps",
            "32",
            "--hidden_size",
            "8",
        ],  # fmt: skip
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    line = ""
    while "progress:" not in line and time.time() < deadline:
        line = proc.stderr.readline()
    assert "progress:" in line, "training never reported progress"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    study = tmp_path / "results" / "st"
    assert store.complete_stores(study) == {} if study.exists() else True
    assert not list(study.glob("*.zarr")) if study.exists() else True
    parse = subprocess.run(
        [sys.executable, "-m", "sweepax.results.parse", str(study)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert parse.returncode == 2 and "Traceback" not in parse.stderr


def test_platform_gpu_without_a_gpu_fails_fast_with_one_line(tmp_path):
    proc = train(tmp_path, "ppo", *TINY, "--platform", "gpu")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --platform gpu: JAX sees only")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.zarr"))


TINY_TRANSFORMER = ["--embed_size", "8", "--num_heads", "2", "--num_layers", "1",
                    "--memory_window", "4"]  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["transformer", *TINY, *TINY_TRANSFORMER],
        ["ppo", *TINY, "--double_critic", "--lambda1", "0.5", "--ld_weight", "0.0", "0.25"],
        ["transformer", *TINY, *TINY_TRANSFORMER, "--double_critic", "--ld_weight", "0.25"],
    ],
    ids=["transformer", "ppo_ld", "transformer_ld"],
)
def test_train_transformer_and_double_critic_write_a_store(tmp_path, argv):
    proc = train(tmp_path, *argv, "--study", "st", "--n_seeds", "2")
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "results" / "st").glob("*.zarr")
    ds = xr.open_zarr(path, consolidated=None)
    n_configs = 2 if argv[0] == "ppo" else 1
    assert ds.sizes == {"config": n_configs, "seed": 2, "update": 2048 // (32 * 4)}
    assert store.read_attrs(path)["entry"] == argv[0]
    assert bool(ds["loss_total"].notnull().all())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["transformer", *TINY, "--embed_size", "6", "--num_heads", "4"], "divisible by"),
        (["ppo", "--env", "tmaze10"], "unknown env 'tmaze10'"),
        (["ppo", "--env", "tmaze_5", "--total_steps", "100"], "key 'total_steps': 100 is less"),
        (["ppo", "--env", "tmaze_5", "--n_seeds", "0"], "key 'n_seeds': 0 must be at least 1"),
        (["nope"], "unknown training entry 'nope'"),
    ],
)
def test_train_refuses_clearly(tmp_path, argv, message):
    proc = train(tmp_path, *argv)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 or "error:" in proc.stderr.strip().splitlines()[-1]


def test_two_runs_of_the_same_task_give_identical_numbers_the_second_from_the_cache(tmp_path):
    argv = ["ppo", "--study", "st", *TINY, "--lr", "0.003", "--n_seeds", "2"]
    env = {**os.environ, "SWEEPAX_JAX_CACHE": str(tmp_path / "jax-cache")}
    for _ in range(2):
        proc = train(tmp_path, *argv, env=env)
        assert proc.returncode == 0, proc.stderr
    stores = list((tmp_path / "results" / "st").glob("*.zarr"))
    (first,) = [p for p in stores if p.name.count(".") == 1]  # <task_id>.zarr
    (second,) = [p for p in stores if p != first]  # the re-run, written beside it
    a, b = xr.open_zarr(first), xr.open_zarr(second)
    xr.testing.assert_equal(a["episode_return"], b["episode_return"])
    xr.testing.assert_equal(a["final_return"], b["final_return"])
    assert store.read_attrs(second)["task_id"] == first.stem
    # The first run compiled and filled the persistent cache; the second compiled nothing.
    cold, warm = (store.read_attrs(p)["provenance"]["compilation_cache"] for p in (first, second))
    assert cold["dir"] == warm["dir"] == str(tmp_path / "jax-cache")
    assert cold["misses"] >= 3 and cold["hits"] == 0  # init, update chunk, evaluate at least
    assert warm["hits"] == cold["misses"] and warm["misses"] == 0
    assert f"{warm['hits']} hits, 0 misses" in proc.stdout
