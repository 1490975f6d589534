"""Confirmation sweep files: the configs ``best`` chose, re-run on fresh seeds.

A config picked on the seeds it is scored on is biased upward; the unbiased score comes from
running it again on seeds the sweep never used (Patterson et al., JMLR 2024). ``best --confirm``
writes ``<sweep file's folder>/best/<study>_best.py``: a sweep file in the usual format with the
study's entry, one ``args`` dict per chosen config and env (every value single, so each config
is its own job-array row), every other key as the study resolved it, ``n_seeds`` fresh seeds
starting at the sweep's largest seed + 1, and ``study_name: "<study>_best"``.
"""

from __future__ import annotations

import json
import textwrap
import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr

from sweepax import entries, files
from sweepax.errors import UserError
from sweepax.results.parse import ENV, SCORES
from sweepax.results.store import open_store
from sweepax.results.values import coord_values

N_SEEDS = 30
SEED_KEYS = ("seed", "n_seeds")
WIDTH = 99  # the header comment's lines, within the project's line length


class Pick(tp.NamedTuple):
    """One chosen config of one env and where its values were resolved."""

    env: str
    record: dict[str, tp.Any]  # its entry in the env's ``configs`` (hparams, p_best, score, ...)
    store: Path  # the task store that provided most of its seeds
    row: int  # its row along that store's ``config`` dim


def picks(scores: xr.Dataset, result: dict[str, tp.Any], top: int | None) -> list[Pick]:
    """Per env, the winner (``top`` None) or the ``top`` most probable configs of a
    ``best_record`` result, each with the store row that ran it."""
    from sweepax.results.best import source_row

    varying = list(result["hparams"])
    stores = scores.attrs.get("stores") or []
    out = []
    for env, r in result["envs"].items():
        if r["score"] is None:
            continue
        if top is None:
            chosen = [
                c for c in r["configs"] if c["hparams"] == {d: r["hparams"][d] for d in varying}
            ]
        else:
            chosen = r["configs"][:top]
        for config in chosen:
            where = {ENV: env, **config["hparams"]}
            store, row = source_row(
                scores["store_index"].sel(where).values, scores["config_index"].sel(where).values
            )
            out.append(Pick(str(env), config, Path(stores[store]["path"]), int(row)))
    return out


def resolved_values(store: Path, row: int) -> tuple[dict[str, tp.Any], dict[str, tp.Any]]:
    """``(attrs, values)``: a task store's attributes, and every hyperparameter of its config
    ``row`` as the task resolved it (its static values but the seeds, then its swept values)."""
    if not (Path(store) / "zarr.json").is_file():
        raise UserError(
            f"{store}: the task store that ran a chosen config is not here, and --confirm "
            "takes every value from it; fetch the stores (`nox -s sync -- HOST:PATH --raw`)"
        )
    ds = open_store(store)
    attrs = ds.attrs
    values = {k: v for k, v in (attrs.get("static") or {}).items() if k not in SEED_KEYS}
    for name in attrs.get("hparams_vmapped") or []:
        if name in ds.coords:
            values[name] = coord_values([ds[name].values[row]]).tolist()[0]
    return attrs, values


def sweep_file(study_dir: Path, attrs: dict[str, tp.Any]) -> Path:
    """The study's sweep file as its stores record it; a one-line ``UserError`` if it is gone."""
    spec = attrs.get("spec_path")
    if not spec:
        raise UserError(
            f"{study_dir}: its stores record no sweep file (spec_path); re-run the study with a "
            "current sweepax, or write the confirmation sweep by hand"
        )
    if not Path(spec).is_file():
        raise UserError(
            f"{spec}: the sweep file of {study_dir} is gone; restore it (e.g. `git checkout -- "
            f"{spec}`) and run best --confirm again from the project folder"
        )
    return Path(spec)


def target(spec: Path, study: str) -> Path:
    """``<sweep file's folder>/best/<study>_best.py``."""
    return spec.parent / "best" / f"{study}_best.py"


def _literal(value: tp.Any) -> str:
    """A Python literal for a JSON value, in the house format (double-quoted strings)."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _args_dict(values: dict[str, tp.Any], comment: str) -> list[str]:
    lines = [f"        {{  # {comment}"]
    lines += [f"            {json.dumps(k)}: {_literal(v)}," for k, v in values.items()]
    return lines + ["        },"]


def _num(x: tp.Any) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.4g}"


def confirmation_text(
    study_dir: Path,
    scores: xr.Dataset,
    result: dict[str, tp.Any],
    top: int | None = None,
    n_seeds: int = N_SEEDS,
    what: str = "",
) -> tuple[Path, str]:
    """``(path, source)`` of the confirmation sweep of one study's ``best_record`` result.

    ``what`` names the measure in the header comment (e.g. ``auc (episode_return)``).
    """
    chosen = picks(scores, result, top)
    if not chosen:
        raise UserError(f"{study_dir}: no env has a config with data; nothing to confirm")
    resolved = [resolved_values(p.store, p.row) for p in chosen]
    attrs = resolved[0][0]
    spec = sweep_file(study_dir, attrs)
    study = str(result.get("study") or study_dir.name)
    sweep_seeds = [int(s) for s in scores["seed"].values.tolist()]
    first = max(sweep_seeds) + 1
    name = f"{study}_best"
    how = "the winner" if top is None else f"the {top} most probable configs"
    title = f"Confirmation of {study}: {how} per env by {what}, on {n_seeds} fresh seeds."
    about = (
        f"Chosen by `best --confirm` from {study_dir / SCORES} (parsed "
        f"{scores.attrs.get('parsed_at')}; sweep seeds {min(sweep_seeds)}..{max(sweep_seeds)}) "
        f"at {files.utc_now()}. Seeds: the sweep's largest + 1 ({first}) onwards. Sweep file: "
        f"{spec} ({attrs.get('spec_hash')})."
    )
    header = [
        *textwrap.wrap(title, WIDTH, initial_indent='"""'),
        "",
        *textwrap.wrap(about, WIDTH, break_on_hyphens=False),
        '"""',
        "",
        "hparams = {",
        f'    "entry": "-m {entries.MODULE} {attrs.get("entry")}",',
        '    "args": [',
    ]
    body = []
    for pick, (_, values) in zip(chosen, resolved, strict=True):
        r = pick.record
        ci = r.get("ci") or [None, None]
        comment = (
            f"{pick.env}: P(best) {_num(r['p_best'])}, score {_num(r['score'])} "
            f"[{_num(ci[0])}, {_num(ci[1])}] over {r['n_seeds']} sweep seeds"
        )
        full = {"study_name": name, ENV: values.pop(ENV, pick.env), **values}
        body += _args_dict({**full, "seed": first, "n_seeds": n_seeds}, comment)
    return target(spec, study), "\n".join([*header, *body, "    ],", "}", ""])


def check_target(path: Path, force: bool) -> None:
    """Refuse to replace an existing confirmation file unless ``force``."""
    if path.exists() and not force:
        raise UserError(f"{path}: exists; pass --force to replace it")


def write(path: Path, text: str) -> Path:
    """Write the confirmation sweep atomically (its ``best/`` folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return files.write_text(path, text)
