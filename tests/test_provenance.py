"""``provenance.collect()``: every item a result store records about its making, one test each.

(That ``train`` writes them into the store, with device and timings, is checked on a real store in
tests/test_reproduce.py.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import importlib.metadata
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sweepax import provenance

SLURM = {"SLURM_JOB_ID": "1234", "SLURM_ARRAY_JOB_ID": "1200", "SLURM_ARRAY_TASK_ID": "34",
         "SLURM_ARRAY_TASK_COUNT": "100", "SLURMD_NODENAME": "gpu-node-7",
         "SLURM_JOB_PARTITION": "gpu", "SLURM_RESTART_COUNT": "1"}  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch):
    """No container, SLURM or XLA variables from the environment the tests run in."""
    for name in ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "SWEEPAX_IMAGE",
                 "SWEEPAX_IMAGE_DIGEST", "SWEEPAX_IMAGE_INFO", "XLA_FLAGS", *SLURM):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(provenance, "PODMAN_CONTAINERENV", Path("/nonexistent/.containerenv"))
    monkeypatch.setattr(provenance, "DOCKERENV", Path("/nonexistent/.dockerenv"))
    return monkeypatch


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


@pytest.fixture
def checkout(tmp_path, clean_env) -> Path:
    """A one-commit git checkout with a requirements.lock, as PROJECT_ROOT."""
    repo = tmp_path / "proj"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "study-branch")
    (repo / "requirements.lock").write_text("jax==0.10.2\n")
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    clean_env.setattr(provenance, "PROJECT_ROOT", repo)
    return repo


def test_git_commit_branch_and_clean_flag(checkout):
    rec = provenance.collect()["git"]
    assert rec["commit"] == git(checkout, "rev-parse", "HEAD") and len(rec["commit"]) == 40
    assert rec["branch"] == "study-branch"
    assert rec["dirty"] is False and rec["diff_sha256"] is None and rec["untracked_count"] == 0


def test_dirty_flag_and_hash_of_the_diff_and_of_untracked_files(checkout):
    (checkout / "code.py").write_text("x = 2\n")
    rec = provenance.collect()["git"]
    diff = git(checkout, "diff", "HEAD")
    assert rec["dirty"] is True
    assert rec["diff_sha256"] == hashlib.sha256(diff.encode()).hexdigest()
    (checkout / "new.py").write_text("y = 1\n")
    rec2 = provenance.git()
    assert rec2["untracked"] == ["new.py"] and rec2["untracked_sha256"]
    (checkout / "new.py").write_text("y = 2\n")  # the content is hashed, not only the name
    assert provenance.git()["untracked_sha256"] != rec2["untracked_sha256"]


def test_lock_hash_from_the_checkout_else_from_the_image(checkout, tmp_path, clean_env):
    rec = provenance.collect()
    assert rec["lock_sha256"] == hashlib.sha256(b"jax==0.10.2\n").hexdigest()
    assert rec["lock_source"] == "checkout"
    # an installed image (no checkout): the lock the image was built from, per image-info.json
    clean_env.setattr(provenance, "PROJECT_ROOT", tmp_path / "site-packages")
    info = tmp_path / "image-info.json"
    info.write_text(json.dumps({"lock_sha256": "ab" * 32}))
    clean_env.setenv("SWEEPAX_IMAGE_INFO", str(info))
    rec = provenance.collect()
    assert (rec["lock_sha256"], rec["lock_source"]) == ("ab" * 32, "image")
    assert rec["git"]["commit"] is None


def test_package_versions_python_host_and_node(clean_env):
    rec = provenance.collect()
    for name in ("jax", "jaxlib", "flax", "optax", "gymnax", "mujoco", "mujoco-mjx", "madrona_mjx"):
        assert name in rec["packages"], name
    for name in ("jax", "jaxlib", "flax", "optax", "gymnax"):
        assert rec["packages"][name] == importlib.metadata.version(name)
    assert rec["python"] == sys.version.split()[0] and rec["executable"] == sys.executable
    assert rec["host"] == socket.gethostname() and rec["node"] == socket.gethostname()


def test_madrona_version_and_commit_when_installed(tmp_path, clean_env):
    assert provenance.madrona_mjx() is None  # not installed on these machines
    # an editable install as container/setup.sh makes it: <dir>/src/madrona_mjx + <dir>/COMMIT
    pkg = tmp_path / "madrona" / "src" / "madrona_mjx"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('needs jax < 0.6')\n")
    (tmp_path / "madrona" / "COMMIT").write_text("1505699168fd7c0c12629356f357b05491ce9d0c\n")
    clean_env.syspath_prepend(str(tmp_path / "madrona" / "src"))
    importlib.invalidate_caches()
    rec = provenance.collect()["madrona_mjx"]
    assert rec["commit"] == "1505699168fd7c0c12629356f357b05491ce9d0c"  # located, never imported
    assert rec["path"].startswith(str(tmp_path))


def test_xla_flags_and_the_environment_that_changes_numbers(clean_env):
    clean_env.setenv("XLA_FLAGS", "--xla_gpu_deterministic_ops=true")
    clean_env.setenv("JAX_DEFAULT_MATMUL_PRECISION", "highest")
    clean_env.setenv("SOME_TOKEN", "secret")
    rec = provenance.collect()
    assert rec["xla_flags"] == "--xla_gpu_deterministic_ops=true"
    assert rec["environment"]["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true"
    assert rec["environment"]["JAX_DEFAULT_MATMUL_PRECISION"] == "highest"
    assert "SOME_TOKEN" not in rec["environment"]


def test_sif_image_path_and_its_sha256(tmp_path, clean_env):
    sif = tmp_path / "sweepax.sif"
    sif.write_bytes(b"SIF" * 5000)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"sweepax.git.commit": "c" * 40}))
    clean_env.setattr(provenance, "APPTAINER_LABELS", labels)
    clean_env.setenv("APPTAINER_CONTAINER", str(sif))
    rec = provenance.collect()["container"]
    assert rec["image"] == str(sif) and rec["runtime"] == "apptainer"
    assert rec["digest"] == "sha256:" + hashlib.sha256(b"SIF" * 5000).hexdigest()
    assert rec["digest_source"] == "sha256 of the SIF file"
    assert rec["labels"] == {"sweepax.git.commit": "c" * 40}


def test_sif_sha256_cache_holds_digest_size_and_mtime_and_leaves_no_temporary(tmp_path, clean_env):
    """(That the cache is read and a rebuilt image misses it: tests/test_reproduce.py.)"""
    sif = tmp_path / "sweepax.sif"
    sif.write_bytes(b"SIF" * 5000)
    hexdigest = hashlib.sha256(sif.read_bytes()).hexdigest()
    assert provenance.sif_digest(sif) == f"sha256:{hexdigest}"
    st = sif.stat()
    cache = tmp_path / "sweepax.sif.sha256"
    assert cache.read_text() == f"{hexdigest} {st.st_size} {st.st_mtime_ns}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweepax.sif", "sweepax.sif.sha256"]
    assert provenance.sif_digest(tmp_path) is None  # a sandbox folder has no file digest


def test_sif_sha256_cache_goes_to_the_user_cache_when_the_image_folder_refuses_it(
    tmp_path, clean_env
):
    sif = tmp_path / "images" / "sweepax.sif"
    sif.parent.mkdir()
    sif.write_bytes(b"SIF" * 5000)
    (sif.parent / "sweepax.sif.sha256").mkdir()  # cannot be written as a file
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    digest = provenance.sif_digest(sif)
    (cached,) = (tmp_path / "cache" / "sweepax" / "sif-digests").iterdir()
    assert digest == "sha256:" + cached.read_text().split()[0]
    assert sorted(p.name for p in sif.parent.iterdir()) == ["sweepax.sif", "sweepax.sif.sha256"]


def test_oci_image_name_and_digest_from_env_in_podman(tmp_path, clean_env):
    """podman leaves /run/.containerenv empty unless --privileged: the runtime is still podman;
    the launcher passes the image name and its OCI digest as env vars."""
    containerenv = tmp_path / ".containerenv"
    containerenv.write_text("")
    clean_env.setattr(provenance, "PODMAN_CONTAINERENV", containerenv)
    clean_env.setenv("SWEEPAX_IMAGE_INFO", str(tmp_path / "missing.json"))
    clean_env.setenv("SWEEPAX_IMAGE", "localhost/sweepax:abc")
    clean_env.setenv("SWEEPAX_IMAGE_DIGEST", "sha256:" + "d" * 64)
    clean_env.setenv("SWEEPAX_IMAGE_GIT_COMMIT", "e" * 40)
    rec = provenance.collect()["container"]
    assert rec["runtime"] == "podman" and rec["image"] == "localhost/sweepax:abc"
    assert rec["digest"] == "sha256:" + "d" * 64
    assert rec["digest_source"] == "env SWEEPAX_IMAGE_DIGEST"
    assert rec["labels"]["sweepax.git.commit"] == "e" * 40
    # --privileged: podman names the image and its id in the file
    containerenv.write_text('engine="podman-4.3.1"\nimage="localhost/sweepax:abc"\nimageid="f00"\n')
    clean_env.delenv("SWEEPAX_IMAGE_DIGEST")
    rec = provenance.collect()["container"]
    assert rec["digest"] == "sha256:f00" and "containerenv" in rec["digest_source"]


def test_no_container_is_recorded_as_none(clean_env):
    assert provenance.collect()["container"] == {"image": None, "digest": None}


def test_slurm_job_array_task_ids_and_node(clean_env):
    for name, value in SLURM.items():
        clean_env.setenv(name, value)
    rec = provenance.collect()
    assert rec["slurm"]["job_id"] == "1234" and rec["slurm"]["array_job_id"] == "1200"
    assert rec["slurm"]["array_task_id"] == "34" and rec["slurm"]["array_task_count"] == "100"
    assert rec["slurm"]["nodename"] == "gpu-node-7" and rec["node"] == "gpu-node-7"
    assert rec["slurm"]["restart_count"] == "1"


def test_start_time_is_utc_now(clean_env):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = dt.datetime.fromisoformat(provenance.collect()["started_at"])
    assert started.tzinfo is not None and before <= started <= dt.datetime.now(dt.UTC)


def test_exact_command_line_and_argv_given_in_process(clean_env):
    rec = provenance.collect(argv=["ppo", "--env", "tmaze_5", "--lr", "0.001", "0.003"])
    assert rec["command"] == "python -m sweepax.train ppo --env tmaze_5 --lr 0.001 0.003"
    assert rec["argv"][1:] == ["ppo", "--env", "tmaze_5", "--lr", "0.001", "0.003"]
    assert rec["orig_argv"] == list(sys.orig_argv)  # the interpreter's own command line


def test_sweep_file_content_hash(tmp_path, clean_env):
    spec = tmp_path / "study.py"
    spec.write_text("SWEEP = {'lr': [1e-3]}\n")
    rec = provenance.collect(spec=spec)["spec"]
    assert rec == {"path": str(spec), "sha256": hashlib.sha256(spec.read_bytes()).hexdigest()}
    assert provenance.collect()["spec"] is None
    assert provenance.spec_file(tmp_path / "gone.py")["sha256"] is None


def test_device_kind_and_count():
    rec = provenance.devices()
    import jax

    assert rec["device_count"] == jax.device_count() >= 1
    assert rec["device_kind"] == jax.devices()[0].device_kind and rec["device_platform"] == "cpu"


def test_device_memory_is_recorded_where_the_device_reports_it():
    class Reports:  # what a GPU's memory_stats() holds, among other counters
        def memory_stats(self):
            return {"peak_bytes_in_use": 3 << 30, "bytes_limit": 141 << 30, "num_allocs": 9}

    class Silent:  # XLA's CPU client
        def memory_stats(self):
            return None

    got = provenance.device_memory(Reports())
    assert got == {"device_peak_bytes": 3 << 30, "device_bytes_limit": 141 << 30}
    assert provenance.device_memory(Silent()) == {}
    assert "device_peak_bytes" not in provenance.devices()  # this machine's CPU
