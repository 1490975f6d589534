"""``python -m sweepax.train``: one real jitted task writes a labelled, provenance-rich store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sweepax import entries, program_cache
from sweepax import train as train_module
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
    assert attrs["env_definition"] == {"id": "tmaze_5", "family": "tmaze_<N>"}
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


def test_runs_split_over_cpu_devices_give_the_numbers_of_one_device(tmp_path):
    """One JAX CPU device per core: a task's runs are shared out over the devices (here 3
    configs x 2 seeds on 2 devices: the seeds), and every run gets the numbers it gets on one."""
    short = [*TINY[:2], "--total_steps", "512", *TINY[4:]]  # 4 updates: differences stay small
    argv = ["ppo", "--study", "st", *short, "--lr", "0.001", "0.002", "0.003", "--n_seeds", "2"]
    stores = {}
    for devices in ("1", "2"):
        out = tmp_path / devices
        out.mkdir()
        env = {**os.environ, "SWEEPAX_CPU_DEVICES": devices, "SWEEPAX_JAX_CACHE": "off"}
        proc = train(out, *argv, env=env)
        assert proc.returncode == 0, proc.stderr
        (stores[devices],) = (out / "results" / "st").glob("*.zarr")
    one, two = (store.read_attrs(stores[d])["provenance"] for d in ("1", "2"))
    assert (one["device_count"], one["run_split"]) == (1, [1, 1])
    assert (two["device_count"], two["run_split"]) == (2, [1, 2])
    a, b = (xr.open_zarr(stores[d], consolidated=None) for d in ("1", "2"))
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_allclose(b[name].values, a[name].values, rtol=1e-5, atol=1e-6,
                                   err_msg=name)  # fmt: skip


def test_a_cpu_device_count_that_is_not_a_number_is_refused_in_one_line(tmp_path):
    env = {**os.environ, "SWEEPAX_CPU_DEVICES": "two"}
    proc = train(tmp_path, "ppo", "--study", "st", *TINY, env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "SWEEPAX_CPU_DEVICES='two': give a whole number" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("environ", "cores", "count"),
    [
        ({}, 8, 8),
        ({"SLURM_CPUS_PER_TASK": "4"}, 64, 4),  # a job's share of a node it is not bound to
        ({"SLURM_CPUS_PER_TASK": "16"}, 4, 4),
        ({"SWEEPAX_CPU_DEVICES": "3", "SLURM_CPUS_PER_TASK": "4"}, 8, 3),
        ({"SWEEPAX_CPU_DEVICES": " 1 "}, 8, 1),
        ({}, 0, 1),
    ],
)
def test_one_cpu_device_per_core_the_task_may_use(environ, cores, count):
    assert train_module.cpu_device_count(environ, cores) == count


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
    for run in range(2):
        proc = train(tmp_path, *argv, env=env)
        assert proc.returncode == 0, proc.stderr
        if run == 0:  # without the program cache's entry (test_program_cache.py), JAX's serves
            shutil.rmtree(tmp_path / "jax-cache" / program_cache.FOLDER)
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


# --- checks before any compute: the results folder, the disk, the values -------------------------

REFUSE = """
import sys, time
from sweepax import train
t0 = time.perf_counter()
rc = train.main(sys.argv[1:])
print(rc, "jax" in sys.modules, round(time.perf_counter() - t0, 3))
"""


def refused(tmp_path: Path, *argv: str) -> tuple[str, bool, float]:
    """Run ``train.main(argv)`` in a fresh process: (its one error line, jax imported?, seconds)."""
    proc = subprocess.run(
        [sys.executable, "-c", REFUSE, *argv], cwd=tmp_path, capture_output=True, text=True
    )
    rc, jax_loaded, seconds = proc.stdout.split()
    assert rc == "2", proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ")
    assert not list(tmp_path.rglob("*.zarr")) and not list(tmp_path.rglob(".*tmp-*"))
    return proc.stderr.strip(), jax_loaded == "True", float(seconds)


@pytest.fixture
def mount(tmp_path):
    """``mount(path, *options)``: a small tmpfs at ``path`` (root only), unmounted afterwards."""
    mounted = []

    def _mount(path: Path, *options: str) -> None:
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        path.mkdir(parents=True, exist_ok=True)
        opts = ",".join(("size=1m", *options))
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(path)

    yield _mount
    for path in reversed(mounted):
        subprocess.run(["umount", str(path)], check=True)


def test_a_file_where_the_study_folder_goes_is_refused_before_jax_is_imported(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "st").write_text("not a folder")
    line, jax_loaded, seconds = refused(tmp_path, "ppo", "--study", "st", *TINY)
    assert line == (
        "error: results/st: is a file, not a results folder; move it away or choose another "
        "--study or --results_dir"
    )
    assert not jax_loaded and seconds < 2  # a compile takes longer than importing JAX (~3 s)
    assert (tmp_path / "results" / "st").read_text() == "not a folder"  # left as it was


def test_a_results_folder_this_user_cannot_write_is_refused_before_jax_is_imported(tmp_path, mount):
    readonly = tmp_path / "readonly"
    if os.geteuid() == 0:  # root writes through permission bits: a read-only filesystem
        mount(readonly, "ro")
    else:
        readonly.mkdir()
        readonly.chmod(0o555)
    line, jax_loaded, seconds = refused(
        tmp_path, "ppo", "--study", "st", "--results_dir", str(readonly), *TINY
    )
    assert line.startswith(f"error: {readonly}/st: cannot write results here (")
    assert line.endswith("give --results_dir a folder this user can write")
    assert not jax_loaded and seconds < 2
    assert not list(readonly.iterdir())


def test_a_full_disk_is_refused_before_compiling(tmp_path, mount):
    small = tmp_path / "small"
    mount(small)
    (small / "filler").write_bytes(b"x" * 1000_000)
    line, _, seconds = refused(tmp_path, "ppo", "--study", "st", "--results_dir", str(small), *TINY)
    assert line.startswith(f"error: {small}/st: ")
    assert "MiB free, the store needs about " in line and "(1 configs x 1 seeds " in line
    assert line.endswith("free some space or give --results_dir on a larger disk")
    assert list(small.iterdir()) == [small / "filler"]


def test_free_space_is_checked_against_the_estimated_store_before_compiling(
    tmp_path, monkeypatch, capsys
):
    from sweepax import train

    argv = ["ppo", "--study", "st", "--results_dir", str(tmp_path), *TINY, "--n_seeds", "3",
            "--lr", "0.1", "0.2"]  # fmt: skip
    task = train.parse_task(argv)
    updates, metrics = 2048 // (32 * 4), 11
    need = 2 * 3 * updates * 4 * metrics * train.STORE_SAFETY + train.STORE_MARGIN
    assert train.store_bytes(task) == need

    def disk(free):
        return lambda path: shutil._ntuple_diskusage(1 << 40, (1 << 40) - free, free)

    monkeypatch.setattr(train, "compile_task", lambda task: pytest.fail("compiled"))
    monkeypatch.setattr(shutil, "disk_usage", disk(need - 1))
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}/st: ") and "2 configs x 3 seeds" in err
    monkeypatch.setattr(shutil, "disk_usage", disk(need))
    train.check_free_space(task)  # exactly enough: accepted


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "0.001", "-0.001"], "key 'lr': -0.001 must be greater than 0 (Adam"),
        (["--lr", "nan"], "key 'lr': nan is not a finite number"),
        (["--entropy_coeff", "inf"], "key 'entropy_coeff': inf is not a finite number"),
        (["--lambda0", "1.5"], "key 'lambda0': 1.5 must be between 0 and 1"),
        (["--lambda1", "-0.1"], "key 'lambda1': -0.1 must be between 0 and 1"),
        (["--ld_weight", "2.0"], "key 'ld_weight': 2.0 must be between 0 and 1"),
        (["--gamma", "0"], "key 'gamma': 0.0 must be greater than 0 and at most 1"),
        (["--gamma", "1.01"], "key 'gamma': 1.01 must be greater than 0 and at most 1"),
        (["--vf_coeff", "-1"], "key 'vf_coeff': -1.0 must be at least 0"),
        (["--clip_eps", "0"], "key 'clip_eps': 0.0 must be greater than 0"),
        (["--max_grad_norm", "0"], "key 'max_grad_norm': 0.0 must be greater than 0"),
        (
            ["--renderer", "opengl"],
            "key 'renderer': 'opengl' must be one of 'jax', 'warp', 'madrona'",
        ),
        (["--study", "a\nb"], "--study: 'a\\nb' is not a usable study name"),
        (["--study", "../up"], "--study: '../up' is not a usable study name"),
        (["--study", "a b"], "--study: 'a b' is not a usable study name"),
    ],
)
def test_values_outside_their_declared_range_are_refused_before_compiling(tmp_path, flags, message):
    line, _, seconds = refused(tmp_path, "ppo", *TINY, *flags)
    assert message in line
    assert line.endswith("; fix the task's arguments") or flags[0] == "--study"
    assert not (tmp_path / "results").exists()  # nothing written, not even an empty folder


def test_help_needs_no_writable_results_folder(tmp_path, mount):
    readonly = tmp_path / "readonly"
    mount(readonly, "ro")
    proc = train(readonly, "ppo", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--lr" in proc.stdout and "--results_dir" in proc.stdout
