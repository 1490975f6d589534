"""MuJoCo locomotion (Hopper, Walker2d, HalfCheetah, Ant) in JAX through MJX, gymnax 1.0 API.

Source: ports of gymnasium's v5 definitions (github.com/Farama-Foundation/Gymnasium,
``gymnasium/envs/mujoco/{hopper,walker2d,half_cheetah,ant}_v5.py``) on gymnasium's own XML assets,
stepped with MJX (``mujoco.mjx``, JAX implementation); position / velocity masks in POBAX's style.

Ids (``MJX_IDS`` / ``MASKED_IDS``):

* ``Hopper-v5``, ``Walker2d-v5``, ``HalfCheetah-v5``, ``Ant-v5``: gymnasium v5 defaults: the same
  XML, frame_skip, rewards, healthy ranges and termination, reset noise and observation (x / y
  position excluded). Ant-v5 keeps gymnasium's default ``cfrc_ext`` contact forces in the
  observation (13 qpos + 14 qvel + 13 bodies x 6 = 105).
* ``<Hopper|Walker2d|HalfCheetah|Ant>-v5-<F|P|V>``: the same envs with only ``kept_indices`` of
  the observation shown (hidden features are removed, not zeroed):
  F = qpos part + qvel part, P = qpos part only, V = qvel part only. Ant's contact forces are
  hidden in all three (13 positions / 14 velocities / 27 for full), so ``Ant-v5-F`` has 27
  features, not 105. HalfCheetah follows the qpos / qvel split too (P = obs 0..7, V = 8..16).
  POBAX's own masked ids ``<Hopper|Walker|HalfCheetah|Ant>-<F|P|V>-v0`` are brax's envs with
  POBAX's masks (``brax_masked``), not these.

Dynamics and rewards match gymnasium exactly up to MJX vs C MuJoCo numerics: per env step,
``frame_skip`` ``mjx.step`` calls (then ``rne_postconstraint`` for Ant's ``cfrc_ext``); the forward
velocity is the displacement of qpos[0] (Ant: torso ``xpos`` x, as gymnasium, read after
``mj_step`` so one substep stale, as gymnasium) over ``dt``; Hopper / Walker2d clip observed qvel to
[-10, 10]. Episodes end (``terminated``) when unhealthy (HalfCheetah never) and are truncated at
``EnvParams.max_steps_in_episode`` = 1000; gymnax's ``Environment.step`` auto-resets.

The physics (``MJXPhysics``: ``mj_model``, ``mjx_model``, ``init_data``, ``physics_step``) is
separate from observations so that a pixel-observation variant can subclass ``MJXEnv`` and
override ``full_obs`` (the state carries the whole ``mjx.Data``).

half_cheetah.xml's deprecated ``settotalmass`` is applied with ``mj_setTotalmass`` after compiling
(identical masses and inertias) so loading does not warn or write MUJOCO_LOG.TXT into the cwd.
On CPU the first ``jit`` of ``step`` compiles for 10-60 s per model (see bench/mjx_steps.py).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import re
import typing as tp

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from mujoco import mjx

from sweepax.envs import names
from sweepax.envs.gymnax_envs import ContinuousBox, FeatureMask


@dataclasses.dataclass(frozen=True)
class BodySpec:
    """A locomotion body: gymnasium v5 defaults and the observation layout."""

    xml: str  # file in gymnasium/envs/mujoco/assets
    frame_skip: int
    skip_qpos: int  # leading qpos entries (x, or x and y) left out of the observation
    ctrl_cost_weight: float
    healthy_reward: float
    reset_noise_scale: float
    qvel_noise: str  # "uniform" (Hopper, Walker2d) or "normal" (HalfCheetah, Ant)
    clip_qvel: float | None  # observed qvel clipped to [-c, c] (Hopper, Walker2d)
    contact_forces: bool  # cfrc_ext in obs and reward (Ant)


BODIES: dict[str, BodySpec] = dict(
    zip(
        names.MJX_BODIES,  # Hopper, Walker2d, HalfCheetah, Ant
        (
            BodySpec("hopper.xml", 4, 1, 1e-3, 1.0, 5e-3, "uniform", 10.0, False),
            BodySpec("walker2d_v5.xml", 4, 1, 1e-3, 1.0, 5e-3, "uniform", 10.0, False),
            BodySpec("half_cheetah.xml", 5, 1, 0.1, 0.0, 0.1, "normal", None, False),
            BodySpec("ant.xml", 5, 2, 0.5, 1.0, 0.1, "normal", None, True),
        ),
        strict=True,
    )
)
ANT_CONTACT_COST_WEIGHT = 5e-4
ANT_CONTACT_FORCE_RANGE = (-1.0, 1.0)
MJX_IDS: tuple[str, ...] = tuple(f"{name}-v5" for name in BODIES)
MASKED_IDS: tuple[str, ...] = tuple(f"{name}-v5-{v}" for name in BODIES for v in "FPV")


def load_model(xml: str) -> mujoco.MjModel:
    """Compile a gymnasium asset XML offline (from the installed package, no download)."""
    path = importlib.resources.files("gymnasium") / "envs" / "mujoco" / "assets" / xml
    text = path.read_text()
    total = re.search(r'settotalmass="([^"]+)"', text)
    if total is None:
        return mujoco.MjModel.from_xml_path(str(path))
    model = mujoco.MjModel.from_xml_string(re.sub(r'\s*settotalmass="[^"]+"', "", text))
    mujoco.mj_setTotalmass(model, float(total.group(1)))
    mujoco.mj_setConst(model, mujoco.MjData(model))
    return model


def cfrc_ext(data: mjx.Data) -> jax.Array:
    """Com-based external (contact) forces, shape (nbody, 6); MJX 3.17 keeps them in ``_impl``."""
    impl = getattr(data, "_impl", None)
    return impl.cfrc_ext if impl is not None else data.cfrc_ext


class MJXPhysics:
    """A MuJoCo model, its MJX copy and one env step = ``frame_skip`` physics steps.

    ``init_data`` / ``physics_step`` are jitted with ``self`` static, so envs sharing one
    ``MJXPhysics`` (``shared_physics``: the masked variants of a body) trace MJX only once.
    """

    def __init__(
        self,
        mj_model: mujoco.MjModel,
        frame_skip: int,
        post_constraint: bool = False,
    ):
        self.mj_model = mj_model
        self.mjx_model = mjx.put_model(mj_model)
        self.frame_skip = int(frame_skip)
        self.post_constraint = bool(post_constraint)  # fill cfrc_ext (mj_rnePostConstraint)

    @property
    def dt(self) -> float:
        """Seconds per env step: timestep x frame_skip."""
        return float(self.mj_model.opt.timestep) * self.frame_skip

    @functools.partial(jax.jit, static_argnames=("self",))
    def init_data(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """``mjx.Data`` at (qpos, qvel) after ``mj_forward`` (gymnasium's ``set_state``)."""
        data = mjx.make_data(self.mjx_model).replace(qpos=qpos, qvel=qvel)
        data = mjx.forward(self.mjx_model, data)
        if self.post_constraint:
            data = mjx.rne_postconstraint(self.mjx_model, data)
        return data

    @functools.partial(jax.jit, static_argnames=("self",))
    def physics_step(self, data: mjx.Data, action: jax.Array) -> mjx.Data:
        """Set ``ctrl`` to ``action`` and take ``frame_skip`` ``mjx.step``s."""
        data = data.replace(ctrl=jnp.asarray(action, data.ctrl.dtype))

        def _substep(data: mjx.Data, _: None) -> tuple[mjx.Data, None]:
            return mjx.step(self.mjx_model, data), None

        data = jax.lax.scan(_substep, data, None, length=self.frame_skip)[0]
        if self.post_constraint:
            data = mjx.rne_postconstraint(self.mjx_model, data)
        return data


@functools.cache
def shared_physics(
    body: str, solver_iterations: int | None = None, ls_iterations: int | None = None
) -> MJXPhysics:
    """One ``MJXPhysics`` per (body, solver settings) and process; treat its models as read-only."""
    spec = BODIES[body]
    mj_model = load_model(spec.xml)
    if solver_iterations is not None:  # gymnasium's XMLs use MuJoCo's 100 / 50
        mj_model.opt.iterations = int(solver_iterations)
    if ls_iterations is not None:
        mj_model.opt.ls_iterations = int(ls_iterations)
    return MJXPhysics(mj_model, spec.frame_skip, spec.contact_forces)


@struct.dataclass
class EnvState(environment.EnvState):
    """The full MJX physics state and gymnax's step counter."""

    data: mjx.Data
    time: jax.Array  # int32, steps taken in this episode


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Traced parameters: only the time limit (gymnasium's 1000 steps)."""

    max_steps_in_episode: int = 1000


class MJXEnv(FeatureMask, environment.Environment[EnvState, EnvParams]):
    """One locomotion body (``BODIES``) on MJX; ``variant`` F / P / V masks the observation."""

    def __init__(
        self,
        body: str,
        variant: str | None = None,
        solver_iterations: int | None = None,
        ls_iterations: int | None = None,
    ):
        super().__init__()
        if body not in BODIES:
            raise ValueError(f"unknown body {body!r}; known: {sorted(BODIES)}")
        self.body = body
        self.spec = BODIES[body]
        if variant not in (None, "F", "P", "V"):
            raise ValueError(f"unknown variant {variant!r}; known: F, P, V")
        self.variant = variant
        self.env_id = f"{body}-v5" if variant is None else f"{body}-v5-{variant}"
        self.physics = shared_physics(body, solver_iterations, ls_iterations)
        mj_model = self.physics.mj_model
        nq, nv, nbody = mj_model.nq, mj_model.nv, mj_model.nbody
        n_qpos = nq - self.spec.skip_qpos
        n_cfrc = 6 * (nbody - 1) if self.spec.contact_forces else 0
        # Obs: [qpos[skip_qpos:], qvel, cfrc_ext[1:] (Ant)]
        self.qpos_indices = tuple(range(n_qpos))
        self.qvel_indices = tuple(range(n_qpos, n_qpos + nv))
        kept = {
            None: None,
            "F": self.qpos_indices + self.qvel_indices,
            "P": self.qpos_indices,
            "V": self.qvel_indices,
        }[variant]
        self.mask_features(n_qpos + nv + n_cfrc, kept)
        self._init_qpos = np.asarray(mj_model.qpos0, np.float32)
        self._ctrl_low = np.asarray(mj_model.actuator_ctrlrange[:, 0], np.float32)
        self._ctrl_high = np.asarray(mj_model.actuator_ctrlrange[:, 1], np.float32)

    # --- physics-derived quantities -------------------------------------------------------
    def full_obs(self, data: mjx.Data) -> jax.Array:
        """gymnasium v5's observation, float32, shape (full_obs_dim,)."""
        qvel = data.qvel
        if self.spec.clip_qvel is not None:
            qvel = jnp.clip(qvel, -self.spec.clip_qvel, self.spec.clip_qvel)
        parts = [data.qpos[self.spec.skip_qpos :], qvel]
        if self.spec.contact_forces:
            parts.append(jnp.clip(cfrc_ext(data)[1:], *ANT_CONTACT_FORCE_RANGE).reshape(-1))
        return jnp.concatenate(parts).astype(jnp.float32)

    def is_healthy(self, data: mjx.Data) -> jax.Array:
        """gymnasium v5's ``is_healthy`` (HalfCheetah: always)."""
        qpos, qvel = data.qpos, data.qvel
        if self.body == "Hopper":  # state[2:] in (-100, 100), z > 0.7, |angle| < 0.2
            state = jnp.concatenate([qpos[2:], qvel])
            ok_state = jnp.all((state > -100.0) & (state < 100.0))
            return ok_state & (qpos[1] > 0.7) & (qpos[2] > -0.2) & (qpos[2] < 0.2)
        if self.body == "Walker2d":  # 0.8 < z < 2.0, |angle| < 1.0
            return (qpos[1] > 0.8) & (qpos[1] < 2.0) & (qpos[2] > -1.0) & (qpos[2] < 1.0)
        if self.body == "Ant":  # finite state, 0.2 <= z <= 1.0
            finite = jnp.all(jnp.isfinite(qpos)) & jnp.all(jnp.isfinite(qvel))
            return finite & (qpos[2] >= 0.2) & (qpos[2] <= 1.0)
        return jnp.ones((), bool)

    def forward_position(self, data: mjx.Data) -> jax.Array:
        """x whose change over ``dt`` is rewarded: qpos[0] (Ant: the torso's ``xpos`` x)."""
        return data.xpos[1, 0] if self.body == "Ant" else data.qpos[0]

    def reward(self, before: mjx.Data, after: mjx.Data, action: jax.Array) -> jax.Array:
        """forward velocity + healthy reward - control cost (- contact cost for Ant)."""
        x_velocity = (self.forward_position(after) - self.forward_position(before)) / (
            self.physics.dt
        )
        reward = x_velocity - self.spec.ctrl_cost_weight * jnp.sum(jnp.square(action))
        if self.spec.healthy_reward:
            reward = reward + self.spec.healthy_reward * self.is_healthy(after)
        if self.spec.contact_forces:
            forces = jnp.clip(cfrc_ext(after), *ANT_CONTACT_FORCE_RANGE)
            reward = reward - ANT_CONTACT_COST_WEIGHT * jnp.sum(jnp.square(forces))
        return reward.astype(jnp.float32)

    # --- gymnax API ------------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        """Default parameters: gymnasium's 1000-step time limit."""
        return EnvParams()

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[tp.Any, tp.Any]]:
        """``frame_skip`` physics steps; ``terminated`` when unhealthy (gymnasium v5)."""
        action = jnp.asarray(action, jnp.float32)
        data = self.physics.physics_step(state.data, action)
        reward = self.reward(state.data, data, action)
        terminated = self.is_terminated_data(data)
        state = EnvState(data=data, time=state.time + 1)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return (
            jax.lax.stop_gradient(self.get_obs(state, params)),
            jax.lax.stop_gradient(state),
            reward,
            terminated,
            info,
        )

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """gymnasium's ``reset_model`` (``reset_state``) and its observation."""
        state = self.reset_state(key)
        return self.get_obs(state, params), state

    def reset_state(self, key: jax.Array) -> EnvState:
        """gymnasium's ``reset_model``: qpos0 + U(±scale); qvel U(±scale) or scale * N(0, 1)."""
        key_qpos, key_qvel = jax.random.split(key)
        scale = self.spec.reset_noise_scale
        nq, nv = self.physics.mj_model.nq, self.physics.mj_model.nv
        qpos = self._init_qpos + jax.random.uniform(key_qpos, (nq,), minval=-scale, maxval=scale)
        if self.spec.qvel_noise == "uniform":
            qvel = jax.random.uniform(key_qvel, (nv,), minval=-scale, maxval=scale)
        else:
            qvel = scale * jax.random.normal(key_qvel, (nv,))
        return EnvState(data=self.physics.init_data(qpos, qvel), time=jnp.zeros((), jnp.int32))

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: tp.Any = None
    ) -> jax.Array:
        """The (masked) observation, float32, shape (obs_dim,)."""
        return self.mask(self.full_obs(state.data))

    def is_terminated_data(self, data: mjx.Data) -> jax.Array:
        """Unhealthy (gymnasium's ``terminate_when_unhealthy=True``); never for HalfCheetah."""
        return ~self.is_healthy(data)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Unhealthy now (the time limit is ``is_truncated``)."""
        return self.is_terminated_data(state.data)

    @property
    def discrete_actions(self) -> bool:
        """Always False: joint torques."""
        return False

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Torques in the actuators' ctrlrange, shape (nu,); ``n`` raises
        ``ContinuousActionsError`` (continuous actions have no count)."""
        box = spaces.Box(
            jnp.asarray(self._ctrl_low),
            jnp.asarray(self._ctrl_high),
            (self._ctrl_low.shape[0],),
            jnp.float32,
        )
        return ContinuousBox.of(box, self.env_id)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Unbounded float32 Box of shape (obs_dim,)."""
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Physics state (qpos, qvel) and step counter."""
        mj = self.physics.mj_model
        return spaces.Dict(
            {
                "qpos": spaces.Box(-jnp.inf, jnp.inf, (mj.nq,), jnp.float32),
                "qvel": spaces.Box(-jnp.inf, jnp.inf, (mj.nv,), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )


def make_mjx(
    body: str,
    variant: str | None = None,
    max_steps_in_episode: int | None = None,
    solver_iterations: int | None = None,
    ls_iterations: int | None = None,
) -> tuple[MJXEnv, EnvParams]:
    """``(MJXEnv, params)`` for ``<body>-v5`` (variant None) or ``<body>-v5-<variant>``.

    ``solver_iterations`` / ``ls_iterations`` override the XML's constraint solver iterations
    (gymnasium: 100 / 50; brax's XMLs use 4 / 50): faster MJX steps, less exact contacts.
    """
    env = MJXEnv(body, variant, solver_iterations, ls_iterations)
    return env, with_time_limit(env.default_params, max_steps_in_episode)


def with_time_limit(params: EnvParams, max_steps_in_episode: int | None) -> EnvParams:
    """``params`` with ``max_steps_in_episode`` replaced when given."""
    if max_steps_in_episode is None:
        return params
    return params.replace(max_steps_in_episode=int(max_steps_in_episode))


__all__ = [
    "BODIES",
    "MASKED_IDS",
    "MJX_IDS",
    "BodySpec",
    "cfrc_ext",
    "with_time_limit",
    "EnvParams",
    "EnvState",
    "MJXEnv",
    "MJXPhysics",
    "load_model",
    "make_mjx",
    "shared_physics",
]
