"""``nox -s reproduce -- results/<study>/<task_id>.zarr [--run]``: how a result was made; redo it.

Without ``--run`` it prints what the store's provenance says made it: the command, the image
(path and digest), the code (commit, branch, dirty flag and diff hash), the lock hash, device and
XLA flags. With ``--run`` it runs that command again into a scratch results folder (by default
``.reproduce-<task_id>.tmp-<host>-<pid>`` beside the store, which ``nox -s clean`` removes once
this process has ended; the store's own ``--results_dir`` is overridden, argparse keeps the last
value) and compares every data
variable and coordinate of the two stores bit for bit (``np.array_equal``, NaNs equal where both
are NaN): it prints ``identical`` and exits 0, or the variables that differ and exits 1.

When the store was made in an Apptainer image and that image and ``apptainer`` are here, the
re-run goes through ``apptainer exec --nv --bind <project>:<project> <image>`` like the SLURM
array script; ``--no-container`` runs it in this environment instead. The re-run gets the
recorded ``XLA_FLAGS``. Bit-identity is expected on the same platform, image and code: CPU XLA is
deterministic; on GPU the original run must have had ``XLA_FLAGS=--xla_gpu_deterministic_ops=true``
(see README, "Reproducing a result").
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import typing as tp
from pathlib import Path

import numpy as np

from sweepax import provenance
from sweepax.errors import UserError, cli
from sweepax.results import store

TRAIN_MODULE = "sweepax.train"


def load(path: str | os.PathLike) -> dict[str, tp.Any]:
    """The attrs of a complete store (checked in full against its completion record), or a
    one-line ``UserError`` saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such store; give results/<study>/<task_id>.zarr")
    if not (p / "zarr.json").is_file():
        hint = " (a study folder? give one <task_id>.zarr in it)" if p.is_dir() else ""
        raise UserError(f"{p}: not a Zarr store{hint}")
    state = store.store_state(p, full=True)
    if state.state == store.INCOMPLETE:
        raise UserError(f"{p}: not a complete result store (its writer did not finish); re-run it")
    if state.state == store.CORRUPT:
        raise UserError(f"{p}: corrupt store ({state.reason}); re-run its task")
    if not state.verified:
        print(f"warning: {p}: {state.reason}", file=sys.stderr)
    attrs = store.read_attrs(p)
    if not isinstance(attrs.get("provenance"), dict) or not attrs["provenance"].get("argv"):
        raise UserError(f"{p}: the store records no command (provenance.argv); cannot re-run it")
    return attrs


def train_args(attrs: tp.Mapping[str, tp.Any]) -> list[str]:
    """The recorded ``python -m sweepax.train`` arguments (``argv`` without the program name)."""
    return [str(a) for a in attrs["provenance"]["argv"][1:]]


def _yes_no(value: tp.Any) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def describe(path: Path, attrs: tp.Mapping[str, tp.Any]) -> str:
    """What made the store, one fact per line."""
    prov = attrs["provenance"]
    git = prov.get("git") or {}
    cont = prov.get("container") or {}
    here = provenance.git()
    here_commit = here.get("commit")
    here_lock = provenance.lock_hash()
    image = "none (run outside a container)"
    if cont.get("image") or cont.get("digest"):
        image = f"{cont.get('image') or '?'}  {cont.get('digest') or 'digest unknown'}"
        if cont.get("digest_source"):
            image += f" ({cont['digest_source']})"
    labels = cont.get("labels") or {}
    dirty = _yes_no(git.get("dirty"))
    if git.get("dirty"):
        dirty += (
            f" (diff sha256 {git.get('diff_sha256')}, {git.get('untracked_count', '?')} untracked "
            f"files sha256 {git.get('untracked_sha256')}; neither is stored)"
        )
    lines = [
        f"store:    {path} (task {attrs.get('task_id')} of study {attrs.get('study')}, "
        f"completed {attrs.get('completed_at')})",
        f"command:  {shlex.join(['python', '-m', TRAIN_MODULE, *train_args(attrs)])}",
        f"image:    {image}",
    ]
    if labels.get("sweepax.git.commit"):
        lines.append(
            f"          image built from commit {labels.get('sweepax.git.commit')}, "
            f"lock {labels.get('sweepax.lock.sha256')}"
        )
    lines += [
        f"commit:   {git.get('commit')} on {git.get('branch')}"
        + ("" if git.get("commit") in (None, here_commit) else f" (this checkout: {here_commit})"),
        f"dirty:    {dirty}",
        f"lock:     sha256 {prov.get('lock_sha256')}"
        + (
            "" if prov.get("lock_sha256") in (None, here_lock) else f" (this checkout: {here_lock})"
        ),
        f"device:   {prov.get('device')} x{prov.get('device_count')} ({prov.get('device_kind')}), "
        f"XLA_FLAGS={prov.get('xla_flags')!r}",
        f"host:     {prov.get('host')} (node {prov.get('node', prov.get('host'))}), "
        f"python {prov.get('python')}, jax {(prov.get('packages') or {}).get('jax')}",
        f"ran:      {prov.get('started_at')} .. {prov.get('finished_at')}, "
        f"compile {prov.get('compile_seconds')}s, run {prov.get('run_seconds')}s",
        f"spec:     {attrs.get('spec_path')} (sha256 {attrs.get('spec_hash')})",
    ]
    if code_changed(git, here):
        lines.append(
            "warning:  this checkout's code is not the code that made the store (commit, diff or "
            "untracked files differ): a re-run may differ for that reason alone"
        )
    return "\n".join(lines)


CODE_KEYS = ("commit", "diff_sha256", "untracked_sha256")


def code_changed(recorded: tp.Mapping[str, tp.Any], here: tp.Mapping[str, tp.Any]) -> bool:
    """Does this checkout differ from the recorded one (keys a record lacks are not compared)?"""
    return any(k in recorded and recorded.get(k) != here.get(k) for k in CODE_KEYS)


def container_prefix(
    attrs: tp.Mapping[str, tp.Any], project: Path, binds: tp.Sequence[str] = ()
) -> list[str] | None:
    """``apptainer exec --nv --bind <project>:<project> [--bind B ...] <image>`` for a store made
    in an Apptainer image, when the image and apptainer (or singularity) are here; else None."""
    cont = attrs["provenance"].get("container") or {}
    image = cont.get("image")
    if not image or cont.get("runtime", "apptainer") != "apptainer" or not Path(image).is_file():
        return None
    exe = shutil.which("apptainer") or shutil.which("singularity")
    if exe is None:
        return None
    prefix = [exe, "exec", "--nv", "--bind", f"{project}:{project}"]
    for bind in binds:
        prefix += ["--bind", bind]
    return [*prefix, str(image)]


def rerun_command(
    attrs: tp.Mapping[str, tp.Any], results_dir: Path, prefix: tp.Sequence[str] | None
) -> list[str]:
    """The recorded command with ``--results_dir <results_dir>`` appended (the last one wins)."""
    python = "python" if prefix else sys.executable
    tail = [python, "-m", TRAIN_MODULE, *train_args(attrs), "--results_dir", str(results_dir)]
    return [*(prefix or []), *tail]


def compare(a_path: Path, b_path: Path) -> tuple[list[str], list[str]]:
    """(identical, differing) variable names: every data variable and coordinate of ``a``."""
    a, b = store.open_zarr(a_path), store.open_zarr(b_path)
    same, differ = [], []
    for name in [*a.data_vars, *a.coords]:
        x = np.asarray(a[name].values)
        if name not in b.variables:
            differ.append(f"{name} (missing in the re-run)")
            continue
        y = np.asarray(b[name].values)
        if x.shape != y.shape or x.dtype != y.dtype:
            differ.append(f"{name} (shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype})")
            continue
        nan = x.dtype.kind in "fc"
        if np.array_equal(x, y, equal_nan=nan):
            same.append(name)
            continue
        detail = ""
        if nan or x.dtype.kind in "iu":
            mismatch = ~((x == y) | (np.isnan(x) & np.isnan(y)) if nan else (x == y))
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))[mismatch]
            finite = diff[np.isfinite(diff)]
            detail = f": {int(mismatch.sum())}/{x.size} values differ" + (
                f", max abs diff {finite.max():.3g}" if finite.size else ", NaN positions differ"
            )
        differ.append(name + detail)
    return same, differ


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nox -s reproduce --",
        description="Show how a result store was made; with --run, re-run it and compare.",
    )
    p.add_argument("store", help="results/<study>/<task_id>.zarr")
    p.add_argument("--run", action="store_true", help="re-run the command and compare bit for bit")
    p.add_argument(
        "--results_dir",
        "--results-dir",
        help="scratch results root for the re-run (default: a hidden folder beside the store, "
        "which `nox -s clean` removes once this process has ended)",
    )
    p.add_argument(
        "--no-container",
        action="store_true",
        help="re-run here even when the store was made in an Apptainer image that is available",
    )
    p.add_argument(
        "--bind", action="append", default=[], help="extra apptainer --bind for the re-run"
    )
    return p


@cli
def main(argv: tp.Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    path = Path(ns.store)
    attrs = load(path)
    print(describe(path, attrs), flush=True)
    if not ns.run:
        return 0

    scratch = Path(ns.results_dir or store.scratch_path(path, str(attrs.get("task_id")))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    study = attrs.get("study") or "default"
    if store.complete_stores(scratch / study):
        raise UserError(f"--results_dir {scratch}: already holds stores of study {study}")
    project = provenance.PROJECT_ROOT
    prefix = None if ns.no_container else container_prefix(attrs, project, ns.bind)
    cont = attrs["provenance"].get("container") or {}
    if cont.get("image") and prefix is None and not ns.no_container:
        print(
            f"warning: made in image {cont['image']}, which (or apptainer) is not here: re-running "
            "in this environment; bits may differ if the image's packages or platform do",
            file=sys.stderr,
        )
    cmd = rerun_command(attrs, scratch, prefix)
    env = dict(os.environ)
    recorded_flags = attrs["provenance"].get("xla_flags")
    if recorded_flags is not None and env.get("XLA_FLAGS", "") != recorded_flags:
        # the recorded XLA flags (e.g. --xla_gpu_deterministic_ops=true) are part of the run
        print(f"XLA_FLAGS={recorded_flags!r} (as recorded)", flush=True)
        env["XLA_FLAGS"] = recorded_flags
    if (project / "src" / "sweepax").is_dir():  # this checkout's code, also inside an image
        env["PYTHONPATH"] = os.pathsep.join(
            [str(project / "src"), *filter(None, [env.get("PYTHONPATH")])]
        )
    print(f"re-running into {scratch}:\n$ {shlex.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, env=env, cwd=project)
    if proc.returncode != 0:
        raise UserError(f"the re-run failed (exit {proc.returncode}); its output is above")
    new = store.complete_stores(scratch / study).get(str(attrs.get("task_id")))
    if new is None:
        raise UserError(f"the re-run wrote no store for task {attrs.get('task_id')} in {scratch}")
    same, differ = compare(path, new)
    new_prov = store.read_attrs(new)["provenance"]
    print(
        f"original: {attrs['provenance'].get('device')}, re-run: {new_prov.get('device')} "
        f"(store {new})"
    )
    if differ:
        print(f"DIFFERENT: {len(differ)} of {len(same) + len(differ)} variables differ:")
        for line in differ:
            print(f"  {line}")
        return 1
    print(f"identical: all {len(same)} variables bit for bit ({', '.join(sorted(same))})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    raise SystemExit(main())
