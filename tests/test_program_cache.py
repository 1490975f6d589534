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


@pytest.fixture(scope="module")
def first_task(tmp_path_factory) -> tuple[dict, Path, dict[str, np.ndarray]]:
    """A study's first task, trained with an empty program cache: its cache record, the entry it
    wrote, its metrics."""
    cache = program_cache.ProgramCache(tmp_path_factory.mktemp("first") / "programs")
    trained = run(task("--seed", "1"), cache)
    return cache.record, entry_file(cache.folder), trained


def test_a_later_task_loads_the_programs_and_trains_what_a_compile_would(tmp_path, first_task):
    record, entry, trained = first_task
    assert record["result"] == "miss" and record["saved"] is True
    assert record["key"] == entry.name.removesuffix(program_cache.SUFFIX)
    folder = tmp_path / "jax-cache" / program_cache.FOLDER
    folder.mkdir(parents=True)
    path = Path(shutil.copy(entry, folder))

    # another task of the study (other seeds), in its own process, as a job array runs it
    env = {**os.environ, "SWEEPAX_JAX_CACHE": str(tmp_path / "jax-cache")}
    argv = ["ppo", "--study", "pc", "--results_dir", str(tmp_path), *TINY, "--seed", "5"]
    proc = subprocess.run([sys.executable, "-m", "sweepax.train", *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "program cache: hit" in proc.stdout
    (written,) = (tmp_path / "pc").glob("*.zarr")
    prov = store.read_attrs(written)["provenance"]
    assert prov["program_cache"] == {"dir": str(folder), "key": record["key"], "result": "hit"}

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one damaged byte in the executables
    path.write_bytes(bytes(data))
    damaged = program_cache.ProgramCache(folder)
    compiled = run(task("--seed", "5"), damaged)
    assert damaged.record["result"] == "damaged (digest mismatch)" and damaged.record["saved"]
    ds = xr.open_zarr(written)
    for name, values in compiled.items():  # the loaded programs trained what compiled ones do
        np.testing.assert_array_equal(ds[name].values, values, err_msg=name)
    assert not np.array_equal(trained["loss_total"], compiled["loss_total"])  # seeds are input
    assert program_cache.ProgramCache(folder).load(parts("--seed", "5"))[1] == "hit"  # rewritten


def test_entries_that_do_not_load_are_compiled_and_replaced(tmp_path, first_task, capsys):
    cache = program_cache.ProgramCache(tmp_path)
    key_parts = parts()
    programs, result = program_cache.ProgramCache(first_task[1].parent).load(key_parts)
    assert result == "hit"
    for name, (blob, in_tree, out_tree) in programs["executables"].items():
        programs["executables"][name] = (blob[: len(blob) // 2], in_tree, out_tree)
    cache.save(key_parts, programs)  # a well-formed entry whose executables are cut short

    compiled, _, _ = train.compile_task(task(), cache)
    assert cache.record["result"].startswith("unloadable (UnpicklingError")
    assert cache.record["saved"] is True and cache.load(key_parts)[1] == "hit"
    assert compiled.num_updates == 1024 // (32 * 4)
    assert f"{entry_file(tmp_path)}: unloadable (UnpicklingError" in capsys.readouterr().err

    other = parts("--hidden_size", "4")  # an entry found under another key's name
    shutil.copy(entry_file(tmp_path), cache.path(other))
    assert cache.load(other) == (None, "miss (entry written for other key parts)")
    cache.path(other).write_bytes(b"not a program\n")
    assert cache.load(other) == (None, "unreadable (not an entry of this format)")
