"""Environment ids -> (gymnax env, params); one ``Family`` per parametrised id pattern.

Source: modelled on gymnax's ``registration.make`` (github.com/RobertTLange/gymnax).
To add envs, append a ``Family`` to ``FAMILIES`` (gymnax ids will come as one more family).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing as tp

from gymnax.environments import environment

from sweepax.envs.tmaze import TMaze
from sweepax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Family:
    """A set of env ids matching ``pattern``; ``build(match, **kwargs)`` returns (env, params)."""

    pattern: str  # full-match regex; groups are passed to ``build`` through the match
    template: str  # how the id is written in messages, e.g. "tmaze_<N>"
    examples: tuple[str, ...]  # concrete ids listed by ``known_envs`` and offered as suggestions
    build: tp.Callable[..., tuple[environment.Environment, environment.EnvParams]]
    validate: tp.Callable[[re.Match], str | None] = lambda m: None  # error text, or None if ok
    guesses: tp.Callable[[str], list[str]] = lambda env_id: []  # extra "did you mean" candidates


def _build_tmaze(
    match: re.Match, perfect_memory: bool = False, max_steps_in_episode: int | None = None
) -> tuple[TMaze, environment.EnvParams]:
    env = TMaze(hallway_length=int(match.group(1)), perfect_memory=perfect_memory)
    params = env.default_params
    if max_steps_in_episode is not None:
        params = params.replace(max_steps_in_episode=int(max_steps_in_episode))
    return env, params


def _validate_tmaze(match: re.Match) -> str | None:
    if int(match.group(1)) < 1:
        return f"T-Maze hallway length must be >= 1, got {int(match.group(1))}"
    return None


def _guess_tmaze(env_id: str) -> list[str]:
    digits = re.findall(r"\d+", env_id)
    return [f"tmaze_{int(d)}" for d in digits if "maze" in env_id.lower() and int(d) >= 1]


FAMILIES: list[Family] = [
    Family(
        pattern=r"tmaze_(\d+)",
        template="tmaze_<N>",
        examples=("tmaze_5", "tmaze_10"),
        build=_build_tmaze,
        validate=_validate_tmaze,
        guesses=_guess_tmaze,
    ),
]


def known_envs() -> list[str]:
    """Example ids of every registered family (each family accepts more ids than listed)."""
    return [ex for fam in FAMILIES for ex in fam.examples]


def _lookup(env_id: str) -> tuple[Family, re.Match]:
    for fam in FAMILIES:
        match = re.fullmatch(fam.pattern, env_id)
        if match is not None:
            problem = fam.validate(match)
            if problem is not None:
                raise UserError(f"bad env {env_id!r}: {problem}")
            return fam, match
    known = ", ".join(f"{fam.template} (e.g. {', '.join(fam.examples)})" for fam in FAMILIES)
    candidates = known_envs() + [g for fam in FAMILIES for g in fam.guesses(env_id)]
    close = difflib.get_close_matches(env_id, list(dict.fromkeys(candidates)), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"unknown env {env_id!r}; known: {known}{hint}")


def check(env_id: str) -> None:
    """Raise ``UserError`` (known ids and a close match) unless ``env_id`` is registered."""
    if not isinstance(env_id, str):
        raise UserError(f"env id must be a string, got {env_id!r}")
    _lookup(env_id)


def make(env_id: str, **kwargs: tp.Any) -> tuple[environment.Environment, environment.EnvParams]:
    """``(env, params)`` for ``env_id``; T-Maze kwargs: perfect_memory, max_steps_in_episode."""
    check(env_id)
    fam, match = _lookup(env_id)
    return fam.build(match, **kwargs)
