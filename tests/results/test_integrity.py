"""A store is data only if every byte is there and verified: damage is named, never used."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from rich.console import Console

from sweepax import files
from sweepax.results import clean, store, verify
from sweepax.results.best import main as best_main
from sweepax.results.best import run_best
from sweepax.results.parse import main as parse_main
from sweepax.results.parse import parse_study

CHUNK = "episode_return/c/0/0/0"
FINAL_CHUNK = "final_return/c/0/0"


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _parse(study_dir, **kwargs):
    out = io.StringIO()
    ds = parse_study(study_dir, progress=False, console=Console(file=out, width=300), **kwargs)
    return ds, out.getvalue()


def first_chunk(path: Path, array: str) -> str:
    """The relative path of ``array``'s first chunk file."""
    chunks = sorted(p for p in (path / array / "c").rglob("*") if p.is_file())
    return chunks[0].relative_to(path).as_posix()


def delete_chunk(path: Path, rel: str = CHUNK) -> None:
    (path / rel).unlink()


def flip_bit(path: Path, rel: str = CHUNK) -> None:
    data = bytearray((path / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / rel).write_bytes(bytes(data))


def truncate(path: Path, rel: str = CHUNK, keep: int = 20) -> None:
    (path / rel).write_bytes((path / rel).read_bytes()[:keep])


def drop_record(path: Path) -> None:
    """Make the store look written by an older sweepax: no ``files`` and no ``root_sha256``."""
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["files"], meta["attributes"]["root_sha256"]
    (path / "zarr.json").write_text(json.dumps(meta))


def dead_pid() -> int:
    """The id of a process of this host that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def study(stores, tmp_path, monkeypatch):
    """Two planned and finished tasks, with the manifest in runs/."""
    monkeypatch.chdir(tmp_path)
    stores.make("h32", hidden_size=32)
    stores.make("h64", hidden_size=64)
    stores.write_manifest(tmp_path / "runs" / "tmaze_ppo.json")
    return stores


# --- the completion record ------------------------------------------------------------------------
def test_completion_record_lists_every_array_and_file_with_size_and_sha256(stores):
    path = stores.make("task_a")
    attrs = store.read_attrs(path)
    assert attrs["complete"] is True and attrs["completed_at"].endswith("+00:00")
    assert set(attrs["arrays"]) >= {"episode_return", "final_return", "lr", "seed", "env_steps"}
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert sorted(attrs["files"]) == [p for p in on_disk if p != "zarr.json"]
    assert CHUNK in attrs["files"] and "episode_return/zarr.json" in attrs["files"]
    chunk = path / CHUNK
    assert attrs["files"][CHUNK] == {
        "size": chunk.stat().st_size,
        "sha256": hashlib.sha256(chunk.read_bytes()).hexdigest(),
    }
    state = store.store_state(path)
    assert (
        state.verified and state.task_id == "task_a" and state.completed_at == attrs["completed_at"]
    )


@pytest.mark.parametrize(
    ("damage", "full", "cheap"),
    [
        (delete_chunk, f"chunk {CHUNK} missing", f"chunk {CHUNK} missing"),
        (truncate, f"chunk {CHUNK} size 20 != ", f"chunk {CHUNK} size 20 != "),
        (flip_bit, f"chunk {CHUNK} checksum mismatch", None),  # stat cannot see a flipped bit
    ],
)
def test_damage_is_named_by_the_full_and_the_cheap_check(stores, damage, full, cheap):
    path = stores.make("task_a")
    damage(path)
    state = store.store_state(path, full=True)
    assert state.state == "corrupt" and state.reason.startswith(full)
    quick = store.store_state(path, full=False)
    if cheap is None:
        assert quick.complete
    else:
        assert quick.state == "corrupt" and quick.reason.startswith(cheap)


def test_status_side_check_reruns_corrupt_stores_like_missing_ones(stores):
    good = stores.make("good")
    bad = stores.make("bad")
    truncate(bad)
    flipped = stores.make("flipped")
    flip_bit(flipped)
    assert store.complete_stores(stores.study_dir) == {"flipped": flipped, "good": good}
    assert not store.is_complete(bad)
    assert store.corrupt_stores(stores.study_dir) == {
        "bad": (bad, f"chunk {CHUNK} size 20 != {store.read_attrs(bad)['files'][CHUNK]['size']}")
    }
    assert set(store.corrupt_stores(stores.study_dir, full=True)) == {"bad", "flipped"}
    # a complete re-run of the task replaces it: the task is no longer listed as corrupt
    again = stores.make("bad", plan=False)
    assert store.complete_stores(stores.study_dir)["bad"] == again
    assert "bad" not in store.corrupt_stores(stores.study_dir)


def test_unreadable_or_missing_root_metadata_is_corrupt(stores):
    path = stores.make("task_a")
    (path / "zarr.json").write_text('{"zarr_format": 3, "attr')
    assert store.store_state(path) == store.StoreState(
        path, "corrupt", "zarr.json unreadable", "task_a"
    )
    (path / "zarr.json").unlink()
    assert store.store_state(path).reason == "zarr.json missing"


def test_an_edited_root_zarr_json_is_corrupt(stores):
    """Labels, provenance and the consolidated metadata live in the root zarr.json: changing a
    label (valid JSON, same size) is seen by the cheap check as well as the full one."""
    path = stores.make("task_a", hidden_size=32)
    assert store.read_attrs(path)["root_sha256"] == store.root_digest(
        json.loads((path / "zarr.json").read_text())
    )
    text = (path / "zarr.json").read_text()
    (path / "zarr.json").write_text(text.replace('"hidden_size": 32', '"hidden_size": 33'))
    for full in (True, False):
        state = store.store_state(path, full=full)
        assert (state.state, state.reason) == ("corrupt", "zarr.json checksum mismatch")
    (path / "zarr.json").write_text(text.replace('"node_type": "array"', '"node_type":"array" '))
    assert store.store_state(path).verified  # the same document, spaced differently


def test_a_store_without_marker_is_incomplete(stores):
    path = stores.make("task_a")
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["complete"]
    (path / "zarr.json").write_text(json.dumps(meta))
    state = store.store_state(path)
    assert state.state == "incomplete" and state.reason == store.NO_RECORD


def test_a_store_written_before_checksums_is_accepted_with_a_warning(study):
    old = study.study_dir / "h32.zarr"
    drop_record(old)
    state = store.store_state(old)
    assert state.complete and not state.verified and state.reason == store.UNVERIFIABLE
    ds, printed = _parse(study.study_dir)
    assert ds.attrs["unverified"] == [str(old)] and ds.attrs["corrupt"] == []
    assert not np.isnan(ds["final_return"].sel(hidden_size=32)).any()
    assert f"warning: 1 stores {store.UNVERIFIABLE}" in printed


@pytest.mark.parametrize("chunk", [FINAL_CHUNK, "lr/c/0"])  # data (fill) or labels (read)
def test_an_old_store_that_fails_to_decode_is_a_named_corrupt_store(study, chunk):
    old = study.study_dir / "h32.zarr"
    drop_record(old)
    truncate(old, chunk, keep=5)  # no record: only decoding can find it
    ds, printed = _parse(study.study_dir)
    (entry,) = ds.attrs["corrupt"]
    assert entry["path"] == str(old) and entry["task_id"] == "h32"
    assert entry["reason"].startswith("unreadable (") and entry["intact_copy"] is None
    assert [s["task_id"] for s in ds.attrs["stores"]] == ["h64"]
    assert ds.attrs["unverified"] == []  # read as nothing: corrupt only
    assert not np.isnan(ds["final_return"].sel(hidden_size=64)).any()
    assert np.isnan(ds["final_return"].sel(hidden_size=32)).all()  # planned by the manifest
    assert [m["task_id"] for m in ds.attrs["missing"]] == ["h32"] * 4
    assert ds.attrs["missing"][0]["reason"].startswith(f"corrupt store {old} (unreadable (")
    assert f"corrupt store: {old} (task h32): unreadable (" in printed


# --- parse ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (delete_chunk, f"chunk {CHUNK} missing"),
        (flip_bit, f"chunk {CHUNK} checksum mismatch"),
        (truncate, f"chunk {CHUNK} size 20 != "),
    ],
)
def test_parse_lists_corrupt_stores_and_their_cells_as_missing(study, damage, reason):
    bad = study.study_dir / "h64.zarr"
    damage(bad)
    ds, printed = _parse(study.study_dir)
    (entry,) = ds.attrs["corrupt"]
    assert entry["path"] == str(bad) and entry["task_id"] == "h64"
    assert entry["reason"].startswith(reason) and entry["intact_copy"] is None
    assert [s["task_id"] for s in ds.attrs["stores"]] == ["h32"]
    # never read: all of its cells are NaN, not the damaged chunk's fill values
    assert np.isnan(ds["episode_return"].sel(hidden_size=64)).all()
    assert np.isnan(ds["final_return"].sel(hidden_size=64)).all()
    missing = [m for m in ds.attrs["missing"] if m["task_id"] == "h64"]
    assert len(missing) == 4 and all(m["seeds"] == [0, 1, 2] for m in missing)
    assert missing[0]["reason"] == f"corrupt store {bad} ({entry['reason']})"
    assert f"corrupt store: {bad} (task h64): {reason}" in printed


def test_parse_uses_an_intact_copy_of_a_corrupt_task(study):
    rerun = study.make("h64", plan=False)
    delete_chunk(rerun)  # the newer one is damaged: the older one provides the cells
    ds, printed = _parse(study.study_dir)
    (entry,) = ds.attrs["corrupt"]
    assert entry["path"] == str(rerun) and entry["intact_copy"] == str(study.study_dir / "h64.zarr")
    assert ds.attrs["missing"] == []
    assert not np.isnan(ds["final_return"]).any()
    assert f"its cells come from {study.study_dir / 'h64.zarr'}" in printed


def test_parse_cli_with_only_corrupt_stores_is_a_one_line_error(study, capsys):
    for task in ("h32", "h64"):
        flip_bit(study.study_dir / f"{task}.zarr")
    assert parse_main([str(study.study_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {study.study_dir}: no intact task stores, 2 corrupt (")
    assert f"`nox -s clean -- {study.study_dir} --corrupt`" in err


def test_scores_zarr_carries_its_own_completion_record(study):
    _parse(study.study_dir)
    assert store.store_state(study.study_dir / "scores.zarr").verified


# --- best -----------------------------------------------------------------------------------------
def _winner_value(metric, labels, seed, update):
    """hidden 64 wins every measure by far; hidden 32 comes second."""
    return (10.0 if labels["hidden_size"] == 64 else 1.0) + 0.1 * seed + labels["lr"]


@pytest.fixture
def contest(stores, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores.make("h32", hidden_size=32, value=_winner_value)
    stores.make("h64", hidden_size=64, value=_winner_value)
    stores.write_manifest(tmp_path / "runs" / "tmaze_ppo.json")
    return stores


def _best_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweepax.results.best", "results/tmaze_ppo", "--no-progress", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_best_refuses_a_winner_that_damage_would_change_and_partial_says_so(contest, tmp_path):
    intact = _best_cli(tmp_path, "--measure", "final")
    assert intact.returncode == 0, intact.stderr
    record = json.loads((contest.study_dir / "best_final.json").read_text())
    assert record["envs"]["tmaze_5"]["hparams"]["hidden_size"] == 64
    assert record["partial"] is False
    before = (contest.study_dir / "best_final.json").read_bytes()

    winner = contest.study_dir / "h64.zarr"
    delete_chunk(winner, FINAL_CHUNK)  # without it hidden 32 would win
    refused = _best_cli(tmp_path, "--measure", "final")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(
        f"error: results/tmaze_ppo: 1 corrupt stores (results/tmaze_ppo/h64.zarr: chunk "
        f"{FINAL_CHUNK} missing), "
        "12 planned (config, seed) cells missing (tasks h64)"
    )
    assert "`nox -s run_local -- tmaze_ppo`" in refused.stderr
    assert "`nox -s submit -- tmaze_ppo --missing`" in refused.stderr
    assert "--partial" in refused.stderr
    assert (contest.study_dir / "best_final.json").read_bytes() == before  # nothing written

    partial = _best_cli(tmp_path, "--measure", "final", "--partial")
    assert partial.returncode == 0, partial.stderr
    assert "warning: results/tmaze_ppo: partial result, 1 corrupt stores" in partial.stdout
    record = json.loads((contest.study_dir / "best_final.json").read_text())
    assert record["partial"] is True
    assert [c["path"] for c in record["corrupt"]] == ["results/tmaze_ppo/h64.zarr"]
    assert {m["task_id"] for m in record["missing"]} == {"h64"}
    assert record["envs"]["tmaze_5"]["hparams"]["hidden_size"] == 32


def test_best_refuses_planned_cells_that_never_ran(contest, tmp_path, capsys):
    assert best_main(["results/tmaze_ppo", "--no-progress"]) == 0
    capsys.readouterr()
    contest.plan("h128", hidden_size=128)  # planned since the last parse: scores.zarr is stale
    contest.write_manifest(tmp_path / "runs" / "tmaze_ppo.json")
    assert best_main(["results/tmaze_ppo", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: results/tmaze_ppo: 12 planned (config, seed) cells missing (tasks h128); "
        "a winner without them may be wrong: re-run them"
    )
    assert "clean" not in err  # nothing corrupt to remove
    assert best_main(["results/tmaze_ppo", "--no-progress", "--partial"]) == 0
    assert json.loads((contest.study_dir / "best_auc.json").read_text())["partial"] is True


@pytest.mark.parametrize("damage", [flip_bit, shutil.rmtree])
def test_best_never_reuses_scores_made_before_a_store_was_damaged_or_removed(
    contest, tmp_path, damage
):
    dirs, results = [contest.study_dir], tmp_path / "results"
    run_best(dirs, "auc", False, results, console=_quiet(), progress=False)
    parsed_at = store.read_attrs(contest.study_dir / "scores.zarr")["parsed_at"]
    run_best(dirs, "auc", False, results, console=_quiet(), progress=False)
    assert store.read_attrs(contest.study_dir / "scores.zarr")["parsed_at"] == parsed_at  # reused

    h64 = contest.study_dir / "h64.zarr"
    damage(h64) if damage is shutil.rmtree else damage(h64, FINAL_CHUNK)
    (result,) = run_best(
        dirs, "final", False, results, console=_quiet(), progress=False, partial=True
    )
    scores = store.read_attrs(contest.study_dir / "scores.zarr")
    assert scores["parsed_at"] != parsed_at  # parsed again
    assert [s["task_id"] for s in scores["stores"]] == ["h32"]
    assert result["partial"] is True and result["envs"]["tmaze_5"]["hparams"]["hidden_size"] == 32


def test_best_parses_again_when_scores_zarr_itself_is_damaged(contest, tmp_path):
    dirs, results = [contest.study_dir], tmp_path / "results"
    run_best(dirs, "auc", False, results, console=_quiet(), progress=False)
    scores = contest.study_dir / "scores.zarr"
    truncate(scores, first_chunk(scores, "final_return"), keep=10)
    (result,) = run_best(dirs, "final", False, results, console=_quiet(), progress=False)
    assert store.store_state(scores).verified
    assert result["envs"]["tmaze_5"]["hparams"]["hidden_size"] == 64


def test_best_with_only_a_damaged_scores_zarr_is_a_one_line_error(contest, tmp_path, capsys):
    run_best(
        [contest.study_dir], "auc", False, tmp_path / "results", console=_quiet(), progress=False
    )
    for task in ("h32", "h64"):  # synced without --raw: only scores.zarr is here
        shutil.rmtree(contest.study_dir / f"{task}.zarr")
    assert best_main(["results/tmaze_ppo", "--no-progress"]) == 0  # intact: used as it is
    chunk = first_chunk(contest.study_dir / "scores.zarr", "final_return")
    flip_bit(contest.study_dir / "scores.zarr", chunk)
    assert best_main(["results/tmaze_ppo", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: results/tmaze_ppo/scores.zarr: corrupt (chunk {chunk} checksum "
        "mismatch) and no task stores here to parse again"
    )
    assert err.count("\n") == 1


# --- verify ---------------------------------------------------------------------------------------
def test_verify_names_each_damaged_store_and_exits_1(study, tmp_path, capsys):
    _parse(study.study_dir)
    deleted = study.make("deleted", hidden_size=128)
    delete_chunk(deleted)
    flipped = study.make("flipped", hidden_size=256)
    flip_bit(flipped)
    truncated = study.make("truncated", hidden_size=512)
    truncate(truncated)
    old = study.make("old", hidden_size=16)
    drop_record(old)
    assert verify.main([str(study.study_dir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    size = store.read_attrs(truncated)["files"][CHUNK]["size"]
    assert lines == [
        f"CORRUPT     {deleted}: chunk {CHUNK} missing",
        f"CORRUPT     {flipped}: chunk {CHUNK} checksum mismatch",
        f"ok          {study.study_dir / 'h32.zarr'}",
        f"ok          {study.study_dir / 'h64.zarr'}",
        f"unverified  {old}: {store.UNVERIFIABLE}",
        f"ok          {study.study_dir / 'scores.zarr'}",
        f"CORRUPT     {truncated}: chunk {CHUNK} size 20 != {size}",
        f"{study.study_dir}: 7 stores: 3 ok, 3 corrupt, 1 unverified",
    ]
    assert verify.main([str(study.study_dir / "h32.zarr")]) == 0
    assert capsys.readouterr().out.startswith(f"ok          {study.study_dir / 'h32.zarr'}\n")


def test_verify_cli_passes_an_intact_study_by_name(study, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.results.verify", "tmaze_ppo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("results/tmaze_ppo: 2 stores: 2 ok\n")


# --- leftovers and clean --------------------------------------------------------------------------
def test_leftovers_say_what_is_provably_dead(study):
    d = study.study_dir
    host = socket.gethostname()
    dead, live = dead_pid(), os.getpid()
    shutil.copytree(d / "h32.zarr", d / f".h128.zarr.tmp-{host}-{dead}")
    shutil.copytree(d / "h32.zarr", d / f".h256.zarr.tmp-{host}-{live}")
    (d / f".h512.zarr.tmp-elsewhere-{dead}").mkdir()
    (d / f".best_auc.json.tmp-{host}-{dead}").write_text("{")
    old_here = d / f".h16.zarr.tmp-{dead}"
    shutil.copytree(d / "h32.zarr", old_here)
    meta = json.loads((old_here / "zarr.json").read_text())
    meta["attributes"]["provenance"]["host"] = host
    (old_here / "zarr.json").write_text(json.dumps(meta))
    (d / f".h8.zarr.tmp-{dead}").mkdir()  # killed before it wrote any metadata
    (d / f".scores.zarr.old-{dead}").mkdir()  # replaced: scores.zarr is there
    _parse(d)
    (d / f".best_final.json.old-{dead}").write_text("{}")  # its replacement never arrived
    broken = study.make("broken", hidden_size=1024)
    (broken / "zarr.json").write_text("not json")
    scratch = store.scratch_path(d / "h32.zarr", "h32")
    scratch.mkdir()
    (d / ".checkpoints" / "h32").mkdir(parents=True)  # a resumable task's state: never touched

    found = {x.path.name: x for x in store.leftovers(d)}
    assert set(found) == {
        f".h128.zarr.tmp-{host}-{dead}",
        f".h256.zarr.tmp-{host}-{live}",
        f".h512.zarr.tmp-elsewhere-{dead}",
        f".best_auc.json.tmp-{host}-{dead}",
        old_here.name,
        f".h8.zarr.tmp-{dead}",
        f".scores.zarr.old-{dead}",
        f".best_final.json.old-{dead}",
        "broken.zarr",
        scratch.name,
    }
    removable = {name for name, x in found.items() if x.removable}
    assert removable == {
        f".h128.zarr.tmp-{host}-{dead}",
        f".best_auc.json.tmp-{host}-{dead}",
        old_here.name,
        f".scores.zarr.old-{dead}",
        "broken.zarr",
    }
    assert found[f".h128.zarr.tmp-{host}-{dead}"] == store.Leftover(
        d / f".h128.zarr.tmp-{host}-{dead}",
        "temporary store",
        f"pid {dead} on this host has ended",
        True,
    )
    assert found[f".h256.zarr.tmp-{host}-{live}"].reason == f"pid {live} on this host still runs"
    assert found[f".h512.zarr.tmp-elsewhere-{dead}"].reason.startswith("written on elsewhere")
    assert found[f".best_auc.json.tmp-{host}-{dead}"].kind == "temporary file"
    assert found[f".h8.zarr.tmp-{dead}"].reason.startswith("older temporary name without a host")
    assert found[scratch.name].kind == "reproduce scratch"
    assert not found[scratch.name].removable  # this process made it and still runs
    assert found["broken.zarr"].kind == "broken store"
    assert "the only copy of best_final.json" in found[f".best_final.json.old-{dead}"].reason


def test_clean_removes_only_what_is_dead_and_says_what_it_kept(study, tmp_path, capsys):
    d = study.study_dir
    host = socket.gethostname()
    dead, live = dead_pid(), os.getpid()
    gone = d / f".h128.zarr.tmp-{host}-{dead}"
    running = d / f".h256.zarr.tmp-{host}-{live}"
    remote = d / f".h512.zarr.tmp-node7-{dead}"
    for path in (gone, running, remote):
        shutil.copytree(d / "h32.zarr", path)
    flipped = d / "h64.zarr"
    flip_bit(flipped)
    assert clean.main([str(d), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {gone} (temporary store: pid {dead} on this host has ended)" in out
    assert gone.exists()

    assert clean.main([str(d)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"removed {gone} (temporary store: pid {dead} on this host has ended)",
        f"kept {running} (temporary store: pid {live} on this host still runs)",
        f"kept {remote} (temporary store: written on node7: cannot tell from here whether "
        f"pid {dead} still runs)",
    ]
    assert not gone.exists() and running.exists() and remote.exists() and flipped.exists()
    assert (d / "h32.zarr").exists()

    _parse(d)  # flipped is listed as corrupt, not read: scores.zarr stays
    assert clean.main([str(d), "--corrupt"]) == 0
    out = capsys.readouterr().out
    assert f"removed {flipped} (corrupt store: chunk {CHUNK} checksum mismatch)" in out
    assert not flipped.exists() and (d / "h32.zarr").exists() and (d / "scores.zarr").exists()
    assert store.complete_stores(d) == {"h32": d / "h32.zarr"}  # h64 re-runs like a missing task


def test_clean_removes_scores_parsed_from_a_store_it_removes(study, capsys):
    d = study.study_dir
    _parse(d)
    flip_bit(d / "h64.zarr")  # damaged after the parse: scores.zarr holds its old values
    (d / "h32.zarr" / "zarr.json").write_text("{")  # broken
    assert clean.main([str(d), "--corrupt"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"removed {d / 'h32.zarr'} (broken store: root zarr.json unreadable: not readable data)",
        f"removed {d / 'h64.zarr'} (corrupt store: chunk {CHUNK} checksum mismatch)",
        f"removed {d / 'scores.zarr'} (stale scores: parsed from h32.zarr)",
    ]
    assert sorted(p.name for p in d.iterdir()) == []


def test_clean_of_a_tidy_study_says_so(study, capsys):
    assert clean.main([str(study.study_dir)]) == 0
    assert capsys.readouterr().out == f"{study.study_dir}: nothing to clean\n"
    assert files.temp_owner(store.scratch_path(Path("r/s/t.zarr"), "t"))[0] == "reproduce-t"


def test_a_damaged_zarr_write_in_place_is_seen(stores):
    """Rewriting a value through zarr (not through sweepax) breaks the record."""
    path = stores.make("task_a")
    arr = zarr.open_group(path, mode="r+")["final_return"]
    arr[0, 0] = -1.0
    assert store.store_state(path).reason.startswith("chunk final_return/c/0/0 ")


def test_verify_lists_leftovers_after_the_stores(study, capsys):
    d = study.study_dir
    dead = dead_pid()
    tmp = d / f".h128.zarr.tmp-{socket.gethostname()}-{dead}"
    tmp.mkdir()
    assert verify.main([str(d)]) == 0  # a leftover is not a damaged store
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"leftover    {tmp}: temporary store, pid {dead} on this host has ended "
        "(`nox -s clean` removes it)",
        f"{d}: 2 stores: 2 ok; 1 leftovers (1 removable)",
    ]
