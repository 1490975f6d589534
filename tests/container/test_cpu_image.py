"""The CPU variant of the Containerfile, built for real with podman and run (slow; root only).

``nox -s container -- --podman --cpu --tag T`` bootstraps a Debian 12 base with debootstrap
(container/debian-base.sh; no registry is reachable here), builds the SAME Containerfile with
VARIANT=cpu on it, and this test runs the image: imports + ``jax.devices()``, then a tiny
``python -m sweepax.train`` whose store must record the image (name, OCI digest, podman) and the
lock the image was installed from. Needs root, debootstrap, podman and runc
(``apt-get install debootstrap podman buildah runc``); several minutes and ~2 GB the first time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TAG = "localhost/sweepax:test-cpu"
# Debian's crun cannot run containers on these hosts (cgroup v1 hybrid, no CAP_SYS_RESOURCE):
# runc, and ulimits below the hard limits (see the HPC notes)
RUN = ["podman", "run", "--rm", "--runtime", "runc", "--ulimit", "nofile=4096:4096",
       "--ulimit", "nproc=4096:4096"]  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or not all(map(shutil.which, ("podman", "runc", "debootstrap", "nox"))),
        reason="needs root, podman, runc, debootstrap and nox",
    ),
]


@pytest.fixture(scope="module")
def image() -> str:
    proc = subprocess.run(["nox", "-s", "container", "--", "--podman", "--cpu", "--tag", TAG],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return TAG


def inspect(tag: str, fmt: str) -> str:
    return subprocess.run(["podman", "image", "inspect", "--format", fmt, tag],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


def test_the_image_imports_sweepax_and_sees_the_cpu(image):
    code = "import sweepax, jax; print(jax.devices())"
    proc = subprocess.run([*RUN, image, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CpuDevice(id=0)" in proc.stdout


def test_the_labels_name_commit_lock_and_jax(image):
    labels = json.loads(inspect(image, "{{json .Labels}}"))
    lock = (ROOT / "requirements.lock").read_text()
    assert labels["sweepax.variant"] == "cpu" and labels["sweepax.cuda.version"] == "none"
    assert labels["sweepax.lock.sha256"] == hashlib.sha256(lock.encode()).hexdigest()
    assert labels["sweepax.jax.version"] == re.search(r"^jax==(\S+)", lock, re.M)[1]
    assert re.fullmatch(r"[0-9a-f]{40}", labels["sweepax.git.commit"])
    assert "sweepax.madrona_mjx.commit" not in labels  # no Madrona-MJX build


def test_a_tiny_training_run_in_the_image_records_the_image(image, tmp_path):
    digest = inspect(image, "{{.Digest}}")
    results = tmp_path / "results"
    results.mkdir()
    args = ["-m", "sweepax.train", "ppo", "--env", "tmaze_5", "--total_steps", "1024",
            "--num_steps", "32", "--num_envs", "4", "--hidden_size", "8", "--eval_steps", "64",
            "--study", "img", "--results_dir", "/results"]  # fmt: skip
    env = ["-e", f"SWEEPAX_IMAGE={image}", "-e", f"SWEEPAX_IMAGE_DIGEST={digest}"]
    proc = subprocess.run([*RUN, "-v", f"{results}:/results", *env, image, *args],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (store,) = (results / "img").glob("*.zarr")
    prov = json.loads((store / "zarr.json").read_text())["attributes"]["provenance"]
    assert prov["container"]["runtime"] == "podman" and prov["container"]["image"] == image
    assert prov["container"]["digest"] == digest and digest.startswith("sha256:")
    lock = (ROOT / "requirements.lock").read_bytes()
    assert prov["lock_source"] == "image"
    assert prov["lock_sha256"] == hashlib.sha256(lock).hexdigest()
    assert prov["command"].startswith("python -m sweepax.train ppo --env tmaze_5")
    assert prov["device_kind"] == "cpu" and prov["python"].startswith("3.11")
