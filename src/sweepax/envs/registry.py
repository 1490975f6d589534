"""Environment ids -> (gymnax env, params); one ``Family`` per parametrised id pattern.

Source: modelled on gymnax's ``registration.make`` (github.com/RobertTLange/gymnax).
To add envs, append a ``Family`` to ``FAMILIES``. Families: ``tmaze_<N>``, every gymnax 1.0 id but
MNISTBandit-bsuite (``gymnax_envs.GYMNAX_IDS``), the masked ``<CartPole|Pendulum>-<F|P|V>-v0``, and
MuJoCo locomotion on MJX (``mjx_envs``): ``<Hopper|Walker2d|HalfCheetah|Ant>-v5`` and the masked
``<Hopper|Walker2d|HalfCheetah|Ant>-v5-<F|P|V>``, POBAX's masked MuJoCo on brax
``<Hopper|Walker|HalfCheetah|Ant>-<F|P|V>-v0`` (``brax_masked``), and visual MuJoCo (``pixels``):
``<hopper|walker2d|halfcheetah|ant>-pixels[-<N>]``; POBAX's state-observation MuJoCo
``hopper|walker2d|halfcheetah|ant`` (``brax_state``); POBAX's envs (``pobax``) and POBAX's Navix
mazes ``Navix-DMLab-Maze-[F-]<NN>-v0`` (``navix_mazes``, navix imported only when one is made)
and POBAX's Craftax ids ``craftax[_classic][_pixels]`` (``craftax_envs``, craftax imported only
when one is made).

Image families (``Family.renders``) take ``renderer`` ("jax", "warp" or "madrona"), also
POBAX's ``<hopper|walker2d|halfcheetah|ant>_pixels``; ``vmappable(env_id,
renderer)`` tells the planner, without building the env, whether configs and seeds can share one
vmapped program. Planning never asks whether a renderer is installed (tasks may run elsewhere);
``check(env_id, renderer)`` and ``make`` do (``renderers.check``), before importing mujoco.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing as tp

from gymnax.environments import environment

from sweepax.envs import (
    brax_masked,
    brax_state,
    craftax_envs,
    gymnax_envs,
    names,
    navix_mazes,
    pobax,
    renderers,
)
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
    perfect_memory: bool = False  # ``build`` takes ``perfect_memory`` (else make refuses it)
    no_perfect_memory: str = ""  # why this family refuses ``perfect_memory``, if more is known
    perfect_memory_note: tp.Callable[[re.Match], str | None] = lambda m: None  # what the plan says
    renders: bool = False  # image observations: ``build`` takes ``renderer=``
    vmappable: tp.Callable[[re.Match, str], bool] = lambda m, renderer: True  # (match, renderer)
    action_concat: bool = True  # the agent may append its previous action (else check refuses)


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


def _build_gymnax(
    match: re.Match, **kwargs: tp.Any
) -> tuple[gymnax_envs.GymnaxEnv, environment.EnvParams]:
    return gymnax_envs.make_gymnax(match.group(0), **kwargs)


def _validate_gymnax(match: re.Match) -> str | None:
    reason = gymnax_envs.EXCLUDED_IDS.get(match.group(0))
    return None if reason is None else f"gymnax's {match.group(0)} is not supported: {reason}"


def _build_masked(
    match: re.Match, **kwargs: tp.Any
) -> tuple[gymnax_envs.GymnaxEnv, environment.EnvParams]:
    return gymnax_envs.make_masked(match.group(1), match.group(2), **kwargs)


def _build_mjx(match: re.Match, **kwargs: tp.Any) -> tuple[environment.Environment, tp.Any]:
    from sweepax.envs import mjx_envs  # imports mujoco; only when an MJX id is made

    try:
        return mjx_envs.make_mjx(match.group(1), match.group(2) or None, **kwargs)
    except TypeError as err:
        raise UserError(f"env {match.group(0)!r}: bad option(s): {err}") from None


_MJX_IDS = tuple(f"{b}-v5" for b in names.MJX_BODIES) + tuple(
    f"{b}-v5-{v}" for b in names.MJX_BODIES for v in "FPV"
)
_PIXEL_IDS = tuple(f"{p}-pixels" for p in names.PIXEL_BODIES)


def _build_pixels(match: re.Match, **kwargs: tp.Any) -> tuple[environment.Environment, tp.Any]:
    from sweepax.envs import pixels  # imports mujoco; only when a pixel id is made

    size = None if match.group(2) is None else int(match.group(2))
    try:
        return pixels.make_pixels(match.group(1), size, **kwargs)
    except TypeError as err:
        raise UserError(f"env {match.group(0)!r}: bad option(s): {err}") from None


def _validate_pixels(match: re.Match) -> str | None:
    if match.group(2) is not None and not 8 <= int(match.group(2)) <= 512:
        return f"image size must be 8..512 pixels, got {int(match.group(2))}"
    return None


# POBAX's visual MuJoCo ids: ``<body>_pixels`` at POBAX's default ``image_size`` (32), RGB in
# [0, 1] with the Warp renderer; the same bodies as ``<body>-pixels-32``.
POBAX_PIXEL_SIZE = 32
_POBAX_PIXEL_IDS = tuple(f"{p}_pixels" for p in names.PIXEL_BODIES)


def _build_pobax_pixels(
    match: re.Match, **kwargs: tp.Any
) -> tuple[environment.Environment, tp.Any]:
    from sweepax.envs import pixels  # imports mujoco; only when a pixel id is made

    try:
        env, params = pixels.make_pixels(match.group(1), POBAX_PIXEL_SIZE, **kwargs)
    except TypeError as err:
        raise UserError(f"env {match.group(0)!r}: bad option(s): {err}") from None
    env.env_id = match.group(0)
    return env, params


def _pobax_pixel_families() -> list[Family]:
    """POBAX's ``<hopper|walker2d|halfcheetah|ant>_pixels`` (renderer choice as ``-pixels``)."""
    return [
        Family(
            pattern="(" + "|".join(names.PIXEL_BODIES) + ")_pixels",
            template="<hopper|walker2d|halfcheetah|ant>_pixels (POBAX, 32 x 32)",
            examples=_POBAX_PIXEL_IDS,
            build=_build_pobax_pixels,
            guesses=lambda env_id: list(_POBAX_PIXEL_IDS),
            renders=True,
            vmappable=lambda match, renderer: renderer != "madrona",
        )
    ]


_MASKED_IDS = tuple(
    f"{name}-{variant}-v0" for name, spec in gymnax_envs.MASKED.items() for variant in spec.kept
)

FAMILIES: list[Family] = [
    Family(
        pattern=r"tmaze_(\d+)",
        template="tmaze_<N>",
        examples=("tmaze_5", "tmaze_10"),
        build=_build_tmaze,
        validate=_validate_tmaze,
        guesses=_guess_tmaze,
        perfect_memory=True,
    ),
    Family(
        pattern="|".join(
            re.escape(i) for i in gymnax_envs.GYMNAX_IDS + tuple(gymnax_envs.EXCLUDED_IDS)
        ),
        template="<gymnax id>",
        examples=("CartPole-v1", "MemoryChain-bsuite", "Breakout-MinAtar", "Pendulum-v1"),
        build=_build_gymnax,
        validate=_validate_gymnax,
        guesses=lambda env_id: list(gymnax_envs.GYMNAX_IDS),
    ),
    Family(
        pattern="(" + "|".join(gymnax_envs.MASKED) + ")-(F|P|V)-v0",
        template="<CartPole|Pendulum>-<F|P|V>-v0",
        examples=("CartPole-P-v0", "CartPole-V-v0", "Pendulum-P-v0", "Pendulum-V-v0"),
        build=_build_masked,
        guesses=lambda env_id: list(_MASKED_IDS),
    ),
    Family(
        pattern="(" + "|".join(names.MJX_BODIES) + r")-v5(?:-(F|P|V))?",
        template="<Hopper|Walker2d|HalfCheetah|Ant>-v5[-<F|P|V>] (MJX, gymnasium v5)",
        examples=("Hopper-v5", "Hopper-v5-P", "HalfCheetah-v5-V", "Ant-v5"),
        build=_build_mjx,
        guesses=lambda env_id: list(_MJX_IDS),
    ),
    Family(
        pattern=names.PIXEL_ID.pattern,
        template="<hopper|walker2d|halfcheetah|ant>-pixels[-<N>] (MJX, N x N image, default 64)",
        examples=_PIXEL_IDS,
        build=_build_pixels,
        validate=_validate_pixels,
        guesses=lambda env_id: [*_PIXEL_IDS, *(f"{i}-32" for i in _PIXEL_IDS)],
        renders=True,
        vmappable=lambda match, renderer: renderer != "madrona",  # Madrona: no vmap
    ),
    *_pobax_pixel_families(),
    *pobax.families(),
    *navix_mazes.families(),
    *brax_masked.families(),
    *brax_state.families(),
    *craftax_envs.families(),
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


def check(
    env_id: str,
    renderer: str | None = None,
    perfect_memory: bool = False,
    action_concat: bool = False,
) -> None:
    """Raise ``UserError`` (known ids and a close match) unless ``env_id`` is registered; with
    ``renderer``, also unless that renderer applies to ``env_id`` and can run here; with
    ``perfect_memory``, also unless ``env_id`` defines it; with ``action_concat``, also unless
    ``env_id`` allows it."""
    if not isinstance(env_id, str):
        raise UserError(f"env id must be a string, got {env_id!r}")
    fam, _ = _lookup(env_id)
    if renderer is not None:
        _check_renderer(fam, env_id, renderer)
    if perfect_memory:
        _check_perfect_memory(fam, env_id)
    if action_concat and not fam.action_concat:
        raise UserError(f"env {env_id!r}: action_concat is not allowed for {fam.template}")


def _check_perfect_memory(fam: Family, env_id: str) -> None:
    if not fam.perfect_memory and fam.no_perfect_memory:
        raise UserError(f"env {env_id!r}: perfect_memory is not offered: {fam.no_perfect_memory}")
    if not fam.perfect_memory:
        which = " and ".join(f.template for f in FAMILIES if f.perfect_memory)
        raise UserError(f"env {env_id!r}: perfect_memory is only defined for {which}")


def perfect_memory_note(env_id: str) -> str | None:
    """What a plan should say about ``perfect_memory`` for ``env_id`` (e.g. which of two ways
    of drawing the state it uses), or None."""
    fam, match = _lookup(env_id)
    return fam.perfect_memory_note(match) if fam.perfect_memory else None


def _check_renderer(fam: Family, env_id: str, renderer: str) -> None:
    if fam.renders:
        renderers.check(env_id, renderer)
    elif renderer != "jax":
        raise UserError(
            f"env {env_id!r} has no image observations: renderer {renderer!r} applies only to "
            f"{' / '.join(f.template for f in FAMILIES if f.renders)}; use renderer='jax'"
        )


def make(
    env_id: str, renderer: str = "jax", **kwargs: tp.Any
) -> tuple[environment.Environment, environment.EnvParams]:
    """``(env, params)`` for ``env_id``.

    T-Maze kwargs: perfect_memory, max_steps_in_episode. gymnax and masked ids: EnvParams fields
    (max_steps_in_episode, MemoryChain's memory_length, ...) and gymnax constructor arguments
    (MemoryChain's num_bits, ...); perfect_memory must be False. MJX and pixel ids:
    max_steps_in_episode, solver_iterations, ls_iterations; perfect_memory must be False.
    POBAX's masked MuJoCo (brax) and Navix ids: max_steps_in_episode.
    ``renderer`` ("jax", "warp" or "madrona") applies to image ids only; other ids accept only
    "jax".
    A renderer that cannot run here is refused in one line before anything is built.
    """
    fam, match = _lookup(env_id)
    if kwargs.pop("perfect_memory", False):
        _check_perfect_memory(fam, env_id)
        kwargs["perfect_memory"] = True
    _check_renderer(fam, env_id, renderer)
    if fam.renders:
        return fam.build(match, renderer=renderer, **kwargs)
    return fam.build(match, **kwargs)


def changed_meaning(env_id: str) -> str | None:
    """What changed, in one line, when ``env_id`` once named a different env (else None).

    POBAX's masked MuJoCo ids (``Hopper-P-v0``, ``HalfCheetah-V-v0``, ``Ant-F-v0``, ...) named
    sweepax's gymnasium-v5 MJX port before they meant POBAX's brax envs.
    """
    return brax_masked.CHANGED_MEANING.get(env_id) if isinstance(env_id, str) else None


def definition(env_id: str) -> dict[str, tp.Any]:
    """What ``env_id`` means now, for a store's record, without building the env: its id and
    family (``template``), and for POBAX's masked MuJoCo ids the library, env and kept features.
    A store keeps it, so results stay readable after an id changes meaning."""
    fam, _ = _lookup(env_id)
    library = brax_masked.definition(env_id) or brax_state.definition(env_id) or {}
    return {"id": env_id, "family": fam.template, **library}


def renders(env_id: str) -> bool:
    """Whether ``env_id`` has image observations (takes a ``renderer``); False for unknown ids."""
    for fam in FAMILIES:
        if isinstance(env_id, str) and re.fullmatch(fam.pattern, env_id):
            return fam.renders
    return False


def default_renderer(platform: str | None) -> str:
    """The renderer an image env gets when a sweep file names none: MJX's Warp batch renderer
    for tasks that must run on a GPU (``platform: gpu``), the JAX ray caster elsewhere (on CPU
    it steps 6-25x faster at 1-16 envs than Warp; ``bench/warp_render.py``)."""
    return "warp" if platform == "gpu" else "jax"


def vmappable(env_id: str, renderer: str = "jax") -> bool:
    """Whether runs of ``env_id`` can be vmapped over configs and seeds (without building it).

    False for image ids with ``renderer="madrona"``; True for unknown ids (``check`` reports those).
    """
    for fam in FAMILIES:
        match = re.fullmatch(fam.pattern, env_id) if isinstance(env_id, str) else None
        if match is not None:
            return fam.vmappable(match, renderer)
    return True
