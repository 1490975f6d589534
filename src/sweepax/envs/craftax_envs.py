"""POBAX's Craftax ids (``craftax[_classic][_pixels]``) on the craftax package, gymnax 1.0 API.

Source: POBAX 0.0.1 (github.com/taodav/pobax, ``pobax/envs/__init__.py`` ``craftax_envs`` /
``load_craftax_env``, ``pobax/envs/wrappers/gymnax.py`` ``CraftaxGymnaxWrapper`` /
``AutoResetEnvWrapper``, ``pobax/envs/wrappers/pixel.py`` ``PixelCraftaxVecEnvWrapper``),
run on craftax 1.6.1 (PyPI ``craftax``, github.com/MichaelTMatthews/Craftax): its world
generation, dynamics, rewards and renderers are used as they are; only the auto-reset and
POBAX's pixel observation are ours.

* Ids -> craftax envs: ``craftax`` Craftax-Symbolic-v1, ``craftax_pixels`` Craftax-Pixels-v1,
  ``craftax_classic`` Craftax-Classic-Symbolic-v1, ``craftax_classic_pixels``
  Craftax-Classic-Pixels-v1; craftax's default ``EnvParams`` (time limit ``max_timesteps``
  100,000 steps for Craftax, 10,000 for Classic; ``max_steps_in_episode`` overrides it).
* Actions: craftax's (43 for Craftax, 17 for Classic). Reward: craftax's (achievements unlocked,
  plus Craftax's health change / 10). No discount of its own: runs use the sweep's ``gamma``
  (POBAX's default 0.99), as POBAX does.
* Episodes end as craftax says (``is_terminal``): the agent dies (or, Classic, stands in lava;
  Craftax, beats the final boss) -> ``terminated``; the time limit -> ``truncated``. The step
  that ends an episode returns the next episode's first observation; POBAX's auto-reset draws
  the step's and the reset's keys as ``split(key)[1]`` and ``split(split(key)[0])[1]`` (not
  craftax's own auto-reset), so the same keys give POBAX's worlds.
* Symbolic observation: craftax's flat float32 vector (8268 Craftax, 1345 Classic).
* Pixel observation (``obs_shape`` (27, W, 3), W = 110 Craftax, 63 Classic): craftax's agent view
  (``pixels / 255``) times 255 (POBAX's PPO asks for unnormalised images), cut to its top 27
  pixel rows, as POBAX's pixel wrapper cuts it (to drop the inventory: POBAX declares a 27 x 33
  image, a 9 x 11 block view at 3 pixels per block; craftax 1.6 draws 10 pixels per block for
  Craftax and 7 for Classic, so the cut keeps the top 27 rows of the map view at full width).
  POBAX's ``image_size`` does not apply to Craftax (its wrapper has no size).
* ``action_concat`` is refused for these ids (POBAX ignores it for Craftax).

Pixel ids render with craftax's textures, which craftax prepares on first use and caches in its
package folder (about a minute for Classic, a few for Craftax, once per install); where that
folder is read-only and holds no cache, making a pixel id is refused in one line.
"""

from __future__ import annotations

import functools
import re
import typing as tp
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from sweepax.errors import UserError

# POBAX's ids -> craftax's env names (pobax/envs/__init__.py ``craftax_envs``)
CRAFTAX_NAMES: dict[str, str] = {
    "craftax": "Craftax-Symbolic-v1",
    "craftax_pixels": "Craftax-Pixels-v1",
    "craftax_classic": "Craftax-Classic-Symbolic-v1",
    "craftax_classic_pixels": "Craftax-Classic-Pixels-v1",
}
IDS: tuple[str, ...] = tuple(CRAFTAX_NAMES)
_ID_OF = {name: env_id for env_id, name in CRAFTAX_NAMES.items()}
PATTERN = "|".join(IDS)
PIXEL_ROWS = 27  # POBAX keeps the top 27 pixel rows of craftax's image
PIXEL_SCALE = 255.0  # POBAX's PPO undoes craftax's / 255 (``normalize_image=False``)
NO_ACTION_CONCAT = (
    "POBAX does not concatenate actions for Craftax (its get_env ignores action_concat there)"
)


@functools.cache
def _craftax_env(name: str) -> tp.Any:
    """craftax's env (without its auto-reset), built once per name; imports craftax."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        from craftax.craftax_env import make_craftax_env_from_name

        try:
            return make_craftax_env_from_name(name, auto_reset=False)
        except OSError as err:  # the texture cache beside a read-only install (an image)
            raise UserError(
                f"{name}: craftax cannot write its texture cache ({err.strerror}: "
                f"{err.filename}); prepare it where craftax is installed once, with write "
                f"access: python -c \"from sweepax.envs import make; make('{_ID_OF[name]}')\""
            ) from None


def pobax_pixels(image: jax.Array) -> jax.Array:
    """POBAX's pixel observation from craftax's (H, W, 3) image in [0, 1]: x 255, top 27 rows."""
    return (image * PIXEL_SCALE)[:PIXEL_ROWS]


class CraftaxEnv(environment.Environment):
    """One of POBAX's Craftax ids: craftax's own game, POBAX's auto-reset and observations."""

    def __init__(self, env_id: str, max_steps: int | None = None):
        super().__init__()
        self.env_id = env_id
        self.pixels = env_id.endswith("_pixels")
        self.craftax = _craftax_env(CRAFTAX_NAMES[env_id])
        params = self.craftax.default_params
        if max_steps is not None:
            if int(max_steps) < 1:
                raise UserError(f"env {env_id!r}: max_steps_in_episode must be >= 1")
            params = params.replace(max_timesteps=int(max_steps))
        self._params = params
        shape = tuple(int(n) for n in self.craftax.observation_space(params).shape)
        self.obs_shape: tuple[int, int, int] | None = (
            (PIXEL_ROWS, shape[1], shape[2]) if self.pixels else None
        )
        self._obs_dim = int(np.prod(self.obs_shape if self.pixels else shape))

    def _observe(self, obs: jax.Array) -> jax.Array:
        """craftax's observation -> ours, flat float32 (module doc)."""
        if self.pixels:
            obs = pobax_pixels(obs)
        return obs.reshape(-1).astype(jnp.float32)

    # --- gymnax API ------------------------------------------------------------------------
    @property
    def default_params(self) -> tp.Any:
        """craftax's ``EnvParams`` (``max_timesteps``: the time limit)."""
        return self._params

    @functools.partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: tp.Any = None) -> tuple[jax.Array, tp.Any]:
        """A new world: (flat observation, craftax ``EnvState``)."""
        params = self._params if params is None else params
        obs, state = self.craftax.reset_env(key, params)
        return self._observe(obs), state

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: jax.Array, state: tp.Any, action: int | jax.Array, params: tp.Any = None
    ) -> tuple[jax.Array, tp.Any, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """craftax's step, then POBAX's auto-reset: obs, state, reward, terminated, truncated,
        info (``discount``: 0 where the episode ended)."""
        params = self._params if params is None else params
        key, key_step = jax.random.split(key)
        obs_st, state_st, reward, done, _ = self.craftax.step_env(key_step, state, action, params)
        _, key_reset = jax.random.split(key)
        obs_re, state_re = self.craftax.reset_env(key_reset, params)
        state = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), state_re, state_st)
        obs = jax.lax.select(done, obs_re, obs_st)
        no_limit = params.replace(max_timesteps=jnp.iinfo(jnp.int32).max)
        terminated = done & self.craftax.is_terminal(state_st, no_limit)
        info = {"discount": jnp.where(done, 0.0, 1.0).astype(jnp.float32)}
        return (
            self._observe(obs),
            state,
            jnp.asarray(reward, jnp.float32),
            terminated,
            done & ~terminated,
            info,
        )

    @property
    def name(self) -> str:
        """Environment id, as in the registry."""
        return self.env_id

    @property
    def num_actions(self) -> int:
        """craftax's actions: 43 (Craftax), 17 (Classic)."""
        return int(self.craftax.num_actions)

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation."""
        return self._obs_dim

    def action_space(self, params: tp.Any = None) -> spaces.Discrete:
        """craftax's discrete actions."""
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: tp.Any = None) -> spaces.Box:
        """Flat observation: symbolic in [0, 1], pixels in [0, 255]."""
        high = PIXEL_SCALE if self.pixels else 1.0
        return spaces.Box(0.0, high, (self.obs_dim,), jnp.float32)


# --- registry --------------------------------------------------------------------------------
def _build(match: re.Match, max_steps_in_episode: int | None = None) -> tuple[CraftaxEnv, tp.Any]:
    env = CraftaxEnv(match.group(0), max_steps_in_episode)
    return env, env.default_params


def families() -> list[tp.Any]:
    """The registry family of POBAX's Craftax ids (no ``action_concat``, as in POBAX)."""
    from sweepax.envs.registry import Family  # here: the registry imports this module

    return [
        Family(
            pattern=PATTERN,
            template="craftax[_classic][_pixels] (POBAX's Craftax ids)",
            examples=IDS,
            build=_build,
            guesses=lambda env_id: list(IDS),
            action_concat=False,
        )
    ]
