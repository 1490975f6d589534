"""POBAX's two result pickles, made from the labelled tensor ``scores.zarr``.

POBAX's plotting scripts read ``parsed_hparam_scores[_discounted].pkl`` (written by its
``scripts/parse_batch_experiments.py``) and ``best_hyperparam_per_env_res[_discounted].pkl``
(``scripts/best_hyperparams_per_env.py``), https://github.com/taodav/pobax. ``parse`` writes
both parsed pickles beside ``scores.zarr``; ``best`` writes the best pickle of its
``--discounted`` choice beside ``best_<measure>.json``, with the winners that file names.

The layout is POBAX's per-env one (its best script, its README's "Parsing job results" and
``scripts/plotting/plot_best_hyperparams.py``, which reads ``scores[env]``): every array is a
plain numpy array, every other value a builtin, so ``pickle.load`` needs only numpy.

- ``envs``: the envs that have data, in the tensor's order.
- ``swept_hyperparams[env]``: ``{name: [value per config]}`` for every hyperparameter that labels
  results (swept ones and those fixed across the study), over that env's configs with data, in
  sorted coordinate order (the first hyperparameter varying slowest).
- ``scores[env]``: ``{"scores", "final_scores", "fpaths"}``. ``scores`` has dims ``dim_ref`` =
  ``[hparams, num_update, num_steps, seeds]``: the per-update return of every config, update and
  seed. sweepax records one value per update (the mean return of the episodes that ended in it,
  NaN where none did), so ``num_steps`` has size 1 and POBAX's means over ``num_steps`` change
  nothing. ``final_scores`` is the return of the evaluation rollout after training, shape
  ``(hparams, 1, 1, seeds)``. ``fpaths`` is the task store that provided each config (the one
  with most of its seeds). Missing (config, seed) cells are NaN.
- ``all_hyperparams``: the study's resolved arguments (one store's ``args``), with the
  hyperparameters that vary across the study as lists of their values, ``env`` a string when
  the study has one env (POBAX's ``all_hyperparams['total_steps']`` scales the step axis).
- ``discounted``: whether ``scores`` are discounted returns.

The best pickle holds ``hyperparams`` (``{env: {name: winning value}}``), ``scores``
(``{env: the winner's scores}``, or its ``final_scores`` when ``best`` ranked by ``final``),
``dim_ref`` (``[num_update, num_steps, seeds]``), ``envs``, ``all_hyperparams``, ``discounted``
and ``fpaths`` (``{env: {"fpath": [store per config], "max_idx": winner's config index}}``).
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import typing as tp
from pathlib import Path

import numpy as np
import xarray as xr

from sweepax import files
from sweepax.results.store import read_attrs

ENV = "env"
CONFIG_DIM = "hparams"
DIM_REF = [CONFIG_DIM, "num_update", "num_steps", "seeds"]
PROTOCOL = 4  # POBAX's parse script pickles with protocol 4


def parsed_name(discounted: bool) -> str:
    """``parsed_hparam_scores[_discounted].pkl``."""
    return "parsed_hparam_scores" + ("_discounted" if discounted else "") + ".pkl"


def best_name(discounted: bool) -> str:
    """``best_hyperparam_per_env_res[_discounted].pkl``."""
    return "best_hyperparam_per_env_res" + ("_discounted" if discounted else "") + ".pkl"


def _names(scores: xr.Dataset) -> tuple[list[str], dict[str, tp.Any]]:
    """``(varying, fixed)``: the hyperparameter dims of the tensor and the labels fixed across
    the study."""
    attrs = read_attrs(scores.attrs)
    varying = [d for d in attrs.get("hparams") or [] if d in scores.dims]
    return varying, dict(attrs.get("fixed") or {})


def _metrics(discounted: bool) -> tuple[str, str]:
    """The per-update and final variables POBAX's scores and final_scores come from."""
    if discounted:
        return "discounted_return", "final_discounted_return"
    return "episode_return", "final_return"


BLOCK_BYTES = 2**20  # POBAX's scores are made and written this much at a time


class EnvConfigs(tp.NamedTuple):
    """One env's configs with data: their indices along the hyperparameter dims, which rows of
    ``per_update`` they are, and their arrays (``(config, seed)``; ``per_update`` is every
    config's ``(config, seed, update)``, a view of the tensor)."""

    index: list[tuple[int, ...]]
    per_update: np.ndarray
    final: np.ndarray
    store_index: np.ndarray  # (config, seed), -1 where no store provides the cell
    rows: np.ndarray  # the configs with data, as rows of ``per_update``

    def scores_blocks(self) -> tp.Iterator[np.ndarray]:
        """POBAX's ``scores`` (dims ``DIM_REF``) of a few configs at a time, in order."""
        per_config = max(1, self.per_update[:1].nbytes)
        step = max(1, BLOCK_BYTES // per_config)
        for i in range(0, len(self.rows), step):
            block = self.per_update[self.rows[i : i + step]]  # (config, seed, update)
            yield np.ascontiguousarray(block.transpose(0, 2, 1)[:, :, None, :])

    def scores(self) -> np.ndarray:
        """POBAX's ``scores`` of every config with data, in one array."""
        shape = (len(self.rows), self.per_update.shape[2], 1, self.per_update.shape[1])
        out = np.empty(shape, self.per_update.dtype)
        done = 0
        for block in self.scores_blocks():
            out[done : done + len(block)] = block
            done += len(block)
        return out


def env_configs(scores: xr.Dataset, env: tp.Any, discounted: bool) -> EnvConfigs:
    """The configs of ``env`` that have any finite per-update or final value, in sorted
    coordinate order (the first hyperparameter dim varying slowest)."""
    varying, _ = _names(scores)
    per_update_var, final_var = _metrics(discounted)
    at = {ENV: env}
    curve = scores[per_update_var].sel(at).transpose(*varying, "seed", "update").values
    final = scores[final_var].sel(at).transpose(*varying, "seed").values
    owner = scores["store_index"].sel(at).transpose(*varying, "seed").values
    n_seeds, n_update = curve.shape[-2:]
    curve = curve.reshape(-1, n_seeds, n_update)
    final = final.reshape(-1, n_seeds)
    owner = owner.reshape(-1, n_seeds)
    has = np.isfinite(final).any(axis=1)
    step = max(1, BLOCK_BYTES // max(1, curve[:1].nbytes))
    for i in range(0, len(has), step):  # a block at a time: no mask as large as the curves
        has[i : i + step] |= np.isfinite(curve[i : i + step]).any(axis=(1, 2))
    shape = tuple(scores.sizes[d] for d in varying)
    rows = np.flatnonzero(has)
    index = [tuple(int(i) for i in np.unravel_index(r, shape)) for r in rows]
    return EnvConfigs(index, curve, final[rows], owner[rows], rows)


def swept_hyperparams(scores: xr.Dataset, configs: EnvConfigs) -> dict[str, list[tp.Any]]:
    """``{name: [value per config]}``: the swept values of each config, then the fixed ones."""
    varying, fixed = _names(scores)
    values = {d: scores[d].values.tolist() for d in varying}
    out = {d: [values[d][idx[k]] for idx in configs.index] for k, d in enumerate(varying)}
    out.update({name: [value] * len(configs.index) for name, value in fixed.items()})
    return out


def store_paths(scores: xr.Dataset, configs: EnvConfigs) -> list[str | None]:
    """The store that provided most seeds of each config (its path), None where none did."""
    stores = read_attrs(scores.attrs).get("stores") or []
    out: list[str | None] = []
    for owners in configs.store_index:
        have = collections.Counter(int(s) for s in owners if 0 <= s < len(stores))
        out.append(stores[have.most_common(1)[0][0]]["path"] if have else None)
    return out


def all_hyperparams(scores: xr.Dataset) -> dict[str, tp.Any]:
    """The study's resolved arguments: one store's ``args`` (when a store is readable), the
    labels from the tensor (a list of values where they vary), ``env``, ``seed`` and
    ``n_seeds``."""
    varying, fixed = _names(scores)
    out: dict[str, tp.Any] = {}
    for record in read_attrs(scores.attrs).get("stores") or []:
        try:
            out = dict(read_attrs(Path(record["path"])).get("args") or {})
            break
        except (OSError, ValueError, KeyError, TypeError):
            continue
    envs = scores[ENV].values.tolist()
    seeds = scores["seed"].values.tolist()
    out.update(fixed)
    out.update({d: scores[d].values.tolist() for d in varying})
    out.update({ENV: envs[0] if len(envs) == 1 else envs, "seed": seeds[0], "n_seeds": len(seeds)})
    return out


def parsed(scores: xr.Dataset, discounted: bool, streamed: bool = False) -> dict[str, tp.Any]:
    """POBAX's parsed result (``parsed_hparam_scores[_discounted].pkl``) of ``scores``;
    ``streamed``: each env's ``scores`` is a ``Streamed`` array for ``dump`` to write a block at
    a time, not a copy of the curves."""
    envs, by_env, swept = [], {}, {}
    for env in scores[ENV].values.tolist():
        configs = env_configs(scores, env, discounted)
        if not configs.index:
            continue
        envs.append(env)
        by_env[env] = {
            # (config, seed, update) -> (config, update, 1, seed): dims DIM_REF
            "scores": Streamed.of(configs) if streamed else configs.scores(),
            "final_scores": np.ascontiguousarray(configs.final[:, None, None, :]),
            "fpaths": store_paths(scores, configs),
        }
        swept[env] = swept_hyperparams(scores, configs)
    return {
        "envs": envs,
        "scores": by_env,
        "swept_hyperparams": swept,
        "all_hyperparams": all_hyperparams(scores),
        "dim_ref": list(DIM_REF),
        "discounted": bool(discounted),
    }


def winner_index(swept: dict[str, list[tp.Any]], hparams: tp.Mapping[str, tp.Any]) -> int:
    """The config index whose values are ``hparams`` (every name of ``swept``)."""
    n = len(next(iter(swept.values()), []))
    for i in range(n):
        if all(values[i] == hparams.get(name) for name, values in swept.items()):
            return i
    raise ValueError(f"no config with {dict(hparams)} among {n} configs")


def best(
    parsed_result: dict[str, tp.Any], record: dict[str, tp.Any], measure: str
) -> dict[str, tp.Any]:
    """POBAX's best result (``best_hyperparam_per_env_res[_discounted].pkl``): per env with a
    winner in ``record`` (what ``best_<measure>.json`` holds), its values, its scores (its final
    scores for ``measure`` ``final``, as POBAX's ``--measure final`` keeps) and its store."""
    key = "final_scores" if measure == "final" else "scores"
    hyperparams, max_scores, fpaths, envs = {}, {}, {}, []
    for env in parsed_result["envs"]:
        winner = record["envs"].get(str(env)) or {}
        if winner.get("hparams") is None:
            continue
        swept = parsed_result["swept_hyperparams"][env]
        i = winner_index(swept, winner["hparams"])
        envs.append(env)
        hyperparams[env] = {name: values[i] for name, values in swept.items()}
        max_scores[env] = np.array(parsed_result["scores"][env][key][i])
        fpaths[env] = {"fpath": parsed_result["scores"][env]["fpaths"], "max_idx": i}
    return {
        "hyperparams": hyperparams,
        "scores": max_scores,
        "dim_ref": parsed_result["dim_ref"][1:],
        "envs": envs,
        "all_hyperparams": parsed_result["all_hyperparams"],
        "discounted": parsed_result["discounted"],
        "fpaths": fpaths,
    }


class Streamed(tp.NamedTuple):
    """An array ``dump`` pickles as numpy pickles it (the same bytes), made and written a
    block of its leading axis at a time: no copy of it in memory."""

    shape: tuple[int, ...]
    dtype: np.dtype
    blocks: tp.Callable[[], tp.Iterator[np.ndarray]]  # C-ordered blocks, in order

    @classmethod
    def of(cls, configs: EnvConfigs) -> Streamed:
        """POBAX's ``scores`` of ``configs``."""
        n_seeds, n_update = configs.per_update.shape[1:]
        # the tensor's dtype object, as the copy numpy would pickle has (pickle remembers it)
        dtype = configs.per_update.dtype
        return cls((len(configs.rows), n_update, 1, n_seeds), dtype, configs.scores_blocks)

    def array(self) -> np.ndarray:
        """The whole array."""
        return np.concatenate([*self.blocks()]).reshape(self.shape)


class _Pickler(pickle.Pickler):
    """``pickle.Pickler`` that writes each ``Streamed`` array's bytes to the file block by
    block where numpy's would be. The pickler sends the data of an array (``bytes`` of at least
    a frame, 64 KiB) to ``write`` as one object, after the rest of the pickle up to the bytes'
    header. A stand-in of exactly a frame is pickled for each large ``Streamed`` array; ``write``
    holds back what comes before it, sets the array's true length in the header and sends the
    array's blocks in place of the stand-in. ``streamed`` counts the arrays so written."""

    FRAME = 64 * 1024

    def __init__(self, file: tp.BinaryIO):
        self._file = file
        self._waiting: dict[int, tuple[bytes, Streamed]] = {}
        self._held: tp.Any = None  # the last data written, until the next write
        self.streamed = 0
        super().__init__(self, protocol=PROTOCOL)

    def write(self, data: tp.Any) -> int:
        """The file's ``write``, one call behind, with a stand-in's blocks in place of it."""
        waiting = self._waiting.pop(id(data), None)
        if waiting is None or waiting[0] is not data:
            self.flush()
            self._held = data
            return len(data)
        held = memoryview(self._held or b"").cast("B")
        header = pickle.BINBYTES + struct.pack("<I", len(data))
        if held[len(held) - len(header) :] != header:  # not the pickler this expects
            self.flush()
            return self._file.write(data)
        streamed = waiting[1]
        nbytes = int(np.prod(streamed.shape)) * streamed.dtype.itemsize
        self._file.write(held[: len(held) - len(header)])
        self._held = None
        if nbytes > 0xFFFFFFFF:  # as pickle writes bytes of 4 GiB or more
            self._file.write(pickle.BINBYTES8 + struct.pack("<Q", nbytes))
        else:
            self._file.write(pickle.BINBYTES + struct.pack("<I", nbytes))
        for block in streamed.blocks():
            self._file.write(memoryview(block).cast("B"))
        self.streamed += 1
        return len(data)

    def flush(self) -> None:
        """Write what is held back."""
        if self._held is not None:
            self._file.write(self._held)
            self._held = None

    def reducer_override(self, obj: tp.Any) -> tp.Any:
        if not isinstance(obj, Streamed):
            return NotImplemented
        if int(np.prod(obj.shape)) * obj.dtype.itemsize < self.FRAME:
            return obj.array().__reduce__()
        stand_in = bytes(self.FRAME)
        self._waiting[id(stand_in)] = (stand_in, obj)
        # numpy's own reduction of a C-ordered array of this shape and dtype
        rebuild, args, state = np.empty(0, obj.dtype).__reduce__()
        return rebuild, args, (state[0], tuple(obj.shape), obj.dtype, False, stand_in)


def _materialised(value: tp.Any) -> tp.Any:
    """``value`` with every ``Streamed`` array made whole."""
    if isinstance(value, Streamed):
        return value.array()
    if isinstance(value, dict):
        return {k: _materialised(v) for k, v in value.items()}
    return value


def _count_streamed(value: tp.Any) -> int:
    """How many ``Streamed`` arrays of at least a frame ``value`` holds."""
    if isinstance(value, Streamed):
        return int(np.prod(value.shape)) * value.dtype.itemsize >= _Pickler.FRAME
    if isinstance(value, dict):
        return sum(_count_streamed(v) for v in value.values())
    return 0


def dump(value: tp.Any, f: tp.BinaryIO) -> None:
    """``pickle.dump(value, f, protocol=4)`` with each ``Streamed`` array pickled as numpy
    pickles the whole array, written a block at a time. Where the pickler did not hand a
    stand-in to ``write`` as ``_Pickler`` expects (another Python's pickler), the file is
    written again from whole arrays, so it never holds a stand-in."""
    start = f.tell()
    pickler = _Pickler(f)
    pickler.dump(value)
    pickler.flush()
    if pickler.streamed != _count_streamed(value):
        f.seek(start)
        f.truncate()
        pickle.dump(_materialised(value), f, protocol=PROTOCOL)


def _dump(path: Path, value: dict[str, tp.Any]) -> Path:
    """Pickle ``value`` into ``path`` atomically (``dump``), streamed to the file: no copy of
    the whole pickle in memory, nor of the arrays it holds (tens of MB for a large study)."""
    with files.building(path) as tmp:
        with open(tmp, "wb") as f:
            dump(value, f)
        os.replace(tmp, path)
    return Path(path)


def parsed_paths(study_dir: Path) -> list[Path]:
    """Where ``write_parsed`` writes: both parsed pickles of ``study_dir``."""
    return [Path(study_dir) / parsed_name(discounted) for discounted in (False, True)]


def write_parsed(study_dir: Path, scores: xr.Dataset) -> list[Path]:
    """Write both parsed pickles (undiscounted and discounted) into ``study_dir``."""
    paths = parsed_paths(study_dir)
    return [
        _dump(path, parsed(scores, d, streamed=True))
        for path, d in zip(paths, (False, True), strict=True)
    ]


def write_best(
    study_dir: Path, scores: xr.Dataset, record: dict[str, tp.Any], measure: str, discounted: bool
) -> Path:
    """Write the best pickle of ``record`` (``best``'s result for ``measure``) into
    ``study_dir``."""
    result = best(parsed(scores, discounted), record, measure)
    return _dump(Path(study_dir) / best_name(discounted), result)
