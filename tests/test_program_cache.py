"""The program cache: a study's later tasks load their compiled programs instead of tracing them,
only when everything that defines the programs is the same, and compile when an entry is bad."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import typing as tp
from pathlib import Path

import jax
import numpy as np
import pytest
import xarray as xr

from sweepax import program_cache, provenance, train
from sweepax.results import store

TINY = ["--env", "tmaze_5", "--total_steps", "1024", "--num_steps", "32", "--num_envs", "4",
        "--hidden_size", "8", "--eval_steps", "32"]  # fmt: skip


def task(*extra: str, tmp: Path = Path("/nonexistent")) -> train.Task:
    return train.parse_task(["ppo", "--study", "pc", "--results_dir", str(tmp), *TINY, *extra])


def parts(*extra: str) -> dict:
    t = task(*extra)
    fn = t.entry.make_sweep_fn(t.entry.static_cls(**t.static))
    return train.program_parts(t, fn, train.task_inputs(t))


@contextlib.contextmanager
def jax_config(name: str, value: object) -> tp.Iterator[None]:
    before = getattr(jax.config, name)
    jax.config.update(name, value)
    try:
        yield
    finally:
        jax.config.update(name, before)


def run(t: train.Task, cache: program_cache.ProgramCache | None) -> dict[str, np.ndarray]:
    compiled, inputs, _ = train.compile_task(t, cache)
    metrics, _ = train.run_task(compiled, inputs)
    return metrics


def test_the_key_ignores_the_seeds_and_the_swept_values_but_not_their_shapes():
    base = program_cache.key(parts("--seed", "1", "--lr", "0.001"))
    assert program_cache.key(parts("--seed", "9", "--lr", "0.003")) == base
    assert program_cache.key(parts("--seed", "1", "--lr", "0.001", "0.003")) != base  # 2 configs
    assert program_cache.key(parts("--seed", "1", "--lr", "0.001", "--n_seeds", "2")) != base
    assert program_cache.key(parts("--seed", "1", "--lr", "0.001", "--hidden_size", "4")) != base
    assert program_cache.key(parts("--seed", "1", "--lr", "0.001", "--total_steps", "2048")) != base


def test_the_key_changes_with_the_code_the_packages_and_what_jax_compiles_for(
    tmp_path, monkeypatch
):
    program = {"entry": "ppo", "static": {"env": "tmaze_5"}}
    base = program_cache.key(program_cache.key_parts(program))

    def changed() -> bool:
        return program_cache.key(program_cache.key_parts(program)) != base

    code = tmp_path / "sweepax"
    shutil.copytree(program_cache.PACKAGE, code, ignore=shutil.ignore_patterns("__pycache__"))
    assert program_cache.tree_digest(code) == program_cache.source_digest()
    (code / "envs" / "tmaze.py").write_text((code / "envs" / "tmaze.py").read_text() + "\n# x\n")
    edited = program_cache.tree_digest(code)
    assert edited != program_cache.source_digest()
    (code / "envs" / "pobax" / "pomdp" / "new.POMDP").write_text("discount: 0.9\n")  # data too
    assert program_cache.tree_digest(code) != edited

    with monkeypatch.context() as m:
        m.setattr(program_cache, "source_digest", lambda: edited)
        assert changed()
    with monkeypatch.context() as m:
        installed = provenance.packages()
        m.setattr(provenance, "packages", lambda: {**installed, "jaxlib": "0.0.0"})
        assert changed()
    with monkeypatch.context() as m:
        m.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_fast_math=true")
        assert changed()
    with jax_config("jax_enable_x64", True):
        assert changed()
    with monkeypatch.context() as m:
        client = jax.devices()[0].client
        other = type("Device", (), {"device_kind": "NVIDIA H100", "client": client})
        m.setattr(jax, "devices", lambda: [other()])
        assert changed()
    with monkeypatch.context() as m:
        m.setattr(jax, "default_backend", lambda: "gpu")
        assert changed()
    # when JAX keeps a program in its own cache does not change what it compiles
    with jax_config("jax_persistent_cache_min_compile_time_secs", 5.0):
        assert not changed()
    assert not changed()


def entry_file(folder: Path) -> Path:
    (path,) = folder.glob("*" + program_cache.SUFFIX)
    return path


def train_process(cwd: Path, seed: str, *extra: str, devices: str = "1") -> Path:
    """``python -m sweepax.train`` of the tiny task with ``seed`` and the compilation cache
    ``cwd/jax-cache``, as a job array line runs it: the store it wrote. ``devices`` CPU devices
    (one by default, as this test process has, so that the key parts computed here match)."""
    env = {**os.environ, "SWEEPAX_JAX_CACHE": str(cwd / "jax-cache"),
           "SWEEPAX_CPU_DEVICES": devices}  # fmt: skip
    argv = ["ppo", "--study", f"pc{seed}", "--results_dir", str(cwd), *TINY, "--seed", seed,
            *extra]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "sweepax.train", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (written,) = (cwd / f"pc{seed}").glob("*.zarr")
    return written


@pytest.fixture(scope="module")
def first_task(tmp_path_factory) -> Path:
    """The folder of a study's first task, trained with empty caches (it compiles)."""
    folder = tmp_path_factory.mktemp("first")
    train_process(folder, "1")
    return folder


def test_a_later_task_loads_the_programs_and_trains_what_a_compile_would(first_task):
    cold = store.read_attrs(next((first_task / "pc1").glob("*.zarr")))["provenance"]
    folder = first_task / "jax-cache" / program_cache.FOLDER
    key = entry_file(folder).name.removesuffix(program_cache.SUFFIX)
    assert cold["program_cache"] == {"dir": str(folder), "key": key, "result": "miss",
                                     "saved": True}  # fmt: skip

    written = train_process(first_task, "5")  # another task of the study: other seeds
    warm = store.read_attrs(written)["provenance"]
    assert warm["program_cache"] == {"dir": str(folder), "key": key, "result": "hit"}
    assert warm["compilation_cache"]["misses"] == 0  # nothing compiled

    compiled = run(task("--seed", "5"), None)  # traced and compiled here
    ds = xr.open_zarr(written)
    for name, values in compiled.items():  # the loaded programs trained what compiled ones do
        np.testing.assert_array_equal(ds[name].values, values, err_msg=name)
    first = xr.open_zarr(next((first_task / "pc1").glob("*.zarr")))
    assert not np.array_equal(first["loss_total"].values, compiled["loss_total"])  # seeds: input


@pytest.mark.parametrize("lrs", [["0.001"], ["0.001", "0.002"]], ids=["one-device", "split"])
def test_programs_of_a_process_with_two_cpu_devices_load_onto_the_devices_they_ran_on(
    tmp_path, lrs
):
    """One config runs on one of the two devices, two configs are split over both: a later
    task loads each program onto the devices it was compiled for and trains what it would."""
    extra = ["--lr", *lrs]
    train_process(tmp_path, "1", *extra, devices="2")
    written = train_process(tmp_path, "5", *extra, devices="2")
    prov = store.read_attrs(written)["provenance"]
    assert prov["program_cache"]["result"] == "hit" and prov["device_count"] == 2
    assert prov["run_split"] == [len(lrs), 1]
    (tmp_path / "fresh").mkdir()  # the same task compiled afresh
    fresh = train_process(tmp_path / "fresh", "5", *extra, devices="2")
    assert store.read_attrs(fresh)["provenance"]["program_cache"]["result"] == "miss"
    compiled = xr.open_zarr(fresh)
    for name in compiled.data_vars:
        np.testing.assert_array_equal(xr.open_zarr(written)[name].values, compiled[name].values,
                                      err_msg=name)  # fmt: skip


def test_bad_entries_are_compiled_instead_and_removed(tmp_path, first_task, capsys):
    key_parts = parts()
    shutil.copy(entry_file(first_task / "jax-cache" / program_cache.FOLDER), tmp_path)
    cache = program_cache.ProgramCache(tmp_path)
    path = cache.path(key_parts)
    programs, result = cache.load(key_parts)
    assert result == "hit"  # an entry written by one process is found by another

    good = path.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF  # one damaged byte in the executables
    path.write_bytes(bytes(damaged))
    assert cache.load(key_parts) == (None, "damaged (digest mismatch)")
    path.write_bytes(b"not a program\n")
    assert cache.load(key_parts) == (None, "unreadable (not an entry of this format)")
    other = parts("--hidden_size", "4")  # an entry found under another key's name
    cache.path(other).write_bytes(good)
    assert cache.load(other) == (None, "miss (entry written for other key parts)")

    for name, (blob, in_tree, out_tree) in programs["executables"].items():
        programs["executables"][name] = (blob[: len(blob) // 2], in_tree, out_tree)
    cache.save(key_parts, programs)  # a well-formed entry whose executables are cut short
    train.compile_task(task(), None)  # JAX's persistent cache now holds the programs
    again = program_cache.ProgramCache(tmp_path)
    compiled, _, _ = train.compile_task(task(), again)
    assert compiled.num_updates == 1024 // (32 * 4)
    assert again.record["result"].startswith("unloadable (UnpicklingError")
    assert f"{path}: unloadable (UnpicklingError" in capsys.readouterr().err
    # loaded from JAX's cache, they do not serialize again: the bad entry is gone, none written
    assert again.record["saved"] is False and not path.exists()
