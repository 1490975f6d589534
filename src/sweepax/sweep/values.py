"""Markers a sweep file uses to say how a list of values is swept."""

from __future__ import annotations

import typing as tp


class vmap(tuple):  # noqa: N801  (reads as a function in sweep files: ``vmap([...])``)
    """Values swept INSIDE one program (``jax.vmap``); a plain list means separate tasks."""

    def __new__(cls, values: tp.Iterable[tp.Any]) -> vmap:
        values = tuple(values)
        if not values:
            raise ValueError("vmap() needs at least one value")
        return super().__new__(cls, values)

    def __repr__(self) -> str:
        return f"vmap({list(self)!r})"
