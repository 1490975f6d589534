"""MJX's Warp batch renderer (``renderer="warp"``): physics and camera images on MuJoCo Warp.

Source: ``mujoco.mjx.create_render_context`` / ``refit_bvh`` / ``render`` / ``get_rgb`` /
``get_depth`` (mujoco-mjx 3.17, ``mujoco/mjx/_src/render.py``; Warp kernels from warp-lang). MJX
renders only Data of its Warp implementation, so the physics runs there too
(``mjx.put_model(impl="warp")``, ``WarpPhysics``); it runs on Warp's CPU device or an NVIDIA GPU.

A render context fixes its number of worlds when it is created (Warp allocates per-world
buffers outside JAX). ``WarpCamera`` hides that: it renders a whole batch at once and, under
``vmap`` (num_envs, then configs and seeds), flattens every enclosing batch axis into one, so the
context it uses at trace time has exactly as many worlds as the program renders (one context per
world count, created once per process). Vmapped cells therefore equal separate runs (tested in
tests/envs/test_warp_render.py), and the registry declares ``renderer="warp"`` vmappable.

Image: RGB from the ``track`` camera, float32 in [0, 1] (POBAX's ``normalize_image``: the 8-bit
colour / 255), row 0 at the top; depth (for tests and benchmarks) is the distance along the
camera's view axis / ``far``, clipped to [0, 1].
"""

from __future__ import annotations

import functools
import logging
import threading
import typing as tp

import jax
import mujoco
from mujoco import mjx

from sweepax.envs.mjx_envs import BODIES, MJXPhysics, load_model

log = logging.getLogger(__name__)


def warp_version() -> str:
    """warp-lang's version (imports warp)."""
    import warp

    return str(warp.config.version)


def render_device() -> str:
    """The device Warp renders on here: ``cuda:<n> (<name>)`` or ``cpu``."""
    import warp

    device = warp.get_device()
    return f"{device.alias} ({device.name})" if device.is_cuda else "cpu"


def quiet_warp() -> None:
    """Stop Warp printing its banner and one line per kernel module it compiles or loads."""
    import warp

    warp.config.quiet = True
    warp.config.log_level = warp.LOG_WARNING


class WarpPhysics(MJXPhysics):
    """``MJXPhysics`` on MJX's Warp implementation (what ``mjx.render`` requires).

    ``post_constraint`` (Ant's ``cfrc_ext``): MJX's ``rne_postconstraint`` is JAX-only, so the
    Warp model runs it inside every forward pass instead (``opt.run_rne_postconstraint``).
    """

    def __init__(self, mj_model: mujoco.MjModel, frame_skip: int, post_constraint: bool = False):
        quiet_warp()
        super().__init__(mj_model, frame_skip, post_constraint=False)
        model = mjx.put_model(mj_model, impl="warp")
        if post_constraint:
            model = model.tree_replace({"opt._impl.run_rne_postconstraint": True})
        self.mjx_model = model

    @functools.partial(jax.jit, static_argnames=("self",))
    def init_data(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """Warp ``mjx.Data`` at (qpos, qvel) after ``mj_forward``."""
        data = mjx.make_data(self.mj_model, impl="warp").replace(qpos=qpos, qvel=qvel)
        return mjx.forward(self.mjx_model, data)


@functools.cache
def shared_warp_physics(
    body: str, solver_iterations: int | None = None, ls_iterations: int | None = None
) -> WarpPhysics:
    """One ``WarpPhysics`` per (body, solver settings) and process (as ``shared_physics``)."""
    spec = BODIES[body]
    mj_model = load_model(spec.xml)
    if solver_iterations is not None:
        mj_model.opt.iterations = int(solver_iterations)
    if ls_iterations is not None:
        mj_model.opt.ls_iterations = int(ls_iterations)
    return WarpPhysics(mj_model, spec.frame_skip, spec.contact_forces)


class WarpCamera:
    """One camera of a ``WarpPhysics`` model rendered by MJX's Warp renderer, ``size`` x ``size``.

    ``images(data)`` takes one world's Data (any enclosing ``vmap``s allowed) and returns its
    (rgb (H, W, 3), depth (H, W, 1)) float32 images in [0, 1]; depth is divided by ``far``.
    """

    def __init__(self, physics: WarpPhysics, camera: int, size: int, far: float):
        self.physics = physics
        self.camera = int(camera)
        self.size = int(size)
        self.far = float(far)
        self._contexts: dict[int, tp.Any] = {}
        self._renders: dict[tuple, tp.Callable] = {}
        self._lock = threading.Lock()

    def context(self, nworld: int) -> tp.Any:
        """The render context (``mjx.create_render_context``) for ``nworld`` worlds, created on
        first use."""
        with self._lock:
            if nworld not in self._contexts:
                log.info("Warp render context: %d worlds, %d x %d", nworld, self.size, self.size)
                active = [i == self.camera for i in range(self.physics.mj_model.ncam)]
                self._contexts[nworld] = mjx.create_render_context(
                    mjm=self.physics.mj_model,
                    nworld=nworld,
                    cam_res=(self.size, self.size),
                    render_rgb=True,
                    render_depth=True,
                    cam_active=active,
                )
            return self._contexts[nworld]

    def _render(self, nworld: int, data: mjx.Data) -> tuple[jax.Array, jax.Array]:
        """MJX's render of ``data`` with the ``nworld`` context: every world it holds, with the
        batch axes of any ``vmap`` around this call, must be ``nworld`` worlds in all."""
        rc = self.context(nworld).pytree()
        model = self.physics.mjx_model
        data = mjx.refit_bvh(model, data, rc)
        rgb, depth, _ = mjx.render(model, data, rc)
        return mjx.get_rgb(rc, 0, rgb), mjx.get_depth(rc, 0, depth, self.far)

    def _batched(self, nworld: int, mapped: tuple[tuple[bool, ...], ...]) -> tp.Callable:
        """Images of ``data`` with ``len(mapped)`` leading batch axes, ``nworld`` worlds in all;
        ``mapped[i]`` tells, per leaf of ``data``, whether it has batch axis ``i`` (outermost
        first; MJX keeps some Warp fields unbatched).

        Under one more ``vmap`` of size n this becomes ``_batched(nworld * n, ...)`` of the data
        with that axis in front, so the render context always has exactly the worlds rendered.
        """
        key = (nworld, mapped)
        if key not in self._renders:

            def render(data: mjx.Data) -> tuple[jax.Array, jax.Array]:
                leaves, treedef = jax.tree.flatten(data)

                def fn(leaves: list) -> tuple[jax.Array, jax.Array]:
                    return self._render(nworld, jax.tree.unflatten(treedef, leaves))

                for batched in reversed(mapped):  # innermost axis first
                    fn = jax.vmap(fn, in_axes=([0 if b else None for b in batched],))
                rgb, depth = fn(leaves)
                if not mapped:  # one world, unbatched: MJX keeps its world axis of 1
                    return rgb[0], depth[0]
                return rgb, depth

            batched = jax.custom_batching.custom_vmap(render)

            @batched.def_vmap
            def _vmap(axis_size: int, in_batched: list, data: mjx.Data) -> tuple:
                leaves = tuple(bool(b) for b in jax.tree.leaves(in_batched[0]))
                images = self._batched(nworld * axis_size, (leaves, *mapped))(data)
                return images, (True, True)

            self._renders[key] = batched
        return self._renders[key]

    def images(self, data: mjx.Data) -> tuple[jax.Array, jax.Array]:
        """(rgb (H, W, 3), depth (H, W, 1)) of one world's ``data``, float32 in [0, 1]; under
        ``vmap``s, of every world."""
        return self._batched(1, ())(data)


__all__ = [
    "WarpCamera",
    "WarpPhysics",
    "quiet_warp",
    "render_device",
    "shared_warp_physics",
    "warp_version",
]
