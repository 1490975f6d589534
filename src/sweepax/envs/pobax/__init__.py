"""POBAX's environments under POBAX's ids (github.com/taodav/pobax, PyPI ``pobax==0.0.1``).

Our own JAX implementations (gymnax 1.0 API, vmappable), each agreeing step for step with POBAX's:
classic ``.POMDP`` models (``classic``), ``simple_chain``, ``compass_world``, RockSample
(``rocksample``), Battleship (``battleship``), PocMan (``pocman``) and Fishing (``fishing``).
``families()`` returns their registry families. Every env has ``gamma``: the discount POBAX trains
it with in place of the agent's (the ``.POMDP`` file's), or None where POBAX uses the agent's.
"""

from __future__ import annotations

import re
import typing as tp


def _build_classic(
    match: re.Match, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.classic import ClassicPOMDP

    return _with_time_limit(ClassicPOMDP.from_id(match.group(0)), max_steps_in_episode)


def _with_time_limit(env: tp.Any, max_steps_in_episode: int | None) -> tuple[tp.Any, tp.Any]:
    params = env.default_params
    if max_steps_in_episode is not None:
        params = params.replace(max_steps_in_episode=int(max_steps_in_episode))
    return env, params


def _build_simple_chain(
    match: re.Match, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.simple_chain import SimpleChain

    return _with_time_limit(SimpleChain(n=10), max_steps_in_episode)


def _build_compass_world(
    match: re.Match, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.compass_world import CompassWorld

    return _with_time_limit(CompassWorld(size=8), max_steps_in_episode)


def _build_battleship(
    match: re.Match, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.battleship import Battleship

    return _with_time_limit(Battleship(size=int(match.group(1))), max_steps_in_episode)


def _build_pocman(
    match: re.Match, perfect_memory: bool = False, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.pocman import PocMan

    env = PocMan(perfect_memory=perfect_memory, aligned=match.group(1) is not None)
    return _with_time_limit(env, max_steps_in_episode)


def _build_fishing(
    match: re.Match, max_steps_in_episode: int | None = None
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.fishing import Fishing

    return _with_time_limit(Fishing.from_id(match.group(0)), max_steps_in_episode)


def _build_rocksample(
    match: re.Match,
    layout_seed: int = 0,
    perfect_memory: bool = False,
    max_steps_in_episode: int | None = None,
) -> tuple[tp.Any, tp.Any]:
    from sweepax.envs.pobax.rocksample import RockSample

    env = RockSample.from_id(match.group(0), int(layout_seed), perfect_memory=perfect_memory)
    return _with_time_limit(env, max_steps_in_episode)


# POBAX 0.0.1 fails on every Battleship run with perfect memory, before training: its
# BattleShipObservationWrapper cuts the action mask (rows x cols) off the last axis of
# PerfectMemoryWrapper's (rows, cols) board, sizing the observation (rows, cols - rows * cols).
BATTLESHIP_NO_PERFECT_MEMORY = (
    "POBAX 0.0.1 itself cannot run Battleship with perfect memory: its observation wrapper sizes "
    "the observation (rows, cols - rows * cols), (10, -90) for battleship_10, and fails with "
    "'TypeError: broadcast_in_dim shape must have every element be nonnegative, got "
    "(1, 4, 10, -90)'"
)


def _pocman_memory_note(match: re.Match) -> str:
    if match.group(1) is None:
        return (
            "pocman: perfect_memory draws POBAX 0.0.1's state grid, as its published results: "
            "pellets, pills and ghosts transposed (rows 19-20 dropped), eaten ones marking "
            "(0, 0); env 'pocman_aligned' draws it aligned"
        )
    return (
        "pocman_aligned: perfect_memory draws the state grid aligned (POBAX 0.0.1's 'pocman' "
        "draws pellets, pills and ghosts transposed); results differ from POBAX's"
    )


def families() -> list[tp.Any]:
    """The registry families of POBAX's envs (``sweepax.envs.registry.Family`` objects)."""
    from sweepax.envs.pobax import classic, rocksample
    from sweepax.envs.registry import Family  # here: the registry imports this package

    return [
        Family(
            pattern="|".join(re.escape(i) for i in classic.IDS),
            template="<POBAX .POMDP model>[, fully_observable_<model>]",
            examples=("tiger-alt-start", "4x3", "hallway", "fully_observable_tmaze5"),
            build=_build_classic,
            guesses=lambda env_id: list(classic.IDS),
        ),
        Family(
            pattern="simple_chain",
            template="simple_chain",
            examples=("simple_chain",),
            build=_build_simple_chain,
        ),
        Family(
            pattern="compass_world",
            template="compass_world",
            examples=("compass_world",),
            build=_build_compass_world,
        ),
        Family(
            pattern=rocksample.PATTERN,
            template="rocksample_<5_5|7_8|11_11|15_15>",
            examples=tuple(rocksample.CONFIGS),
            build=_build_rocksample,
            guesses=lambda env_id: list(rocksample.CONFIGS),
            perfect_memory=True,
        ),
        Family(
            pattern="battleship_(3|5|10)",
            template="battleship_<3|5|10>",
            examples=("battleship_3", "battleship_5", "battleship_10"),
            build=_build_battleship,
            guesses=lambda env_id: ["battleship_3", "battleship_5", "battleship_10"],
            no_perfect_memory=BATTLESHIP_NO_PERFECT_MEMORY,
        ),
        Family(
            pattern="pocman(_aligned)?",
            template="pocman[_aligned]",
            examples=("pocman", "pocman_aligned"),
            build=_build_pocman,
            perfect_memory=True,
            perfect_memory_note=_pocman_memory_note,
        ),
        Family(
            pattern=r"fishing_[0-8]",
            template="fishing_<0..8>",
            examples=("fishing_0", "fishing_8"),
            build=_build_fishing,
            guesses=lambda env_id: [f"fishing_{i}" for i in range(9)],
        ),
    ]
