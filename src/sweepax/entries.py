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
    """A training program: its static and swept hyperparameter classes and its ``make_sweep_fn``.

    An entry from another code base (POBAX's ``-m pobax.algos.ppo``) runs one of sweepax's
    programs (``name``) with that code base's ``defaults``, so its sweep files keep their meaning;
    ``written`` is the entry string as the sweep file gives it.
    """

    name: str
    static_cls: type
    sweep_cls: type
    sweep_fn: str  # "module:function" building the jitted (sweep[C], seeds[S]) -> metrics[C, S]
    defaults: tuple[tuple[str, tp.Any], ...] = ()  # (key, value): overrides of declared defaults
    written: str = ""
    cannot_run: str = ""  # why the other code base cannot run its own files either (if so)

    @property
    def program(self) -> Entry:
        """The sweepax program this entry runs, with sweepax's own defaults."""
        return dataclasses.replace(self, defaults=(), written="", cannot_run="")

    def _with_defaults(self, fields: list[Field]) -> list[Field]:
        defaults = dict(self.defaults)
        return [
            dataclasses.replace(f, default=defaults[f.name]) if f.name in defaults else f
            for f in fields
        ]

    @property
    def fields(self) -> dict[str, Field]:
        """Every hyperparameter, static first, in declaration order."""
        return {f.name: f for f in self.static_fields + self.sweep_fields}

    @property
    def static_fields(self) -> list[Field]:
        """Static hyperparameters (one value per task)."""
        return self._with_defaults(fields_of(self.static_cls, vmappable=False))

    @property
    def sweep_fields(self) -> list[Field]:
        """Swept hyperparameters (vmapped along ``config``)."""
        return self._with_defaults(fields_of(self.sweep_cls, vmappable=True))

    @property
    def static_overrides(self) -> dict[str, tp.Any]:
        """The static defaults this entry overrides."""
        names = {f.name for f in fields_of(self.static_cls, vmappable=False)}
        return {key: value for key, value in self.defaults if key in names}

    @property
    def sweep_overrides(self) -> dict[str, tp.Any]:
        """The swept defaults this entry overrides."""
        names = {f.name for f in fields_of(self.sweep_cls, vmappable=True)}
        return {key: value for key, value in self.defaults if key in names}

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
        An entry whose own code base cannot run its files says so in each message.
        """
        out = self.static_cls(**static).problems()
        fields, seen = self.fields, set()
        for row in configs:
            for key, value in row.items():
                if (key, value) not in seen:
                    seen.add((key, value))
                    if problem := fields[key].problem(value):
                        out.append(problem)
        return [f"{p} ({self.cannot_run})" for p in out] if self.cannot_run else out

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


# POBAX (github taodav/pobax, pobax/config.py): its defaults where they differ from sweepax's.
_POBAX_PPO = (
    ("anneal_lr", True),
    ("total_steps", 1_500_000),
    ("seed", 2020),
    ("n_seeds", 5),
    ("lambda1", 0.5),
    ("num_eval_envs", 10),  # POBAX evaluates on 10 envs; sweepax on num_envs
)
# POBAX's embed_size is the layers' width (ours); its attention has its own width (qkv_features
# 256, 8 heads) where ours splits embed_size over num_heads: num_heads keeps sweepax's default so
# POBAX's small embed sizes (12) stay usable.
_POBAX_TRANSFORMER = (*_POBAX_PPO, ("embed_size", 256), ("memory_window", 128))
# POBAX's entry module -> (the sweepax program it runs, POBAX's defaults).
FOREIGN = {
    "pobax.algos.ppo": ("ppo", _POBAX_PPO),
    "pobax.algos.transformer_xl": ("transformer", _POBAX_TRANSFORMER),
}

# POBAX's entries that POBAX 0.0.1 itself cannot run -> what happens there (said with a refusal)
FOREIGN_CANNOT_RUN = {
    "pobax.algos.transformer_xl": (
        "POBAX 0.0.1 cannot run this file either: its transformer_xl stops before training on "
        "every file with 'TypeError: get_env() missing 1 required positional argument: "
        "'num_envs''"
    ),
}


def get(name: str) -> Entry:
    """The entry called ``name`` (``ppo``, ``transformer``)."""
    entries = _registry()
    if name not in entries:
        raise UserError(f"unknown training entry {name!r}; known: {', '.join(sorted(entries))}")
    return entries[name]


def parse_entry(entry: str, where: str) -> Entry:
    """Parse a sweep file's ``entry`` string (``-m sweepax.train ppo``, or POBAX's
    ``-m pobax.algos.ppo``) into an ``Entry``."""
    parts = entry.split() if isinstance(entry, str) else []
    entries = _registry()
    if len(parts) == 3 and parts[0] == "-m" and parts[1] == MODULE and parts[2] in entries:
        return entries[parts[2]]
    if len(parts) == 2 and parts[0] == "-m" and parts[1] in FOREIGN:
        name, defaults = FOREIGN[parts[1]]
        return dataclasses.replace(
            entries[name],
            defaults=defaults,
            written=" ".join(parts),
            cannot_run=FOREIGN_CANNOT_RUN.get(parts[1], ""),
        )
    known = " or ".join(
        [f"'-m {MODULE} {name}'" for name in sorted(entries)] + [f"'-m {m}'" for m in FOREIGN]
    )
    raise UserError(
        f"{where}: key 'entry': {entry!r} is not a sweepax training program; use {known}"
    )


def names() -> list[str]:
    """Names of all registered entries."""
    return sorted(_registry())
