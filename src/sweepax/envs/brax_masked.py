"""POBAX's masked MuJoCo: brax's locomotion envs with POBAX 0.0.1's observation masks.

Source: POBAX 0.0.1 (github.com/taodav/pobax, ``pobax/envs/__init__.py``'s
``masked_gymnax_env_map`` and ``load_brax_env``; ``pobax/envs/wrappers/gymnax.py``'s
``BraxGymnaxWrapper``, ``ClipAction``, ``MaskObservationWrapper``) on brax 0.14.2, the brax
POBAX's environment resolves to.

Ids ``<Hopper|Walker|HalfCheetah|Ant>-<F|P|V>-v0`` (``IDS``): brax's ``hopper`` / ``walker2d`` /
``halfcheetah`` / ``ant`` on its ``positional`` backend (brax's own XMLs, frame skips, rewards,
healthy ranges and reset noise; Ant without contact forces), observations masked to POBAX's
``MASK_DIMS`` (the kept brax observation features, in order). As in POBAX:

* the episode ends after ``MAX_STEPS`` = 1000 env steps (brax's ``EpisodeWrapper``, action repeat
  1); a step that hits the limit is ``truncated`` (POBAX's ``done`` is ``terminated | truncated``);
* brax's ``AutoResetWrapper`` restarts a finished episode from the state its env was last
  ``reset`` to (not from a fresh random state): the step that ends an episode returns the
  reward and flags of that step and the first observation of the next episode;
* actions are clipped to [-1, 1] (``ClipAction``); rewards are brax's, unscaled;
* the discount is the sweep's ``gamma`` (POBAX passes its ``gamma`` argument, default 0.99).

These ids meant sweepax's own gymnasium-v5 MJX port until POBAX's meaning took them over; that
port is now ``<Hopper|Walker2d|HalfCheetah|Ant>-v5-<F|P|V>`` (``mjx_envs``), and
``CHANGED_MEANING`` says what changed for each id a sweep file may still name.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import re
import typing as tp
import warnings

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from sweepax.envs.gymnax_envs import ContinuousBox, FeatureMask
from sweepax.errors import UserError

MAX_STEPS = 1000  # POBAX's BraxGymnaxWrapper.max_steps_in_episode
BACKEND = "positional"  # POBAX's BraxGymnaxWrapper default
BRAX_NAMES: dict[str, str] = {  # POBAX's body name -> brax's env name
    "Hopper": "hopper",
    "Walker": "walker2d",
    "HalfCheetah": "halfcheetah",
    "Ant": "ant",
}
# POBAX 0.0.1's ``masked_gymnax_env_map``: brax observation features each variant keeps
MASK_DIMS: dict[tuple[str, str], tuple[int, ...]] = {
    ("Hopper", "F"): tuple(range(11)),
    ("Hopper", "P"): (0, 1, 2, 3, 4),
    ("Hopper", "V"): (5, 6, 7, 8, 9, 10),
    ("Walker", "F"): tuple(range(17)),
    ("Walker", "P"): (0, 1, 2, 3, 4, 5, 6, 7),
    ("Walker", "V"): (8, 9, 10, 11, 12, 13, 14, 15, 16),
    ("HalfCheetah", "F"): tuple(range(17)),
    ("HalfCheetah", "P"): (0, 1, 2, 3, 8, 9, 10, 11, 12),
    ("HalfCheetah", "V"): (4, 5, 6, 7, 13, 14, 15, 16),
    ("Ant", "F"): tuple(range(27)),
    ("Ant", "P"): tuple(range(13)),
    ("Ant", "V"): tuple(range(13, 27)),
}
FULL_OBS_DIM: dict[str, int] = {"Hopper": 11, "Walker": 17, "HalfCheetah": 17, "Ant": 27}
PATTERN = "(" + "|".join(BRAX_NAMES) + ")-(F|P|V)-v0"
IDS: tuple[str, ...] = tuple(f"{body}-{v}-v0" for body in BRAX_NAMES for v in "FPV")


def spans(indices: tp.Sequence[int]) -> str:
    """Sorted indices as runs: (0, 1, 2, 3, 8, 9) -> "0-3, 8-9"."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# Ids that named sweepax's gymnasium-v5 MJX port before they meant POBAX's env: what changed
CHANGED_MEANING: dict[str, str] = {
    f"{body}-{v}-v0": (
        f"{body}-{v}-v0 now means POBAX's env (brax {BRAX_NAMES[body]}, {BACKEND} backend, "
        f"features {spans(MASK_DIMS[body, v])} of brax's {FULL_OBS_DIM[body]}); the "
        f"gymnasium-v5 MJX env it named before is {body}-v5-{v}"
    )
    for body in ("Hopper", "HalfCheetah", "Ant")
    for v in "FPV"
}


@functools.cache
def import_brax() -> tuple[tp.Any, tp.Any, tp.Any]:
    """brax's ``envs``, ``EpisodeWrapper`` and ``AutoResetWrapper``, imported once.

    brax imports jaxopt, which warns on import that it is no longer maintained (brax's positional
    backend does not use it), and tries Warp, which this env does not use either.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "JAXopt is no longer maintained", DeprecationWarning)
        from brax import envs
        from brax.envs.wrappers.training import AutoResetWrapper, EpisodeWrapper

    return envs, EpisodeWrapper, AutoResetWrapper


@functools.cache
def load_brax_env(name: str) -> tp.Any:
    """brax's env ``name`` on POBAX's backend, loaded once per process (the -F/-P/-V variants of
    a body share it; brax envs are immutable).

    MuJoCo's warning that half_cheetah.xml's ``settotalmass`` is deprecated is dropped (brax's
    XML; the compiled masses are what brax uses) so loading writes no MUJOCO_LOG.TXT into the
    cwd; any other MuJoCo warning becomes a Python warning. brax's own warning that its systems
    are no longer maintained (it points to MJX) is dropped: POBAX's env is brax's.
    """
    import mujoco

    envs = import_brax()[0]
    messages: list[str] = []
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(messages.append)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Brax System, piplines and environments", UserWarning)
            env = envs.get_environment(env_name=name, backend=BACKEND)
    finally:
        mujoco.set_mju_user_warning(previous)
    for message in messages:
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo, loading brax's {name}: {message}", stacklevel=2)
    return env


@contextlib.contextmanager
def _brax_tracing() -> tp.Iterator[None]:
    """brax 0.14's pipelines read MJX 3.17 ``Data`` fields the old way, which MJX warns is
    deprecated on every trace; the values read are the same."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Accessing `.*` directly from `Data`", DeprecationWarning)
        yield


class BraxMasked(FeatureMask, environment.Environment):
    """One of POBAX's masked MuJoCo envs (module doc); ``state`` is brax's ``State``."""

    def __init__(self, body: str, variant: str, max_steps_in_episode: int | None = None):
        super().__init__()
        if (body, variant) not in MASK_DIMS:
            raise ValueError(f"unknown masked MuJoCo env {body}-{variant}-v0; known: {IDS}")
        self.body, self.variant = body, variant
        self.env_id = f"{body}-{variant}-v0"
        self.max_steps = MAX_STEPS if max_steps_in_episode is None else int(max_steps_in_episode)
        if self.max_steps < 1:
            raise UserError(f"env {self.env_id!r}: max_steps_in_episode must be >= 1")
        _, episode_wrapper, auto_reset_wrapper = import_brax()
        brax_env = load_brax_env(BRAX_NAMES[body])
        self.brax_env = auto_reset_wrapper(
            episode_wrapper(brax_env, episode_length=self.max_steps, action_repeat=1)
        )
        self.mask_features(int(brax_env.observation_size), MASK_DIMS[body, variant])
        self.action_dim = int(brax_env.action_size)

    @property
    def default_params(self) -> environment.EnvParams:
        """The time limit, for the record (the brax wrapper enforces its own, fixed at build)."""
        return environment.EnvParams(max_steps_in_episode=self.max_steps)

    @functools.partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: jax.Array, params: environment.EnvParams | None = None
    ) -> tuple[jax.Array, tp.Any]:
        """A new episode: (masked observation, brax ``State``)."""
        with _brax_tracing():
            state = self.brax_env.reset(key)
        return self.mask(state.obs), state

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: tp.Any,
        action: jax.Array,
        params: environment.EnvParams | None = None,
    ) -> tuple[jax.Array, tp.Any, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """brax's step (auto-reset included): obs, state, reward, terminated, truncated, info."""
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        with _brax_tracing():
            state = self.brax_env.step(state, action)
        truncated = state.info["truncation"] > 0.5  # the time limit and not also unhealthy
        terminated = (state.done > 0.5) & ~truncated
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return (
            self.mask(state.obs),
            state,
            state.reward.astype(jnp.float32),
            terminated,
            truncated,
            info,
        )

    @property
    def discrete_actions(self) -> bool:
        """Always False: joint torques."""
        return False

    def action_space(self, params: environment.EnvParams | None = None) -> spaces.Box:
        """Torques in [-1, 1], shape (action_dim,); ``n`` raises ``ContinuousActionsError``."""
        box = spaces.Box(-1.0, 1.0, (self.action_dim,), jnp.float32)
        return ContinuousBox.of(box, self.env_id)

    def observation_space(self, params: environment.EnvParams | None = None) -> spaces.Box:
        """Unbounded float32 Box of shape (obs_dim,)."""
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim,), jnp.float32)


def definition(env_id: str) -> dict[str, tp.Any] | None:
    """What one of ``IDS`` means, for a store's record (None for other ids); brax not imported."""
    match = re.fullmatch(PATTERN, env_id)
    if match is None:
        return None
    body, variant = match.groups()
    return {
        "library": "brax",
        "library_version": _version("brax"),
        "brax_env": BRAX_NAMES[body],
        "backend": BACKEND,
        "kept_indices": list(MASK_DIMS[body, variant]),
        "full_obs_dim": FULL_OBS_DIM[body],
        "max_steps_in_episode": MAX_STEPS,
        "source": "POBAX 0.0.1 masked_gymnax_env_map and BraxGymnaxWrapper",
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- registry --------------------------------------------------------------------------------
def _build(match: re.Match, max_steps_in_episode: int | None = None) -> tuple[BraxMasked, tp.Any]:
    env = BraxMasked(match.group(1), match.group(2), max_steps_in_episode)
    return env, env.default_params


def families() -> list[tp.Any]:
    """The registry family of POBAX's masked MuJoCo ids (brax imported only when one is made)."""
    from sweepax.envs.registry import Family  # here: the registry imports this module

    return [
        Family(
            pattern=PATTERN,
            template="<Hopper|Walker|HalfCheetah|Ant>-<F|P|V>-v0 (POBAX's masked MuJoCo, brax)",
            examples=("Hopper-P-v0", "Walker-V-v0", "HalfCheetah-P-v0", "Ant-F-v0"),
            build=_build,
            guesses=lambda env_id: list(IDS),
        )
    ]
