"""Declaring hyperparameters once: static (closed over, one value per task) or swept (vmapped).

A training entry declares two dataclasses: a frozen ``Static`` one whose fields change shapes or
Python control flow, and a ``flax.struct`` ``Sweep`` one whose fields are traced scalars that gain a
leading ``config`` axis under ``jax.vmap``. Each field carries its help text and the values it
accepts (``choices``, or a range ``low``..``high``). The CLI, the sweep-file validation, the planner
and the labels of every result are all derived from these two declarations.
"""

from __future__ import annotations

import dataclasses
import math
import typing as tp


def hp(
    default: tp.Any,
    help: str,  # noqa: A002
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    choices: tuple | None = None,
    label: bool = True,
    in_id_at_default: bool = True,
) -> tp.Any:
    """A hyperparameter field: help text (``--help``, error messages) and the values it accepts.

    ``low`` / ``high``: inclusive bounds (``open_low``: ``low`` itself is refused, e.g. a learning
    rate > 0); ``choices``: the only values allowed; ``label=False``: run bookkeeping (seeds, the
    renderer), not a dimension of the results; ``in_id_at_default=False``: a field added after
    results were stored, left out of task ids while at its default (the behaviour before it
    existed) so those results keep their ids.
    """
    metadata = {"help": help, "low": low, "high": high, "open_low": open_low}
    metadata["in_id_at_default"] = in_id_at_default
    return dataclasses.field(
        default=default, metadata={**metadata, "choices": choices, "label": label}
    )


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
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    in_id_at_default: bool = True  # False: left out of task ids while at its default

    @property
    def accepts(self) -> str:
        """The declared range in words: ``at least 1``, ``greater than 0``, ``between 0 and 1``."""
        low = None if self.low is None else f"{self.low:g}"
        high = None if self.high is None else f"{self.high:g}"
        if low is None:
            return f"at most {high}" if high is not None else "any value"
        if high is None:
            return f"greater than {low}" if self.open_low else f"at least {low}"
        return (
            f"greater than {low} and at most {high}"
            if self.open_low
            else f"between {low} and {high}"
        )

    def problem(self, value: tp.Any) -> str | None:
        """Why ``value`` (already of the field's type) is not accepted, naming the key; or None."""
        where = f"key {self.name!r}: {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"{where} must be one of {', '.join(map(repr, self.choices))}"
        if self.type is bool or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            return f"{where} is not a finite number; give a number ({self.help})"
        too_low = self.low is not None and (
            value < self.low or (self.open_low and value == self.low)
        )
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            return f"{where} must be {self.accepts} ({self.help})"
        return None


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
        meta = f.metadata
        out.append(
            Field(
                name=f.name,
                type=_base_type(hints[f.name]),
                default=f.default,
                help=meta.get("help", ""),
                vmappable=vmappable,
                choices=meta.get("choices"),
                label=meta.get("label", True),
                low=meta.get("low"),
                high=meta.get("high"),
                open_low=meta.get("open_low", False),
                in_id_at_default=meta.get("in_id_at_default", True),
            )
        )
    return out
