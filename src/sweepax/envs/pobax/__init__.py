"""POBAX's environments under POBAX's ids (github.com/taodav/pobax, PyPI ``pobax==0.0.1``).

Our own JAX implementations (gymnax 1.0 API, vmappable), each agreeing step for step with POBAX's:
classic ``.POMDP`` models (``classic``). ``families()`` returns their registry families; every
env exposes ``gamma``, the discount POBAX trains it with (POBAX replaces the agent's gamma by it).
"""

from __future__ import annotations

import re
import typing as tp


def _build_classic(
    match: re.Match, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.classic import ClassicPOMDP

    env = ClassicPOMDP.from_id(match.group(0))
    params = env.default_params
    if max_steps_in_episode is not None:
        params = params.replace(max_steps_in_episode=int(max_steps_in_episode))
    return env, params


def families() -> list[tp.Any]:
    """The registry families of POBAX's envs (``sweepax.envs.registry.Family`` objects)."""
    from sweepax.envs.pobax import classic
    from sweepax.envs.registry import Family  # here: the registry imports this package

    return [
        Family(
            pattern="|".join(re.escape(i) for i in classic.IDS),
            template="<POBAX .POMDP model>[, fully_observable_<model>]",
            examples=("tiger-alt-start", "4x3", "hallway", "fully_observable_tmaze5"),
            build=_build_classic,
            guesses=lambda env_id: list(classic.IDS),
        ),
    ]
