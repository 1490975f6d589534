"""Visual MuJoCo: the MJX locomotion bodies observed through a small camera image.

Source: the bodies, dynamics and rewards of ``mjx_envs`` (gymnasium v5 ports); the image is cast
with MJX's pure-JAX ``mjx.ray`` (``mujoco/mjx/_src/ray.py``) from each XML's ``track`` camera
(``mode="trackcom"``: a fixed orientation following the body's centre of mass, 3 m to its side,
as gymnasium's ``render`` shows), so it runs anywhere, under ``jit`` and ``vmap``.

Ids (``PIXEL_IDS``): ``<hopper|walker2d|halfcheetah|ant>-pixels`` (64 x 64) and
``<...>-pixels-<N>`` (N x N, e.g. ``hopper-pixels-32`` for CPU tests and quick sweeps).

Obs: the image flattened to (H * W * 2,) float32 in [0, 1], with ``obs_shape = (H, W, 2)``
(row 0 at the top) for the CNN encoder; flat so that PPO's observation normalisation and
``action_concat`` stay as they are. Channels:

* 0, depth: ``1 - distance / FAR`` where a ray hits (near is bright), 0 where it hits nothing;
  gives the body's shape and posture.
* 1, shade: a flat grey per geom (0.5 + 0.5 x the luminance of its ``rgba``), the floor a
  0.5 m checkerboard (0.2 / 0.4), sky 0. The camera follows the body, so only the floor's
  pattern moving past shows forward speed (a plane's depth does not change when the body moves
  along it), and the grey separates body from floor and Walker2d's two legs.

Geom ids are not a channel: an id is a category, not a magnitude for a conv layer.

``renderer="madrona"`` (the Madrona-MJX batch renderer on GPU) is only declared: Madrona-MJX is
not on PyPI, unmaintained upstream, and its JAX bridge needs jax < 0.6, so sweepax has no Madrona
render path. Where ``madrona_mjx`` is not installed, construction stops with one line naming the
renderer to use instead (``renderers.check``); where it is, the first render does. A Madrona env
cannot be vmapped (``vmappable = False``: the planner gives every config and seed its own task,
``registry.vmappable``).
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from gymnax.environments import spaces
from mujoco import mjx

from sweepax.envs import names, renderers
from sweepax.envs.mjx_envs import EnvParams, EnvState, MJXEnv, with_time_limit
from sweepax.errors import UserError

log = logging.getLogger(__name__)

PIXEL_BODIES: dict[str, str] = names.PIXEL_BODIES  # id prefix -> mjx_envs.BODIES name
PIXEL_IDS: tuple[str, ...] = tuple(f"{name}-pixels" for name in PIXEL_BODIES)
RENDERERS: tuple[str, ...] = names.RENDERERS
DEFAULT_SIZE = 64
CHANNELS = 2  # depth, shade (renderer "jax")
WARP_CHANNELS = 3  # RGB (renderer "warp")
FAR = 10.0  # metres: depth 0 at and beyond
CHECKER = 0.5  # metres per floor square


def camera_rays(height: int, width: int, fovy_deg: float) -> np.ndarray:
    """Unit ray directions in the camera frame (x right, y up, looking along -z), (H * W, 3)."""
    half_h = np.tan(np.deg2rad(fovy_deg) / 2)
    half_w = half_h * width / height
    ys = (1 - 2 * (np.arange(height) + 0.5) / height) * half_h  # row 0 at the top
    xs = (2 * (np.arange(width) + 0.5) / width - 1) * half_w
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    rays = np.stack([grid_x, grid_y, -np.ones_like(grid_x)], axis=-1).reshape(-1, 3)
    return (rays / np.linalg.norm(rays, axis=-1, keepdims=True)).astype(np.float32)


class PixelMJXEnv(MJXEnv):
    """An ``MJXEnv`` body whose observation is its ``track`` camera image (see module doc)."""

    def __init__(
        self,
        body: str,
        image_size: int = DEFAULT_SIZE,
        renderer: str = "jax",
        solver_iterations: int | None = None,
        ls_iterations: int | None = None,
    ):
        if image_size < 8:
            raise UserError(f"image size {image_size}: must be at least 8 pixels")
        prefix = next((k for k, v in PIXEL_BODIES.items() if v == body), body.lower())
        suffix = "" if int(image_size) == DEFAULT_SIZE else f"-{int(image_size)}"
        env_id = f"{prefix}-pixels{suffix}"
        renderers.check(env_id, renderer)  # before the physics is built
        super().__init__(body, None, solver_iterations, ls_iterations)
        self.renderer = renderer
        self.image_size = int(image_size)
        self.env_id = env_id
        self.vmappable = renderer != "madrona"  # Madrona: one world batch per process, no vmap
        self.channels = WARP_CHANNELS if renderer == "warp" else CHANNELS
        if renderer == "madrona":
            log.warning("Madrona compiles its renderer on first use (minutes)")
        mj = self.physics.mj_model
        self._cam = mujoco.mj_name2id(mj, mujoco.mjtObj.mjOBJ_CAMERA, "track")
        if self._cam < 0:
            raise ValueError(f"{self.spec.xml} has no 'track' camera")
        size = self.image_size
        self._rays = camera_rays(size, size, float(mj.cam_fovy[self._cam]))
        rgb = mj.geom_rgba[:, :3] @ np.array([0.299, 0.587, 0.114])
        self._geom_shade = (0.5 + 0.5 * rgb).astype(np.float32)
        self._floor = (mj.geom_type == mujoco.mjtGeom.mjGEOM_PLANE) & (mj.geom_bodyid == 0)
        self._warp = None
        if renderer == "warp":
            from sweepax.envs import warp_render  # imports warp only when it renders

            self.physics = warp_render.shared_warp_physics(body, solver_iterations, ls_iterations)
            self._warp = warp_render.WarpCamera(self.physics, self._cam, size, FAR)

    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """Image shape (H, W, C) of the flat observation, for the CNN encoder."""
        return (self.image_size, self.image_size, self.channels)

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation: H * W * C."""
        return int(np.prod(self.obs_shape))

    def render(self, data: mjx.Data) -> jax.Array:
        """The ``track`` camera's image of ``data``, float32 (H, W, C): depth / shade (``jax``),
        RGB (``warp``)."""
        if self._warp is not None:
            return self._warp.images(data)[0]
        if self.renderer != "jax":
            raise UserError(
                f"env {self.env_id!r}: sweepax has no Madrona render path (Madrona-MJX's JAX "
                f"bridge needs jax < 0.6; this is jax {jax.__version__}): use "
                f"{renderers.MADRONA_INSTEAD}"
            )
        pos = data.cam_xpos[self._cam]
        vecs = jnp.asarray(self._rays) @ data.cam_xmat[self._cam].T  # world frame, (H * W, 3)
        cast = jax.vmap(mjx.ray, in_axes=(None, None, None, 0))
        dist, geom = cast(self.physics.mjx_model, data, pos, vecs)
        hit = geom >= 0
        depth = jnp.where(hit, 1.0 - jnp.clip(dist / FAR, 0.0, 1.0), 0.0)
        point = pos + dist[:, None] * vecs
        squares = jnp.floor(point[:, 0] / CHECKER) + jnp.floor(point[:, 1] / CHECKER)
        floor_shade = 0.2 + 0.2 * jnp.mod(squares, 2.0)
        safe = jnp.maximum(geom, 0)
        shade = jnp.where(
            jnp.asarray(self._floor)[safe], floor_shade, jnp.asarray(self._geom_shade)[safe]
        )
        shade = jnp.where(hit, shade, 0.0)
        image = jnp.stack([depth, shade], axis=-1).reshape(self.obs_shape)
        return image.astype(jnp.float32)

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: EnvState,
        action: jax.Array,
        params: EnvParams | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict]:
        """gymnax's step with auto-reset; with ``renderer="warp"``, see ``_warp_step``."""
        if self._warp is None:
            return super().step(key, state, action, params)
        params = self.default_params if params is None else params
        return self._warp_step(key, state, action, params)

    def _warp_step(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict]:
        """gymnax's step with auto-reset, the same numbers, for MJX's Warp renderer:

        * one render per step, of the stepped and the next state together: a render context's
          scene (BVH) lives outside JAX, so two renders XLA may interleave could read each
          other's scene;
        * a reset world takes the reset state's public ``mjx.Data`` fields (qpos, qvel, poses,
          ...) but keeps the stepped Data's Warp-internal ones (``_impl``: contact pool, solver
          buffers, rebuilt by the next step), as MJX's Warp calls cannot take per-world copies
          of the fields it shares across worlds.
        """
        key_step, key_reset = jax.random.split(key)
        action = jnp.asarray(action, jnp.float32)
        data = self.physics.physics_step(state.data, action)
        reward = self.reward(state.data, data, action)
        terminated = self.is_terminated_data(data)
        stepped = EnvState(data=data, time=state.time + 1)
        truncated = self.is_truncated(stepped, params)
        done = jnp.logical_or(terminated, truncated)
        reset = self.reset_state(key_reset)
        nxt = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), reset, stepped)
        nxt = nxt.replace(data=nxt.data.replace(_impl=data._impl))
        both = jax.tree.map(lambda x, y: jnp.stack([x, y]), stepped.data.replace(_impl=None),
                            nxt.data.replace(_impl=None))  # fmt: skip
        axes = jax.tree.map(lambda _: 0, both).replace(_impl=None)
        final_obs, obs = jax.vmap(lambda d: self.mask(self.render(d).reshape(-1)), in_axes=(axes,))(
            both.replace(_impl=data._impl)
        )
        info = {
            "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32),
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": final_obs,
        }
        nxt = jax.lax.stop_gradient(nxt)
        return jax.lax.stop_gradient(obs), nxt, reward, terminated, truncated, info

    def full_obs(self, data: mjx.Data) -> jax.Array:
        """The flattened image, float32, shape (H * W * 2,)."""
        return self.render(data).reshape(-1)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Flat image in [0, 1], shape (H * W * C,)."""
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)


def make_pixels(
    prefix: str,
    image_size: int | None = None,
    renderer: str = "jax",
    max_steps_in_episode: int | None = None,
    solver_iterations: int | None = None,
    ls_iterations: int | None = None,
) -> tuple[PixelMJXEnv, EnvParams]:
    """``(PixelMJXEnv, params)`` for ``<prefix>-pixels[-<image_size>]`` (as ``make_mjx``)."""
    env = PixelMJXEnv(
        PIXEL_BODIES[prefix],
        DEFAULT_SIZE if image_size is None else int(image_size),
        renderer,
        solver_iterations,
        ls_iterations,
    )
    return env, with_time_limit(env.default_params, max_steps_in_episode)


__all__ = [
    "PIXEL_BODIES",
    "PIXEL_IDS",
    "RENDERERS",
    "PixelMJXEnv",
    "camera_rays",
    "make_pixels",
]
