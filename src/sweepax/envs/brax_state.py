"""POBAX's state-observation MuJoCo ids ``hopper``, ``walker2d``, ``halfcheetah``, ``ant``.

Source: POBAX 0.0.1 (github.com/taodav/pobax), ``pobax/envs/__init__.py``: these ids are in its
``brax_envs``, and ``get_env`` builds an id of that list that does not end in ``pixels`` with
``load_brax_env``: brax's env of that name on the ``positional`` backend in POBAX's
``BraxGymnaxWrapper`` (1000-step ``EpisodeWrapper``, ``AutoResetWrapper``) and ``ClipAction``,
with no observation mask and no renderer (Madrona renders only the ``*_pixels`` ids), discounted
with the sweep's ``gamma``. POBAX's "observable" visual-MuJoCo studies
(``visual_mujoco/<body>/<body>_ppo_observable_madrona.py``) train memoryless PPO on ``ant`` and
``halfcheetah`` as the fully observed reference for ``ant_pixels`` / ``halfcheetah_pixels``.

So each id is POBAX's ``<Body>-F-v0`` (``brax_masked``, whose F mask keeps every feature) under
the name POBAX's visual studies use: brax's whole observation (Hopper 11, Walker2d 17,
HalfCheetah 17, Ant 27 features, Ant without contact forces), brax's reward, actions clipped to
[-1, 1], the same time limit and restart from the reset state.
"""

from __future__ import annotations

import re
import typing as tp

from sweepax.envs import brax_masked

BODIES: dict[str, str] = {  # POBAX's state id (brax's env name) -> brax_masked's body
    "hopper": "Hopper",
    "walker2d": "Walker",
    "halfcheetah": "HalfCheetah",
    "ant": "Ant",
}
IDS: tuple[str, ...] = tuple(BODIES)
PATTERN = "(" + "|".join(IDS) + ")"


class BraxState(brax_masked.BraxMasked):
    """POBAX's state-observation env ``env_id``: brax's whole observation (module doc)."""

    def __init__(self, env_id: str, max_steps_in_episode: int | None = None):
        if env_id not in BODIES:
            raise ValueError(f"unknown state-observation MuJoCo env {env_id}; known: {IDS}")
        super().__init__(BODIES[env_id], "F", max_steps_in_episode)
        self.env_id = env_id


def definition(env_id: str) -> dict[str, tp.Any] | None:
    """What one of ``IDS`` means, for a store's record (None for other ids); brax not imported."""
    if env_id not in BODIES:
        return None
    return {
        **brax_masked.definition(f"{BODIES[env_id]}-F-v0"),
        "source": "POBAX 0.0.1 get_env (brax_envs, no mask) and BraxGymnaxWrapper",
    }


# --- registry --------------------------------------------------------------------------------
def _build(match: re.Match, max_steps_in_episode: int | None = None) -> tuple[BraxState, tp.Any]:
    env = BraxState(match.group(0), max_steps_in_episode)
    return env, env.default_params


def families() -> list[tp.Any]:
    """The registry family of POBAX's state-observation MuJoCo ids (brax imported only when one
    is made)."""
    from sweepax.envs.registry import Family  # here: the registry imports this module

    return [
        Family(
            pattern=PATTERN,
            template="<hopper|walker2d|halfcheetah|ant> (POBAX's state-observation MuJoCo, brax)",
            examples=IDS,
            build=_build,
            guesses=lambda env_id: list(IDS),
        )
    ]
