"""Checkpoints of ``python -m sweepax.train``: a task killed or stopped part-way resumes from its
newest usable checkpoint and writes a store bit-identical to an uninterrupted run's."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sweepax import checkpoint
from sweepax.results import store

# 128 updates of 7 (20 chunks of the update loop): long enough to be killed part-way
ARGV = ["ppo", "--study", "st", "--env", "tmaze_5", "--total_steps", "16384", "--num_steps",
        "32", "--num_envs", "4", "--hidden_size", "8", "--eval_steps", "64",
        "--lr", "0.001", "0.003", "--n_seeds", "2"]  # fmt: skip
NUM_UPDATES = 128
CHUNK = 7


def start(cwd: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweepax.train", *ARGV, *extra],
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )


def wait_for(proc: subprocess.Popen, text: str, timeout: float = 300) -> list[str]:
    """Read the task's log until a line holds ``text``; every line read."""
    deadline, lines = time.time() + timeout, []
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    pytest.fail(f"the task never logged {text!r}: {''.join(lines[-20:])}")


def finish(cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweepax.train", *ARGV, *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def the_store(cwd: Path) -> Path:
    (path,) = (cwd / "results" / "st").glob("*.zarr")
    return path


def assert_bit_identical(a: Path, b: Path) -> None:
    with xr.open_zarr(a, consolidated=None) as x, xr.open_zarr(b, consolidated=None) as y:
        assert sorted(x.data_vars) == sorted(y.data_vars)
        for name in x.data_vars:
            xa, ya = x[name].values, y[name].values
            assert xa.dtype == ya.dtype and xa.shape == ya.shape, name
            assert xa.tobytes() == ya.tobytes(), f"{name} differs"
        for name in x.coords:
            assert x[name].values.tobytes() == y[name].values.tobytes(), name


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory) -> Path:
    """The store of an uninterrupted run (no checkpoint due in its lifetime)."""
    cwd = tmp_path_factory.mktemp("clean")
    proc = finish(cwd, "--checkpoint_every", "1e9")
    assert proc.returncode == 0, proc.stderr
    assert "resumed" not in proc.stderr and "checkpoint update-" not in proc.stderr
    assert not (cwd / "results" / "st" / checkpoint.FOLDER).exists()
    return the_store(cwd)


def test_killed_task_resumes_and_ends_bit_identical(tmp_path, clean_store):
    proc = start(tmp_path, "--checkpoint_every", "0")
    wait_for(proc, "checkpoint update-")
    time.sleep(random.uniform(0.0, 1.5))  # somewhere after the first checkpoint
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    folder = tmp_path / "results" / "st" / checkpoint.FOLDER / the_id(clean_store)
    names = sorted(p.name for p in folder.iterdir() if p.name.startswith("update-"))
    # a kill during a save leaves orbax's temporary folder (update-<k>.orbax-checkpoint-tmp...)
    # beside the complete checkpoints; the rerun removes it
    saved = [n for n in names if "." not in n]
    assert saved and len(saved) <= checkpoint.KEEP and len(names) <= checkpoint.KEEP + 1
    newest = int(saved[-1].removeprefix("update-"))

    rerun = finish(tmp_path, "--checkpoint_every", "0")
    assert rerun.returncode == 0, rerun.stderr
    resumed = [ln for ln in rerun.stderr.splitlines() if ln.startswith("resumed")]
    assert resumed == [f"resumed {the_id(clean_store)} at update {newest}/{NUM_UPDATES}"]
    assert newest % CHUNK == 0 and 0 < newest < NUM_UPDATES
    assert_bit_identical(the_store(tmp_path), clean_store)
    # the store is complete: its checkpoints are gone
    assert not folder.exists() and not folder.parent.exists()
    segments = store.read_attrs(the_store(tmp_path))["provenance"]["segments"]
    assert [(s["start_update"], s["end_update"]) for s in segments] == [
        (0, newest),
        (newest, NUM_UPDATES),
    ]
    assert all(s["host"] and s["started_at"] and s["ended_at"] for s in segments)


def the_id(store_path: Path) -> str:
    return store_path.name.removesuffix(".zarr")


def test_usr1_checkpoints_and_stops_a_damaged_checkpoint_is_refused(tmp_path, clean_store):
    proc = start(tmp_path, "--checkpoint_every", "0")
    wait_for(proc, "checkpoint update-00000014")  # two checkpoints exist
    os.kill(proc.pid, signal.SIGUSR1)
    lines = wait_for(proc, "stopped ")
    assert proc.wait(timeout=120) == checkpoint.EXIT_STOPPED
    proc.stderr.close()
    stopped = lines[-1].strip()
    assert stopped.startswith(f"stopped {the_id(clean_store)} at update ")
    assert stopped.endswith("on SIGUSR1: checkpoint saved; run the task again to resume")
    folder = tmp_path / "results" / "st" / checkpoint.FOLDER / the_id(clean_store)
    older, newest = sorted(p for p in folder.iterdir() if p.name.startswith("update-"))
    assert not list(tmp_path.glob("results/st/*.zarr"))

    # damage the newest: the rerun refuses it in one line and resumes from the one before
    data = [p for p in (newest / "runner").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data  # orbax's OCDBT data files
    for f in data:  # truncated, as by a full disk or a copy cut short
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    rerun = finish(tmp_path, "--keep-checkpoints")
    assert rerun.returncode == 0, rerun.stderr
    refused = [ln for ln in rerun.stderr.splitlines() if "refused" in ln]
    assert len(refused) == 1 and refused[0].startswith(f"checkpoint {newest}: refused, its ")
    k = int(older.name.removeprefix("update-"))
    assert f"resumed {the_id(clean_store)} at update {k}/{NUM_UPDATES}" in rerun.stderr
    assert_bit_identical(the_store(tmp_path), clean_store)
    assert folder.is_dir()  # --keep-checkpoints


def test_bad_checkpoint_interval_is_refused_in_one_line(tmp_path):
    env = {**os.environ, checkpoint.EVERY_ENV: "soon"}
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.train", *ARGV], cwd=tmp_path, capture_output=True,
        text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: ${checkpoint.EVERY_ENV}='soon': not a number of seconds >= 0; set it to e.g. "
        "300 (0 checkpoints after every chunk of updates) or unset it"
    )


# --- the checkpoint folder itself (no JAX) --------------------------------------------------------
RUNNER = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([7, 9], np.uint32)]


def metrics(update: int) -> list[np.ndarray]:
    return [np.full((1, 2, update), 0.5, np.float32)]


def sig(update: int) -> list:
    return checkpoint.signature(metrics(update))


def checkpoints(folder: Path, said: list[str], **fingerprint) -> checkpoint.Checkpoints:
    ckpt = checkpoint.Checkpoints(
        folder,
        every=0,
        fingerprint={"task_id": "t", "code": {"commit": "abc"}, **fingerprint},
        num_updates=10,
        say=said.append,
    )
    ckpt.segments = [checkpoint.segment_now(0)]
    return ckpt


def test_saves_keep_the_newest_two_and_read_back_exactly(tmp_path):
    said: list[str] = []
    ckpt = checkpoints(tmp_path / "t", said)
    for update in (2, 4, 6):
        ckpt.save(update, [x + update for x in RUNNER], metrics(update))
    assert [p.name for p in ckpt.paths()] == ["update-00000006", "update-00000004"]
    saved = ckpt.newest(checkpoint.signature(RUNNER), sig)
    assert saved is not None and saved.update == 6 and said == []
    for got, want in zip(saved.runner, RUNNER, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want + 6)
    assert np.array_equal(saved.metrics[0], metrics(6)[0])
    assert saved.segments[0]["end_update"] == 6 and saved.segments[0]["ended_at"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"code": {"commit": "def"}}, "made with other code"),
        ({"task_id": "u"}, "made with other task id"),
    ],
)
def test_incompatible_checkpoint_is_refused_in_one_line(tmp_path, change, reason):
    said: list[str] = []
    checkpoints(tmp_path / "t", said).save(4, RUNNER, metrics(4))
    ckpt = checkpoints(tmp_path / "t", said, **change)
    assert ckpt.newest(checkpoint.signature(RUNNER), sig) is None
    assert said == [
        f"checkpoint {tmp_path / 't' / 'update-00000004'}: refused, {reason}; not resuming from it"
    ]


def test_checkpoint_of_other_shapes_is_refused(tmp_path):
    said: list[str] = []
    ckpt = checkpoints(tmp_path / "t", said)
    ckpt.save(4, RUNNER, metrics(4))
    wider = [np.zeros((2, 4), np.float32), RUNNER[1]]
    assert ckpt.newest(checkpoint.signature(wider), sig) is None
    assert said[0].endswith("refused, its arrays have other shapes or dtypes; not resuming from it")


def test_damaged_and_truncated_checkpoints_fall_back_then_start_afresh(tmp_path):
    said: list[str] = []
    ckpt = checkpoints(tmp_path / "t", said)
    ckpt.save(2, RUNNER, metrics(2))
    ckpt.save(4, RUNNER, metrics(4))
    new, old = ckpt.paths()
    (new / "meta" / "metadata").write_text('{"format": 1, "fingerp')  # truncated record
    saved = ckpt.newest(checkpoint.signature(RUNNER), sig)
    assert saved is not None and saved.update == 2
    assert said == [f"checkpoint {new}: refused, its record is unreadable (JSONDecodeError); "
                    "not resuming from it"]  # fmt: skip
    for f in (p for p in old.rglob("*") if p.is_file() and p.parent.name == "d"):
        f.write_bytes(b"\0" * f.stat().st_size)  # same size, other bytes
    assert ckpt.newest(checkpoint.signature(RUNNER), sig) is None
    assert said[-1].startswith(f"checkpoint {old}: refused, its arrays ")


def test_temporaries_of_a_killed_save_are_removed_not_resumed(tmp_path):
    said: list[str] = []
    ckpt = checkpoints(tmp_path / "t", said)
    ckpt.save(2, RUNNER, metrics(2))
    leftover = tmp_path / "t" / "update-00000004.orbax-checkpoint-tmp-1234"
    leftover.mkdir()
    assert [p.name for p in ckpt.paths()] == ["update-00000002"]
    ckpt.remove_temporaries()
    assert not leftover.exists() and [p.name for p in ckpt.paths()] == ["update-00000002"]


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.delenv(checkpoint.EVERY_ENV, raising=False)
    assert checkpoint.default_every() == checkpoint.DEFAULT_EVERY_S
    monkeypatch.setenv(checkpoint.EVERY_ENV, "0")
    assert checkpoint.default_every() == 0.0
    monkeypatch.setenv(checkpoint.EVERY_ENV, "-5")
    with pytest.raises(checkpoint.UserError, match="not a number of seconds >= 0"):
        checkpoint.default_every()


def test_code_version_is_the_commit_and_the_state_of_src():
    import subprocess as sp

    here = Path(__file__).parent
    head = sp.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here)
    version = checkpoint.code_version()
    assert version["commit"] == head.stdout.strip()
    assert len(version["src_changes_sha256"]) == 64 and checkpoint.code_version() == version
