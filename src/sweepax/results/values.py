"""Plain values every results module shares: JSON-able attributes, coordinate arrays, NaN means."""

from __future__ import annotations

import math
import os
import typing as tp

import numpy as np


def jsonable(value: tp.Any) -> tp.Any:
    """``value`` as plain JSON types (numpy scalars, tuples, paths, non-finite floats)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def coord_values(values: tp.Sequence[tp.Any]) -> np.ndarray:
    """A coordinate array: float64 / int64 / bool, or object dtype for strings (no ``<U``)."""
    # float32 values (e.g. from a traced config) keep their shortest decimal form: 2.5e-4, not
    # 0.0002500000118743628, so labels match the sweep file and the manifest.
    values = [
        float(str(v))
        if isinstance(v, np.floating) and v.itemsize < 8
        else v.item()
        if isinstance(v, np.generic)
        else v
        for v in values
    ]
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values], dtype=object)


def nanmean(x: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (no warning) where nothing is finite."""
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    total = np.where(ok, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)
