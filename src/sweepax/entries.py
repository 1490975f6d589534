"""Training entries: what ``-m sweepax.train <name>`` runs, and the hyperparameters it declares."""

from __future__ import annotations

import dataclasses
import importlib
import typing as tp

from sweepax.errors import UserError
from sweepax.hparams import Field, fields_of

MODULE = "sweepax.train"


@dataclasses.dataclass(frozen=True)
class Entry:
    """A training program: its static and swept hyperparameter classes and its ``make_sweep_fn``."""

    name: str
    static_cls: type
    sweep_cls: type
    sweep_fn: str  # "module:function" building the jitted (sweep[C], seeds[S]) -> metrics[C, S]

    @property
    def fields(self) -> dict[str, Field]:
        """Every hyperparameter, static first, in declaration order."""
        out = {f.name: f for f in fields_of(self.static_cls, vmappable=False)}
        out.update({f.name: f for f in fields_of(self.sweep_cls, vmappable=True)})
        return out

    @property
    def static_fields(self) -> list[Field]:
        """Static hyperparameters (one value per task)."""
        return fields_of(self.static_cls, vmappable=False)

    @property
    def sweep_fields(self) -> list[Field]:
        """Swept hyperparameters (vmapped along ``config``)."""
        return fields_of(self.sweep_cls, vmappable=True)

    @property
    def label_static(self) -> list[str]:
        """Static hyperparameters that label results (not seed bookkeeping)."""
        return [f.name for f in self.static_fields if f.label]

    def problems(
        self, static: tp.Mapping[str, tp.Any], configs: tp.Iterable[tp.Mapping[str, tp.Any]] = ()
    ) -> list[str]:
        """Why these values cannot train, one message per problem naming the key; [] if none.

        ``static``: every static value (checked with its combinations by ``static_cls.problems``);
        ``configs``: rows of swept values, each distinct value checked against its declaration.
        """
        out = self.static_cls(**static).problems()
        fields, seen = self.fields, set()
        for row in configs:
            for key, value in row.items():
                if (key, value) not in seen:
                    seen.add((key, value))
                    if problem := fields[key].problem(value):
                        out.append(problem)
        return out

    def make_sweep_fn(self, static: tp.Any, **kwargs: tp.Any) -> tp.Callable:
        """Import and build the jitted sweep function for ``static`` (values already checked)."""
        module, fn = self.sweep_fn.split(":")
        return getattr(importlib.import_module(module), fn)(static, **kwargs)


def _registry() -> dict[str, Entry]:
    from sweepax.agents import config

    return {
        "ppo": Entry("ppo", config.PPOStatic, config.PPOSweep, "sweepax.agents.ppo:make_sweep_fn"),
        "transformer": Entry(
            "transformer",
            config.TransformerStatic,
            config.PPOSweep,
            "sweepax.agents.transformer:make_sweep_fn",
        ),
    }


def get(name: str) -> Entry:
    """The entry called ``name`` (``ppo``, ``transformer``)."""
    entries = _registry()
    if name not in entries:
        raise UserError(f"unknown training entry {name!r}; known: {', '.join(sorted(entries))}")
    return entries[name]


def parse_entry(entry: str, where: str) -> Entry:
    """Parse a sweep file's ``entry`` string (``-m sweepax.train ppo``) into an ``Entry``."""
    parts = entry.split()
    if len(parts) == 3 and parts[0] == "-m" and parts[1] == MODULE:
        entries = _registry()
        if parts[2] in entries:
            return entries[parts[2]]
    known = " or ".join(f"'-m {MODULE} {name}'" for name in sorted(_registry()))
    raise UserError(
        f"{where}: key 'entry': {entry!r} is not a sweepax training program; use {known}"
    )


def names() -> list[str]:
    """Names of all registered entries."""
    return sorted(_registry())
