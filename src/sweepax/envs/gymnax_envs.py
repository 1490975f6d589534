"""gymnax environments behind our env interface, and masked (partially observable) variants.

Source: the environments are gymnax's own (github.com/RobertTLange/gymnax, 1.0 step API:
``obs, state, reward, terminated, truncated, info``); the position / velocity masks follow the
``-F/-P/-V`` naming of POBAX (github.com/taodav/pobax) for classic control.

``GymnaxEnv`` wraps any gymnax environment so that it looks like our own envs (``TMaze``):

* observations are flat ``float32`` vectors of length ``obs_dim`` (MinAtar's (10, 10, C) grids,
  Catch's and DeepSea's boards, Pong's image are flattened; FrozenLake's scalar cell becomes (1,));
* rewards are ``float32`` (gymnax's UmbrellaChain and BernoulliBandit return int32);
* ``name`` is the registry id; ``info["final_observation"]`` is transformed like ``obs``;
* optionally only the features ``kept_indices`` of the flat observation are shown (the masked
  variants, e.g. ``CartPole-P-v0``); ``hidden_indices`` lists the dropped ones. Hidden features are
  removed, not zeroed, so ``obs_dim`` shrinks (as in POBAX).

Stepping and resetting delegate to the wrapped env's own ``step`` / ``reset`` (auto-reset included),
so env-specific overrides (DeepSea's episode counters) are kept.

Continuous action spaces are passed through as ``ContinuousBox``: a ``gymnax`` ``Box`` (PPO gives
it a Gaussian head) whose ``n`` (asked for by code that assumes discrete actions) raises
``ContinuousActionsError``, a one-line ``UserError``, instead of an AttributeError deep in setup.
"""

from __future__ import annotations

import typing as tp
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from sweepax.errors import UserError

# gymnax 1.0.1 registered ids we expose; MNISTBandit-bsuite downloads MNIST when it is built
# (no network on the cluster), so it is left out.
GYMNAX_IDS: tuple[str, ...] = (
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
    "Catch-bsuite",
    "DeepSea-bsuite",
    "MemoryChain-bsuite",
    "UmbrellaChain-bsuite",
    "DiscountingChain-bsuite",
    "SimpleBandit-bsuite",
    "FourRooms-misc",
    "MetaMaze-misc",
    "PointRobot-misc",
    "BernoulliBandit-misc",
    "GaussianBandit-misc",
    "Reacher-misc",
    "Swimmer-misc",
    "Pong-misc",
    "FrozenLake-misc",
)
EXCLUDED_IDS: dict[str, str] = {
    "MNISTBandit-bsuite": "it downloads MNIST when built (no network on these machines)",
}


class MaskSpec(tp.NamedTuple):
    """A masked family: the gymnax env it wraps and the kept flat-obs indices per variant."""

    base_id: str
    features: tuple[str, ...]  # names of the full observation's features, in order
    kept: dict[str, tuple[int, ...]]  # variant letter (F, P, V) -> kept indices


# CartPole-v1 obs: [x, x_dot, theta, theta_dot]; Pendulum-v1 obs: [cos th, sin th, th_dot].
MASKED: dict[str, MaskSpec] = {
    "CartPole": MaskSpec(
        "CartPole-v1",
        ("x", "x_dot", "theta", "theta_dot"),
        {"F": (0, 1, 2, 3), "P": (0, 2), "V": (1, 3)},
    ),
    "Pendulum": MaskSpec(
        "Pendulum-v1",
        ("cos_theta", "sin_theta", "theta_dot"),
        {"F": (0, 1, 2), "P": (0, 1), "V": (2,)},
    ),
}


class ContinuousActionsError(UserError, AttributeError):
    """A discrete-only consumer asked a continuous action space for its number of actions."""


CONTINUOUS_ACTIONS_MESSAGE = (
    "continuous (Box) actions have no number of actions; use the Box's shape (PPO: Gaussian head)"
)


class ContinuousBox(spaces.Box):
    """``spaces.Box`` for actions; ``n`` raises ``ContinuousActionsError`` (one line).

    Being an AttributeError too, ``hasattr(space, "n")`` stays False, as for a plain Box.
    """

    @property
    def n(self) -> int:
        raise ContinuousActionsError(f"{self._env_id}: {CONTINUOUS_ACTIONS_MESSAGE}")

    @classmethod
    def of(cls, box: spaces.Box, env_id: str) -> ContinuousBox:
        out = cls(box.low, box.high, box.shape, box.dtype)
        out._env_id = env_id
        return out


class FeatureMask:
    """Shows only ``kept_indices`` of a flat observation of ``full_obs_dim`` features (the -F/-P/-V
    variants); ``hidden_indices`` lists the dropped ones. Shared by ``GymnaxEnv`` and MJX envs."""

    env_id: str

    def mask_features(self, full_obs_dim: int, kept: tp.Sequence[int] | None = None) -> None:
        """Keep the features ``kept`` (all when None) of a flat observation of ``full_obs_dim``."""
        kept = tuple(range(full_obs_dim)) if kept is None else tuple(kept)
        if not kept or any(not 0 <= i < full_obs_dim for i in kept) or len(set(kept)) < len(kept):
            raise ValueError(f"bad kept_indices {kept} for obs of size {full_obs_dim}")
        self.full_obs_dim = full_obs_dim
        self.kept_indices = kept
        self.hidden_indices = tuple(i for i in range(full_obs_dim) if i not in kept)
        self._masked = kept != tuple(range(full_obs_dim))
        self._kept = np.asarray(kept, dtype=np.int32)

    def mask(self, flat: jax.Array) -> jax.Array:
        """The kept features of a flat observation, shape (obs_dim,)."""
        return flat[self._kept] if self._masked else flat

    @property
    def name(self) -> str:
        """Environment id, as in the registry."""
        return self.env_id

    @property
    def obs_dim(self) -> int:
        """Length of the (masked) observation vector."""
        return len(self.kept_indices)

    @property
    def num_actions(self) -> int:
        """Number of discrete actions (``ContinuousActionsError`` for continuous ones)."""
        return self.action_space(self.default_params).n


class GymnaxEnv(FeatureMask, environment.Environment):
    """A gymnax env with flat float32 observations (optionally masked) and float32 rewards."""

    def __init__(
        self,
        inner: environment.Environment,
        env_id: str,
        kept_indices: tp.Sequence[int] | None = None,
        inner_params: environment.EnvParams | None = None,
    ):
        super().__init__()
        self.inner = inner
        self.env_id = env_id
        params = inner.default_params if inner_params is None else inner_params
        obs_space = inner.observation_space(params)
        self.inner_obs_shape: tuple[int, ...] = tuple(int(d) for d in obs_space.shape)
        self.mask_features(int(np.prod(self.inner_obs_shape, dtype=int)), kept_indices)

    # --- observation transform -------------------------------------------------------------
    def full_obs(self, obs: tp.Any) -> jax.Array:
        """The wrapped env's observation, flattened to float32 (obs_dim before masking)."""
        return jnp.reshape(jnp.asarray(obs), (self.full_obs_dim,)).astype(jnp.float32)

    def transform_obs(self, obs: tp.Any) -> jax.Array:
        """Wrapped env's observation -> ours: flat float32, only ``kept_indices``."""
        return self.mask(self.full_obs(obs))

    # --- gymnax API ------------------------------------------------------------------------
    @property
    def default_params(self) -> environment.EnvParams:
        return self.inner.default_params

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: tp.Any,
        action: int | float | jax.Array,
        params: environment.EnvParams | None = None,
    ) -> tuple[jax.Array, tp.Any, jax.Array, jax.Array, jax.Array, dict[tp.Any, tp.Any]]:
        """The wrapped env's ``step`` (auto-reset included) with our obs and float32 reward."""
        if params is None:
            params = self.default_params
        obs, state, reward, terminated, truncated, info = self.inner.step(
            key, state, action, params
        )
        info = dict(info)
        if "final_observation" in info:
            info["final_observation"] = self.transform_obs(info["final_observation"])
        return (
            self.transform_obs(obs),
            state,
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated, bool),
            jnp.asarray(truncated, bool),
            info,
        )

    @partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: jax.Array, params: environment.EnvParams | None = None
    ) -> tuple[jax.Array, tp.Any]:
        """The wrapped env's ``reset`` with our obs."""
        if params is None:
            params = self.default_params
        obs, state = self.inner.reset(key, params)
        return self.transform_obs(obs), state

    def step_env(
        self, key: jax.Array, state: tp.Any, action: tp.Any, params: environment.EnvParams
    ) -> tuple[jax.Array, tp.Any, jax.Array, jax.Array, dict[tp.Any, tp.Any]]:
        """The wrapped env's ``step_env`` (no auto-reset) with our obs and float32 reward."""
        obs, state, reward, terminated, info = self.inner.step_env(key, state, action, params)
        return (
            self.transform_obs(obs),
            state,
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(terminated, bool),
            info,
        )

    def reset_env(self, key: jax.Array, params: environment.EnvParams) -> tuple[jax.Array, tp.Any]:
        obs, state = self.inner.reset_env(key, params)
        return self.transform_obs(obs), state

    def observe(self, key: jax.Array, state: tp.Any, action: tp.Any, params: tp.Any) -> jax.Array:
        return self.transform_obs(self.inner.observe(key, state, action, params))

    def get_obs(self, state: tp.Any, params: tp.Any = None, key: tp.Any = None) -> jax.Array:
        return self.transform_obs(self.inner.get_obs(state, params=params, key=key))

    def is_truncated(self, state: tp.Any, params: environment.EnvParams) -> jax.Array:
        return self.inner.is_truncated(state, params)

    def is_terminated(self, state: tp.Any, params: environment.EnvParams) -> jax.Array:
        return self.inner.is_terminated(state, params)

    @property
    def discrete_actions(self) -> bool:
        """True if the action space is ``spaces.Discrete``."""
        return isinstance(self.inner.action_space(self.inner.default_params), spaces.Discrete)

    def action_space(self, params: environment.EnvParams | None = None) -> tp.Any:
        """The wrapped env's action space (a ``ContinuousBox`` if continuous)."""
        space = self.inner.action_space(self.default_params if params is None else params)
        if isinstance(space, spaces.Box):
            return ContinuousBox.of(space, self.env_id)
        return space

    def observation_space(self, params: environment.EnvParams | None = None) -> spaces.Box:
        """Flat float32 Box of shape (obs_dim,); bounds of the wrapped space where it has them."""
        inner = self.inner.observation_space(self.default_params if params is None else params)
        if isinstance(inner, spaces.Box):
            low = np.broadcast_to(np.asarray(inner.low, np.float32), self.inner_obs_shape)
            high = np.broadcast_to(np.asarray(inner.high, np.float32), self.inner_obs_shape)
            low, high = low.reshape(-1)[self._kept], high.reshape(-1)[self._kept]
        elif isinstance(inner, spaces.Discrete):
            low = np.zeros((self.obs_dim,), np.float32)
            high = np.full((self.obs_dim,), inner.n - 1, np.float32)
        else:
            low = np.full((self.obs_dim,), -np.inf, np.float32)
            high = np.full((self.obs_dim,), np.inf, np.float32)
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), (self.obs_dim,), jnp.float32)

    def state_space(self, params: environment.EnvParams) -> tp.Any:
        return self.inner.state_space(params)


def _split_kwargs(
    params: environment.EnvParams, kwargs: dict[str, tp.Any]
) -> tuple[dict[str, tp.Any], dict[str, tp.Any]]:
    """(EnvParams overrides, constructor kwargs): names that are EnvParams fields go first."""
    fields = set(getattr(params, "__dataclass_fields__", {}))
    return (
        {k: v for k, v in kwargs.items() if k in fields},
        {k: v for k, v in kwargs.items() if k not in fields},
    )


def make_gymnax(
    gymnax_id: str,
    env_id: str | None = None,
    kept_indices: tp.Sequence[int] | None = None,
    **kwargs: tp.Any,
) -> tuple[GymnaxEnv, environment.EnvParams]:
    """``(GymnaxEnv, params)`` for a gymnax id; kwargs: EnvParams fields or constructor args.

    EnvParams fields (e.g. ``max_steps_in_episode``, MemoryChain's ``memory_length``) replace the
    defaults; other kwargs go to the gymnax constructor (e.g. MemoryChain's ``num_bits``).
    """
    import gymnax

    env_id = gymnax_id if env_id is None else env_id
    inner, params = gymnax.make(gymnax_id)
    overrides, ctor = _split_kwargs(params, kwargs)
    if ctor:
        try:
            inner, params = gymnax.make(gymnax_id, **ctor)
        except TypeError as err:
            raise UserError(f"env {env_id!r}: bad option(s) {sorted(ctor)}: {err}") from None
    if overrides:
        params = params.replace(**overrides)
    return GymnaxEnv(inner, env_id, kept_indices=kept_indices, inner_params=params), params


def make_masked(
    name: str, variant: str, **kwargs: tp.Any
) -> tuple[GymnaxEnv, environment.EnvParams]:
    """``<name>-<variant>-v0``, e.g. ``("CartPole", "P")`` -> CartPole-v1 with positions only."""
    spec = MASKED[name]
    return make_gymnax(
        spec.base_id, env_id=f"{name}-{variant}-v0", kept_indices=spec.kept[variant], **kwargs
    )


__all__ = [
    "CONTINUOUS_ACTIONS_MESSAGE",
    "EXCLUDED_IDS",
    "GYMNAX_IDS",
    "MASKED",
    "ContinuousActionsError",
    "ContinuousBox",
    "FeatureMask",
    "GymnaxEnv",
    "MaskSpec",
    "make_gymnax",
    "make_masked",
]
