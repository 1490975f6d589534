"""Declaring hyperparameters once: static (closed over, one value per task) or swept (vmapped).

A training entry declares two dataclasses: a frozen ``Static`` one whose fields change shapes or
Python control flow, and a ``flax.struct`` ``Sweep`` one whose fields are traced scalars that gain a
leading ``config`` axis under ``jax.vmap``. The CLI, the sweep-file validation, the planner and the
labels of every result are all derived from these two declarations.
"""

from __future__ import annotations

import dataclasses
import typing as tp


def hp(default: tp.Any, help: str, **metadata: tp.Any) -> tp.Any:  # noqa: A002
    """A hyperparameter field with its help text (shown by ``--help`` and in error messages)."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


@dataclasses.dataclass(frozen=True)
class Field:
    """One hyperparameter as the planner and CLI see it."""

    name: str
    type: type
    default: tp.Any
    help: str
    vmappable: bool
    choices: tuple | None = None
    label: bool = True  # False: run bookkeeping (seed, n_seeds), not a hyperparameter dim


def _base_type(annotation: tp.Any) -> type:
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str}[annotation]
    return annotation


def fields_of(cls: type, vmappable: bool) -> list[Field]:
    """The declared hyperparameters of a Static or Sweep dataclass, in declaration order."""
    hints = tp.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        out.append(
            Field(
                name=f.name,
                type=_base_type(hints[f.name]),
                default=f.default,
                help=f.metadata.get("help", ""),
                vmappable=vmappable,
                choices=f.metadata.get("choices"),
                label=f.metadata.get("label", True),
            )
        )
    return out
