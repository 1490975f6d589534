"""``python -m sweepax.reproduce``: what made a store, and a bit-for-bit re-run on the CPU."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweepax import provenance, reproduce
from sweepax.results import store

TINY = ["--env", "tmaze_5", "--total_steps", "2048", "--num_steps", "32", "--num_envs", "4",
        "--hidden_size", "8", "--eval_steps", "64"]  # fmt: skip


def run(cwd: Path, module: str, *argv: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip


# as a SLURM array task would see them; the XLA flag does not change the numbers (one CPU device)
JOB_ENV = {"SLURM_JOB_ID": "77", "SLURM_ARRAY_JOB_ID": "76", "SLURM_ARRAY_TASK_ID": "3",
           "SLURMD_NODENAME": "node-a",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}  # fmt: skip


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """One tiny real task store (about 15-30 s, mostly the JAX compile)."""
    cwd = tmp_path_factory.mktemp("made")
    proc = run(cwd, "sweepax.train", "ppo", "--study", "st", *TINY, "--lr", "0.001", "0.003",
               "--n_seeds", "2", "--spec", "hyperparams/x.py", "--spec_hash", "abc",
               env={**os.environ, **JOB_ENV})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (path,) = (cwd / "results" / "st").glob("*.zarr")
    return path


def set_attrs(path: Path, change) -> None:
    """Edit a store's root attributes in place (as a record made elsewhere would read), with
    the root checksum that writer would have written."""
    meta = json.loads((path / "zarr.json").read_text())
    change(meta["attributes"])
    meta["attributes"]["root_sha256"] = store.root_digest(meta)
    (path / "zarr.json").write_text(json.dumps(meta))


def test_show_prints_command_image_commit_and_dirty_flag(made, capsys):
    assert reproduce.main([str(made)]) == 0
    out = capsys.readouterr().out
    assert "command:  python -m sweepax.train ppo --study st --env tmaze_5" in out
    assert "--lr 0.001 0.003 --n_seeds 2" in out
    assert "image:    none (run outside a container)" in out
    prov = store.read_attrs(made)["provenance"]
    assert f"commit:   {prov['git']['commit']} on {prov['git']['branch']}" in out
    assert "dirty:    " + ("yes" if prov["git"]["dirty"] else "no") in out
    assert "spec:     hyperparams/x.py (sha256 abc)" in out and "node" in out


def test_provenance_records_node_untracked_files_and_image(made):
    prov = store.read_attrs(made)["provenance"]
    assert prov["node"] and prov["container"] == {"image": None, "digest": None}
    assert {"untracked", "untracked_count", "untracked_sha256"} <= set(prov["git"])


def test_the_store_records_every_provenance_item(made):
    """Issue 5's list, on a store ``train`` wrote (the items' values: tests/test_provenance.py)."""
    attrs = store.read_attrs(made)
    prov = attrs["provenance"]
    assert {"commit", "branch", "dirty", "diff_sha256"} <= set(prov["git"])
    assert prov["lock_sha256"] == provenance.lock_hash() and prov["lock_source"] == "checkout"
    assert {"jax", "jaxlib", "flax", "optax", "gymnax", "mujoco", "mujoco-mjx",
            "madrona_mjx"} <= set(prov["packages"])  # fmt: skip
    assert prov["packages"]["jax"] and prov["python"] and prov["host"]
    assert prov["device_kind"] == "cpu" and prov["device_count"] == 1
    assert prov["xla_flags"] == JOB_ENV["XLA_FLAGS"]
    assert prov["environment"]["XLA_FLAGS"] == JOB_ENV["XLA_FLAGS"]
    assert prov["container"] == {"image": None, "digest": None}
    slurm = prov["slurm"]
    assert (slurm["job_id"], slurm["array_job_id"], slurm["array_task_id"]) == ("77", "76", "3")
    assert prov["node"] == "node-a" == slurm["nodename"]
    assert prov["started_at"] <= prov["finished_at"]
    assert prov["compile_seconds"] > 0 and prov["run_seconds"] > 0
    assert prov["command"] == "python -m sweepax.train " + " ".join(prov["argv"][1:])
    assert prov["orig_argv"][1:3] == ["-m", "sweepax.train"]
    assert attrs["spec_path"] == "hyperparams/x.py" and attrs["spec_hash"] == "abc"


def test_run_reproduces_bit_for_bit_on_cpu(made, tmp_path):
    scratch = tmp_path / "scratch"
    proc = run(tmp_path, "sweepax.reproduce", str(made), "--run", "--results_dir", str(scratch))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"--results_dir {scratch}" in proc.stdout
    assert f"XLA_FLAGS={JOB_ENV['XLA_FLAGS']!r} (as recorded)" in proc.stdout
    assert "identical: all" in proc.stdout and "episode_return" in proc.stdout
    (new,) = (scratch / "st").glob("*.zarr")
    assert new.name == made.name  # same task id, same layout


def test_compare_names_the_differing_variables_and_nan_positions(made, tmp_path):
    import shutil

    import zarr

    other = tmp_path / made.name
    shutil.copytree(made, other)
    same, differ = reproduce.compare(made, other)
    assert differ == [] and "final_return" in same and "lr" in same
    group = zarr.open_group(other, mode="r+")
    arr = group["entropy"]
    values = np.asarray(arr[...])
    values[0, 0, 0] = np.nextafter(values[0, 0, 0], np.inf)  # one ulp
    arr[...] = values
    nan = np.asarray(group["final_return"][...])
    nan[0, 0] = np.nan
    group["final_return"][...] = nan
    same, differ = reproduce.compare(made, other)
    assert [d.split(":")[0] for d in differ] == ["entropy", "final_return"]
    assert "1/" in differ[0] and "NaN positions differ" in differ[1]
    # NaN where both have NaN is equal
    same, differ = reproduce.compare(other, other)
    assert differ == []


def test_apptainer_line_for_a_store_made_in_an_image(made, tmp_path, monkeypatch):
    """The re-run goes through ``apptainer exec --nv --bind <project>:<project> <image>`` when the
    store was made in an image that is here; a stand-in apptainer checks the line and runs it."""
    image = tmp_path / "sweepax.sif"
    image.write_bytes(b"not really a SIF")
    digest = "sha256:" + hashlib.sha256(image.read_bytes()).hexdigest()
    copy = tmp_path / "results" / "st" / made.name
    import shutil

    shutil.copytree(made, copy)
    set_attrs(copy, lambda a: a["provenance"].update(
        container={"image": str(image), "digest": digest, "runtime": "apptainer",
                   "digest_source": "sha256 of the SIF file"}))  # fmt: skip
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apptainer.log"
    # a stand-in: logs its arguments, drops `exec --nv --bind X --bind Y IMAGE` and runs the rest
    # with this test's python (the image's `python` is on its PATH)
    fake = bindir / "apptainer"
    fake.write_text(f"""#!/bin/bash
echo "$@" > {log}
shift; while [ "$1" = --nv ] || [ "$1" = --bind ]; do [ "$1" = --bind ] && shift; shift; done
shift; shift; exec {sys.executable} "$@"
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}

    attrs = store.read_attrs(copy)
    monkeypatch.setenv("PATH", env["PATH"])
    prefix = reproduce.container_prefix(attrs, provenance.PROJECT_ROOT, ["/scratch"])
    root = provenance.PROJECT_ROOT
    assert prefix == [str(fake), "exec", "--nv", "--bind", f"{root}:{root}", "--bind", "/scratch",
                      str(image)]  # fmt: skip
    cmd = reproduce.rerun_command(attrs, tmp_path / "s", prefix)
    assert cmd[len(prefix) :][:3] == ["python", "-m", "sweepax.train"]
    assert cmd[-2:] == ["--results_dir", str(tmp_path / "s")]

    shown = reproduce.describe(copy, attrs)
    assert f"image:    {image}  {digest} (sha256 of the SIF file)" in shown
    proc = run(tmp_path, "sweepax.reproduce", str(copy), "--run", "--results_dir",
               str(tmp_path / "s"), env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert log.read_text().startswith(f"exec --nv --bind {root}:{root} {image} python -m sweepax")
    assert "identical: all" in proc.stdout


def test_sif_digest_is_computed_once_and_cached_next_to_the_image(tmp_path):
    image = tmp_path / "x.sif"
    image.write_bytes(b"abc" * 1000)
    want = "sha256:" + hashlib.sha256(image.read_bytes()).hexdigest()
    assert provenance.sif_digest(image) == want
    cache = tmp_path / "x.sif.sha256"
    assert cache.read_text().split()[0] == want.removeprefix("sha256:")
    cache.write_text(cache.read_text().replace(want[7:], "f" * 64))  # the cache is what is read
    assert provenance.sif_digest(image) == "sha256:" + "f" * 64
    image.write_bytes(b"rebuilt")  # new size/mtime: the cache is stale and recomputed
    assert provenance.sif_digest(image) == "sha256:" + hashlib.sha256(b"rebuilt").hexdigest()
    assert provenance.sif_digest(tmp_path / "missing.sif") is None


def test_container_record_inside_an_apptainer_image(tmp_path, monkeypatch):
    image = tmp_path / "img.sif"
    image.write_bytes(b"sif")
    info = tmp_path / "image-info.json"
    info.write_text(json.dumps({"variant": "gpu", "lock_sha256": "x"}))
    monkeypatch.setenv("APPTAINER_CONTAINER", str(image))
    monkeypatch.setenv("SWEEPAX_IMAGE_INFO", str(info))
    monkeypatch.delenv("SWEEPAX_IMAGE_DIGEST", raising=False)
    rec = provenance.container()
    assert rec["image"] == str(image) and rec["runtime"] == "apptainer"
    assert rec["digest"] == "sha256:" + hashlib.sha256(b"sif").hexdigest()
    assert rec["info"] == {"variant": "gpu", "lock_sha256": "x"}
    monkeypatch.setenv("SWEEPAX_IMAGE_DIGEST", "sha256:given")  # a launcher's value wins
    assert provenance.container()["digest"] == "sha256:given"


def _incomplete(p: Path) -> Path:
    (p / "y.zarr").mkdir()
    (p / "y.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    return p / "y.zarr"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "nope.zarr", "no such store"),
        (lambda p: p, "not a Zarr store (a study folder?"),
        (lambda p: (p / "x.zarr").mkdir() or p / "x.zarr", "not a Zarr store"),
        (_incomplete, "not a complete result store"),
    ],
)
def test_not_a_complete_store_is_one_line_error(tmp_path, capsys, make, message):
    assert reproduce.main([str(make(tmp_path)), "--run"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and message in err and err.startswith("error: ")


def test_a_store_train_wrote_passes_its_full_check(made):
    state = store.store_state(made, full=True)
    assert state.verified and state.task_id == made.name.split(".")[0]
    assert set(store.read_attrs(made)["files"]) >= {
        "episode_return/zarr.json",
        "final_return/c/0/0",
    }


def test_default_scratch_lies_beside_the_store_and_clean_removes_it_after(made, tmp_path):
    from sweepax.results import clean

    study = tmp_path / "results" / "st"
    copy = study / made.name
    shutil.copytree(made, copy)
    proc = run(tmp_path, "sweepax.reproduce", str(copy), "--run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical: all" in proc.stdout
    (scratch,) = [p for p in study.iterdir() if p.name.startswith(".")]
    assert scratch.name.startswith(f".reproduce-{copy.name.split('.')[0]}.tmp-")
    assert (scratch / "st" / made.name / "zarr.json").is_file()
    assert f"re-running into {scratch}" in proc.stdout
    (left,) = store.leftovers(study)
    assert (left.path, left.kind, left.removable) == (scratch, "reproduce scratch", True)
    removed, kept = clean.clean_study(study)
    assert [x.path for x in removed] == [scratch] and kept == [] and not scratch.exists()
    assert store.complete_stores(study) == {copy.name.split(".")[0]: copy}


def test_a_corrupt_store_is_one_line_error(made, tmp_path, capsys):
    copy = tmp_path / made.name
    shutil.copytree(made, copy)
    (copy / "final_return" / "c" / "0" / "0").unlink()
    assert reproduce.main([str(copy)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: {copy}: corrupt store (chunk final_return/c/0/0 missing); re-run its task\n"
    )
