"""MJX's Warp batch renderer (``renderer="warp"``): physics and camera images on MuJoCo Warp.

Source: ``mujoco.mjx.create_render_context`` / ``refit_bvh`` / ``render`` / ``get_rgb`` /
``get_depth`` (mujoco-mjx 3.17, ``mujoco/mjx/_src/render.py``; Warp kernels from warp-lang). MJX
renders only Data of its Warp implementation, so the physics runs there too
(``mjx.put_model(impl="warp")``, ``WarpPhysics``); it runs on Warp's CPU device or an NVIDIA GPU.

Two Warp buffers are sized by the number of worlds a program simulates, which JAX does not
tell a function it vmaps: a render context fixes its number of worlds when it is created (Warp
allocates per-world buffers outside JAX), and MJX's Warp Data holds ONE contact buffer of
``naconmax`` contacts shared by every world of a vmapped batch (MJX sizes it for one world;
contacts past it are dropped with only a printed "broadphase overflow", and the physics of a
large batch silently differs from separate runs). ``fold_vmaps`` handles both: under ``vmap``
(num_envs, then configs and seeds) it flattens every enclosing batch axis into one and calls
the per-world function knowing the total. ``WarpPhysics`` runs each forward pass and step on a
Data whose contact buffer has ``contacts_per_world`` x worlds, and hands back the one-world
Data layout (contacts are rebuilt by every step, so none is carried between steps);
``WarpCamera`` uses a context of exactly as many worlds as the program renders (one per world
count, created once per process). Vmapped cells therefore equal separate runs (tested in
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
import jax.numpy as jnp
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


def fold_vmaps(fn: tp.Callable[..., tp.Any], unbatched: tp.Callable = lambda out: out):
    """``g(*args)`` computing ``fn(nworld, *args)`` for one world's ``args``, where ``nworld`` is
    the number of worlds in all the ``vmap``s around the call (1 outside any).

    Under each enclosing ``vmap`` of size n, ``g`` becomes the same computation for
    ``nworld * n`` worlds, with that axis outermost (a ``custom_vmap`` rule), and ``fn`` is traced
    once, inside plain ``vmap``s over every batch axis, so the MJX/Warp calls it makes fold all
    worlds into one launch. ``unbatched(out)`` post-processes a call outside any ``vmap``. Output
    leaves that leave those ``vmap``s without a batch axis (MJX's shared Warp fields) stay
    unbatched.
    """
    built: dict[tuple, tp.Callable] = {}

    def batched(nworld: int, mapped: tuple[tuple[bool, ...], ...]) -> tp.Callable:
        """``fn`` for ``nworld`` worlds of args with ``len(mapped)`` leading batch axes;
        ``mapped[i]`` tells, per leaf of the args, whether it has batch axis ``i`` (outermost
        first)."""
        key = (nworld, mapped)
        if key in built:
            return built[key]

        def run(*args: tp.Any) -> tp.Any:
            leaves, treedef = jax.tree.flatten(args)

            def one(leaves: list) -> tp.Any:
                return fn(nworld, *jax.tree.unflatten(treedef, leaves))

            for axis in reversed(mapped):  # innermost axis first
                one = jax.vmap(one, in_axes=([0 if b else None for b in axis],))
            out = one(leaves)
            return out if mapped else unbatched(out)

        folded = jax.custom_batching.custom_vmap(run)

        @folded.def_vmap
        def _vmap(axis_size: int, in_batched: list, *args: tp.Any) -> tuple:
            inner = (tuple(bool(b) for b in jax.tree.leaves(in_batched)), *mapped)
            out = batched(nworld * axis_size, inner)(*args)
            world = jax.eval_shape(batched(nworld * axis_size, ()), *_one_world(args, inner))
            return out, jax.tree.map(lambda o, w: o.ndim > w.ndim, out, world)

        built[key] = folded
        return folded

    return lambda *args: batched(1, ())(*args)


def _one_world(args: tuple, mapped: tuple[tuple[bool, ...], ...]) -> tuple:
    """The shapes of one world's ``args``: each leaf without the batch axes it has."""
    leaves, treedef = jax.tree.flatten(args)
    axes = [sum(axis[i] for axis in mapped) for i in range(len(leaves))]
    one = [jax.ShapeDtypeStruct(x.shape[n:], x.dtype) for x, n in zip(leaves, axes, strict=True)]
    return jax.tree.unflatten(treedef, one)


def _shared(path: jax.tree_util.KeyPath) -> bool:
    """Whether a leaf of a Warp ``mjx.Data`` is one buffer shared by all worlds (contacts...)."""
    from mujoco.mjx._src.types import tree_path_to_attr_str
    from mujoco.mjx.warp.types import DATA_NON_VMAP

    return tree_path_to_attr_str(path) in DATA_NON_VMAP


def _merge(per_world: mjx.Data, shared: mjx.Data) -> mjx.Data:
    """``shared``'s layout and shared buffers, with ``per_world``'s per-world fields."""
    own = jax.tree_util.tree_flatten_with_path(per_world)[0]
    base, treedef = jax.tree_util.tree_flatten_with_path(shared)
    leaves = [b if _shared(path) else o for (path, b), (_, o) in zip(base, own, strict=True)]
    return jax.tree.unflatten(treedef, leaves)


class WarpPhysics(MJXPhysics):
    """``MJXPhysics`` on MJX's Warp implementation (what ``mjx.render`` requires).

    ``post_constraint`` (Ant's ``cfrc_ext``): MJX's ``rne_postconstraint`` is JAX-only, so the
    Warp model runs it inside every forward pass instead (``opt.run_rne_postconstraint``).

    Data has MJX's one-world layout between calls; each forward pass and step runs on a copy with
    room for ``contacts_per_world`` contacts per world of its batch (MuJoCo Warp's own one-world
    default).
    """

    def __init__(self, mj_model: mujoco.MjModel, frame_skip: int, post_constraint: bool = False):
        quiet_warp()
        super().__init__(mj_model, frame_skip, post_constraint=False)
        model = mjx.put_model(mj_model, impl="warp")
        if post_constraint:
            model = model.tree_replace({"opt._impl.run_rne_postconstraint": True})
        self.mjx_model = model
        self.contacts_per_world = int(mjx.make_data(mj_model, impl="warp")._impl.naconmax)
        self._forward = fold_vmaps(self._forward_worlds)
        self._step = fold_vmaps(self._step_worlds)

    def _sized(self, data: mjx.Data, nworld: int) -> mjx.Data:
        """``data`` with a contact buffer for ``nworld`` worlds."""
        naconmax = self.contacts_per_world * nworld
        return _merge(data, mjx.make_data(self.mj_model, impl="warp", naconmax=naconmax))

    def _forward_worlds(self, nworld: int, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        data = mjx.make_data(self.mj_model, impl="warp").replace(qpos=qpos, qvel=qvel)
        return _merge(mjx.forward(self.mjx_model, self._sized(data, nworld)), data)

    def _step_worlds(self, nworld: int, data: mjx.Data, action: jax.Array) -> mjx.Data:
        sized = self._sized(data.replace(ctrl=jnp.asarray(action, data.ctrl.dtype)), nworld)

        def _substep(data: mjx.Data, _: None) -> tuple[mjx.Data, None]:
            return mjx.step(self.mjx_model, data), None

        return _merge(jax.lax.scan(_substep, sized, None, length=self.frame_skip)[0], data)

    @functools.partial(jax.jit, static_argnames=("self",))
    def init_data(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """Warp ``mjx.Data`` at (qpos, qvel) after ``mj_forward``."""
        return self._forward(qpos, qvel)

    @functools.partial(jax.jit, static_argnames=("self",))
    def physics_step(self, data: mjx.Data, action: jax.Array) -> mjx.Data:
        """Set ``ctrl`` to ``action`` and take ``frame_skip`` ``mjx.step``s."""
        return self._step(data, action)


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
        self._lock = threading.Lock()
        # outside any vmap, MJX keeps the one world's axis of 1
        self._images = fold_vmaps(self._render, unbatched=lambda out: (out[0][0], out[1][0]))

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

    def images(self, data: mjx.Data) -> tuple[jax.Array, jax.Array]:
        """(rgb (H, W, 3), depth (H, W, 1)) of one world's ``data``, float32 in [0, 1]; under
        ``vmap``s, of every world."""
        return self._images(data)


__all__ = [
    "WarpCamera",
    "fold_vmaps",
    "WarpPhysics",
    "quiet_warp",
    "render_device",
    "shared_warp_physics",
    "warp_version",
]
