"""MJX locomotion: declared shapes under jit/vmap, masks, termination, agreement with C MuJoCo.

Compiling MJX on CPU takes 10-60 s per model, so the default tests compile only HalfCheetah (the
fastest) and check every id's shapes with ``jax.eval_shape`` (traced, not compiled); the other
bodies' compiled checks are ``@pytest.mark.slow``. Compiled checks use XLA's backend optimisation
level 0 (about 40 % less compile time, slower steps: irrelevant for a few steps).
"""

from __future__ import annotations

import functools
import sys
import types
import typing
from pathlib import Path

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

from sweepax.envs import check, known_envs, make
from sweepax.envs.mjx_envs import BODIES, MASKED_IDS, MJX_IDS, EnvState, MJXEnv, MJXPhysics
from sweepax.errors import UserError

FAST = {"xla_backend_optimization_level": 0}
N = 4  # vmapped envs

# Declared observation sizes and masks, written out independently of the module.
# Hopper obs: qpos[1:] (5) + qvel (6); Walker2d / HalfCheetah: qpos[1:] (8) + qvel (9);
# Ant: qpos[2:] (13) + qvel (14) + cfrc_ext[1:] (13 bodies x 6 = 78, Ant-v5 only).
OBS_DIM = {"Hopper": 11, "Walker2d": 17, "HalfCheetah": 17, "Ant": 105}
EXPECTED_KEPT = {
    "Hopper": {"F": range(0, 11), "P": range(0, 5), "V": range(5, 11)},
    "Walker2d": {"F": range(0, 17), "P": range(0, 8), "V": range(8, 17)},
    "HalfCheetah": {"F": range(0, 17), "P": range(0, 8), "V": range(8, 17)},
    "Ant": {"F": range(0, 27), "P": range(0, 13), "V": range(13, 27)},  # contact forces hidden
}
ACTION_DIM = {"Hopper": 3, "Walker2d": 6, "HalfCheetah": 6, "Ant": 8}
ALL_IDS = list(MJX_IDS) + list(MASKED_IDS)


def _declared(env_id: str) -> tuple[str, tuple[int, ...]]:
    """(body, kept indices) of an id, from the tables above."""
    body, _, *variant = env_id.split("-")  # <body>-v5 or <body>-v5-<F|P|V>
    if not variant:
        return body, tuple(range(OBS_DIM[body]))
    return body, tuple(EXPECTED_KEPT[body][variant[0]])


def test_registry_knows_every_mjx_id() -> None:
    assert len(ALL_IDS) == 16
    assert set(MJX_IDS) == {"Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5"}
    for env_id in ALL_IDS:
        check(env_id)
    assert {"Hopper-v5-P", "HalfCheetah-v5-V", "Ant-v5"} <= set(known_envs())
    with pytest.raises(UserError, match="did you mean 'Hopper-v5-P'"):
        check("Hoper-v5-P")
    with pytest.raises(UserError, match="perfect_memory"):
        make("Hopper-v5-P", perfect_memory=True)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_reset_and_step_under_jit_and_vmap_give_declared_shapes_and_dtypes(env_id: str) -> None:
    body, kept = _declared(env_id)
    env, params = make(env_id, max_steps_in_episode=50)
    assert isinstance(env, MJXEnv) and env.name == env_id and params.max_steps_in_episode == 50
    assert env.obs_dim == len(kept) and not env.discrete_actions
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    assert obs_space.shape == (len(kept),) and obs_space.dtype == jnp.float32
    assert act_space.shape == (ACTION_DIM[body],)
    np.testing.assert_array_equal(np.asarray(act_space.low), -1.0)  # gymnasium's ctrlrange
    np.testing.assert_array_equal(np.asarray(act_space.high), 1.0)
    assert not hasattr(act_space, "n")

    keys = jax.random.split(jax.random.PRNGKey(0), N)
    obs, state = jax.eval_shape(jax.jit(jax.vmap(env.reset, in_axes=(0, None))), keys, params)
    assert obs.shape == (N, len(kept)) and obs.dtype == jnp.float32
    assert state.time.shape == (N,) and state.data.qpos.shape[0] == N
    actions = jax.ShapeDtypeStruct((N, ACTION_DIM[body]), jnp.float32)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs2, state2, reward, terminated, truncated, info = jax.eval_shape(
        step, keys, state, actions, params
    )
    assert obs2.shape == (N, len(kept)) and obs2.dtype == jnp.float32
    assert reward.shape == (N,) and reward.dtype == jnp.float32
    assert terminated.shape == (N,) and terminated.dtype == jnp.bool_
    assert truncated.shape == (N,) and truncated.dtype == jnp.bool_
    assert info["final_observation"].shape == (N, len(kept))
    assert jax.tree.map(jnp.shape, state2) == jax.tree.map(jnp.shape, state)


def _marked_state(env: MJXEnv, seed: int = 0) -> EnvState:
    """A state whose qpos, qvel and contact forces are distinct random values (no physics run)."""
    mj = env.physics.mj_model
    kq, kv, kc = jax.random.split(jax.random.PRNGKey(seed), 3)
    data = mjx.make_data(env.physics.mjx_model)
    data = data.replace(
        qpos=jax.random.uniform(kq, (mj.nq,), minval=-3, maxval=3),
        qvel=jax.random.uniform(kv, (mj.nv,), minval=-30, maxval=30),
    )
    cfrc = jax.random.uniform(kc, (mj.nbody, 6), minval=-3, maxval=3)
    data = data.replace(_impl=data._impl.replace(cfrc_ext=cfrc))
    return EnvState(data=data, time=jnp.zeros((), jnp.int32))


@pytest.mark.parametrize("env_id", list(MASKED_IDS))
def test_masked_variant_hides_exactly_the_declared_indices(env_id: str) -> None:
    body, kept = _declared(env_id)
    env, params = make(env_id)
    full, full_params = make(f"{body}-v5")
    assert env.kept_indices == kept
    assert env.hidden_indices == tuple(i for i in range(OBS_DIM[body]) if i not in kept)
    state = _marked_state(full)
    obs_full = np.asarray(full.get_obs(state, full_params))
    obs = np.asarray(env.get_obs(state, params))
    assert obs.shape == (len(kept),) and obs_full.shape == (OBS_DIM[body],)
    np.testing.assert_array_equal(obs, obs_full[list(kept)])
    # the full obs is gymnasium's layout: qpos without x (Ant: x, y), qvel (clipped to +-10 for
    # Hopper / Walker2d), Ant's clipped contact forces of bodies 1..
    skip = 2 if body == "Ant" else 1
    qpos, qvel = np.asarray(state.data.qpos), np.asarray(state.data.qvel)
    if body in ("Hopper", "Walker2d"):
        qvel = np.clip(qvel, -10, 10)
        assert np.abs(qvel).max() == 10.0  # the clip is exercised
    parts = [qpos[skip:], qvel]
    if body == "Ant":
        parts.append(np.clip(np.asarray(state.data._impl.cfrc_ext)[1:], -1, 1).reshape(-1))
    np.testing.assert_allclose(obs_full, np.concatenate(parts), rtol=1e-6)
    variant = env_id.split("-")[1]
    if variant == "P":
        np.testing.assert_allclose(obs, qpos[skip:], rtol=1e-6)
    if variant == "V":
        np.testing.assert_allclose(obs, qvel, rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "qpos_changes", "terminated"),
    [
        ("Hopper", {}, False),  # qpos0: z = 1.25, upright
        ("Hopper", {1: 0.6}, True),  # fallen: z <= 0.7
        ("Hopper", {2: 0.3}, True),  # torso tilted past 0.2 rad
        ("Hopper", {3: 150.0}, True),  # a joint state outside (-100, 100)
        ("Walker2d", {}, False),
        ("Walker2d", {1: 2.1}, True),  # z >= 2.0
        ("Walker2d", {2: -1.2}, True),  # torso angle past 1 rad
        ("Ant", {}, False),  # z = 0.75
        ("Ant", {2: 0.1}, True),  # z < 0.2
        ("Ant", {2: 1.1}, True),  # z > 1.0
        ("Ant", {5: float("nan")}, True),  # non-finite state
        ("HalfCheetah", {1: -5.0, 2: 3.0}, False),  # never terminates
    ],
)
def test_unhealthy_states_terminate(body: str, qpos_changes: dict, terminated: bool) -> None:
    env, params = make(f"{body}-v5")
    qpos = np.asarray(env.physics.mj_model.qpos0, np.float32).copy()
    for i, v in qpos_changes.items():
        qpos[i] = v
    data = mjx.make_data(env.physics.mjx_model).replace(qpos=jnp.asarray(qpos))
    state = EnvState(data=data, time=jnp.zeros((), jnp.int32))
    assert bool(env.is_terminated(state, params)) is terminated


def _gymnasium_env(body: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typing.Any:
    """gymnasium's own v5 env class (C MuJoCo); its renderer's imageio import is stubbed."""
    if "imageio" not in sys.modules:  # not installed here; only gymnasium's renderer uses it
        monkeypatch.setitem(sys.modules, "imageio", types.ModuleType("imageio"))
    monkeypatch.chdir(tmp_path)  # half_cheetah.xml's settotalmass warning writes MUJOCO_LOG.TXT
    from gymnasium.envs.mujoco import ant_v5, half_cheetah_v5, hopper_v5, walker2d_v5

    cls = {
        "Hopper": hopper_v5.HopperEnv,
        "Walker2d": walker2d_v5.Walker2dEnv,
        "HalfCheetah": half_cheetah_v5.HalfCheetahEnv,
        "Ant": ant_v5.AntEnv,
    }[body]
    return cls()


def _agreement(
    body: str, steps: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, float]:
    """Max abs differences, MJX vs gymnasium (C), over ``steps`` random actions from one reset.

    ``*_free``: both run freely from the same reset state (chaotic contacts make them drift apart,
    so only the first 5 steps are compared); ``*_step``: each MJX step starts from C's full state
    (``mjx.put_data``) before that step, so every step of the trajectory is checked.
    """
    env, params = make(f"{body}-v5")
    ref = _gymnasium_env(body, monkeypatch, tmp_path)
    obs0, state0 = jax.jit(env.reset)(jax.random.PRNGKey(1), params)
    ref.reset(seed=0)
    ref.set_state(
        np.asarray(state0.data.qpos, np.float64), np.asarray(state0.data.qvel, np.float64)
    )
    reset_obs = float(np.abs(np.asarray(obs0) - ref._get_obs()[: env.obs_dim]).max())
    actions = np.asarray(
        jax.random.uniform(jax.random.PRNGKey(2), (steps, ACTION_DIM[body]), minval=-1, maxval=1)
    )
    snapshots, c_obs, c_rew, c_term = [], [], [], []
    for a in actions:
        snapshots.append(mjx.put_data(ref.model, ref.data))
        obs, rew, term, _, _ = ref.step(a.astype(np.float64))
        c_obs.append(obs)
        c_rew.append(rew)
        c_term.append(term)
        if term:  # gymnasium needs a reset after termination: compare up to here
            break
    k, k_free = len(c_obs), min(len(c_obs), 5)
    c_obs, c_rew, c_term = np.asarray(c_obs), np.asarray(c_rew), np.asarray(c_term)
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *snapshots)
    batch = jax.device_put(batch, jax.devices()[0])

    def _from_c(data, action):
        state = EnvState(data=data, time=jnp.zeros((), jnp.int32))
        obs, _, reward, terminated, _ = env.step_env(jax.random.PRNGKey(0), state, action, params)
        return obs, reward, terminated

    def _free(state, actions):
        def body_fn(state, action):
            obs, state, reward, terminated, _ = env.step_env(
                jax.random.PRNGKey(0), state, action, params
            )
            return state, (obs, reward)

        return jax.lax.scan(body_fn, state, actions)[1]

    run = jax.jit(
        lambda b, s, a: (jax.vmap(_from_c)(b, a), _free(s, a[:k_free])), compiler_options=FAST
    )
    (m_obs, m_rew, m_term), (f_obs, f_rew) = jax.tree.map(
        np.asarray, run(batch, state0, jnp.asarray(actions[:k], jnp.float32))
    )
    assert m_obs.shape == c_obs.shape and m_rew.shape == c_rew.shape
    n_pos = len(EXPECTED_KEPT[body]["P"])
    n_vel = len(EXPECTED_KEPT[body]["V"])
    obs_err = np.abs(m_obs - c_obs)
    return {
        "steps": k,
        "reset_obs": reset_obs,
        # per step (teacher-forced), shape (k,): max over the obs part, and the reward error
        "pos_step": obs_err[:, :n_pos].max(axis=1),
        "vel_step": obs_err[:, n_pos : n_pos + n_vel].max(axis=1),
        "reward_step": np.abs(m_rew - c_rew),
        "term_mismatch": int((m_term != c_term).sum()),
        "obs_free": float(np.abs(f_obs - c_obs[:k_free]).max()),
        "reward_free": float(np.abs(f_rew - c_rew[:k_free]).max()),
    }


@pytest.mark.slow
def test_halfcheetah_agrees_with_gymnasium_c_mujoco_on_the_same_actions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    diff = _agreement("HalfCheetah", 30, monkeypatch, tmp_path)
    assert diff["steps"] == 30 and diff["term_mismatch"] == 0 and diff["reset_obs"] < 1e-6
    # measured: positions 2e-5, velocities 1e-4, reward 1e-6 (float32 MJX vs float64 C)
    assert diff["pos_step"].max() < 1e-3 and diff["vel_step"].max() < 1e-2
    assert diff["reward_step"].max() < 1e-4
    assert diff["obs_free"] < 1e-3 and diff["reward_free"] < 1e-4


# A pole on a cart: two joints, one motor, no contacts; MJX compiles its step in a few seconds.
TINY_XML = """
<mujoco>
  <option timestep="0.01"><flag contact="disable" constraint="disable"/></option>
  <worldbody>
    <body name="cart">
      <joint name="slide" type="slide" axis="1 0 0" damping="0.2"/>
      <geom type="box" size="0.2 0.1 0.05" mass="2" contype="0" conaffinity="0"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.6" size="0.04" mass="0.5" contype="0"
              conaffinity="0"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="slide" gear="5" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


def test_physics_step_equals_c_mujoco_on_a_tiny_model() -> None:
    """``MJXPhysics``: ``init_data`` (gymnasium's ``set_state``) then ``frame_skip`` physics steps
    under the given control equal C MuJoCo's ``mj_forward`` + ``mj_step``s, env step by env step
    (the locomotion bodies' agreement with gymnasium: ``-m slow``)."""
    mj_model = mujoco.MjModel.from_xml_string(TINY_XML)
    physics = MJXPhysics(mj_model, frame_skip=3)
    assert physics.dt == pytest.approx(0.03)
    qpos0, qvel0 = np.array([0.1, 0.3]), np.array([0.0, -0.5])
    actions = np.array([[1.0], [-0.4], [0.7], [0.0]])
    c = mujoco.MjData(mj_model)
    c.qpos[:], c.qvel[:] = qpos0, qvel0
    mujoco.mj_forward(mj_model, c)
    c_states = []
    for a in actions:
        c.ctrl[:] = a
        for _ in range(3):
            mujoco.mj_step(mj_model, c)
        c_states.append(np.concatenate([c.qpos, c.qvel]))

    @functools.partial(jax.jit, compiler_options=FAST)
    def run(qpos: jax.Array, qvel: jax.Array, actions: jax.Array) -> jax.Array:
        def body_fn(data: mjx.Data, action: jax.Array) -> tuple[mjx.Data, jax.Array]:
            data = physics.physics_step(data, action)
            return data, jnp.concatenate([data.qpos, data.qvel])

        return jax.lax.scan(body_fn, physics.init_data(qpos, qvel), actions)[1]

    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    states = np.asarray(run(f32(qpos0), f32(qvel0), f32(actions)))
    np.testing.assert_allclose(states, np.asarray(c_states), rtol=1e-4, atol=1e-4)
    assert np.abs(np.diff(states, axis=0)).min(axis=0).max() > 1e-3  # it really moved


@pytest.mark.parametrize("body", list(BODIES))
def test_reward_obs_and_termination_equal_gymnasium_on_c_mujoco_transitions(
    body: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """gymnasium v5's reward, observation and termination, computed by the MJX env from the states
    C MuJoCo (gymnasium's own env) stepped through: no MJX physics compiled (the agreement of the
    physics itself is ``-m slow``; ``test_physics_step_equals_c_mujoco_on_a_tiny_model``)."""
    env, _ = make(f"{body}-v5")
    ref = _gymnasium_env(body, monkeypatch, tmp_path)
    ref.reset(seed=0)
    actions = np.asarray(
        jax.random.uniform(jax.random.PRNGKey(2), (8, ACTION_DIM[body]), minval=-1, maxval=1)
    )
    before, after, c_obs, c_rew, c_term = [], [], [], [], []
    for a in actions:
        before.append(mjx.put_data(ref.model, ref.data))
        obs, rew, term, _, _ = ref.step(a.astype(np.float64))
        after.append(mjx.put_data(ref.model, ref.data))
        c_obs.append(obs)
        c_rew.append(rew)
        c_term.append(term)
        if term:  # gymnasium needs a reset after termination: compare up to here
            break
    stack = lambda xs: jax.device_put(jax.tree.map(lambda *x: np.stack(x), *xs))  # noqa: E731

    @jax.jit
    def derived(before: mjx.Data, after: mjx.Data, action: jax.Array) -> tuple:
        reward = jax.vmap(env.reward)(before, after, action)
        return jax.vmap(env.full_obs)(after), reward, jax.vmap(env.is_terminated_data)(after)

    k = len(c_obs)
    obs, reward, terminated = jax.tree.map(
        np.asarray, derived(stack(before), stack(after), jnp.asarray(actions[:k], jnp.float32))
    )
    assert k >= 5 and obs.shape == (k, OBS_DIM[body])
    np.testing.assert_allclose(obs, np.asarray(c_obs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reward, np.asarray(c_rew), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(terminated, np.asarray(c_term))


@pytest.mark.slow
@pytest.mark.parametrize("body", ["Hopper", "Walker2d"])
def test_planar_body_agrees_with_gymnasium_c_mujoco_on_the_same_actions(
    body: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    diff = _agreement(body, 30, monkeypatch, tmp_path)
    # random torques topple them: compared up to gymnasium's termination (measured 18 / 15 steps)
    assert diff["steps"] >= 10 and diff["term_mismatch"] == 0 and diff["reset_obs"] < 1e-6
    # measured: obs <= 5e-5, reward <= 2e-6
    assert diff["pos_step"].max() < 1e-3 and diff["vel_step"].max() < 1e-2
    assert diff["reward_step"].max() < 1e-4
    assert diff["obs_free"] < 1e-3 and diff["reward_free"] < 1e-4


@pytest.mark.slow
def test_ant_agrees_with_gymnasium_c_mujoco_except_at_foot_impacts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    diff = _agreement("Ant", 30, monkeypatch, tmp_path)
    assert diff["steps"] == 30 and diff["term_mismatch"] == 0 and diff["reset_obs"] < 1e-6
    # steps without a new contact agree as tightly as the planar bodies ...
    assert np.median(diff["reward_step"]) < 1e-4
    # ... steps with a foot impact do not (contact impulses from MJX's float32 solver; measured:
    # positions 5e-3, velocities 0.47, reward 0.05 in the worst of 30 steps)
    assert diff["pos_step"].max() < 2e-2 and diff["vel_step"].max() < 2.0
    assert diff["reward_step"].max() < 0.2 and diff["reward_free"] < 0.2


def _rollout(env: MJXEnv, params, steps: int, seed: int = 7):
    """``steps`` vmapped gymnax steps (auto-reset) of N envs with random actions, compiled."""
    n_act = env.action_space(params).shape[0]

    def run(key: jax.Array):
        key_reset, key_roll = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, N), params)

        def body_fn(state, key):
            key_a, key_s = jax.random.split(key)
            action = jax.random.uniform(key_a, (N, n_act), minval=-1.0, maxval=1.0)
            keys = jax.random.split(key_s, N)
            obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                keys, state, action, params
            )
            # what gymnax's auto-reset starts from: reset_env(split(key)[1]) of the step key
            obs_reset, _ = jax.vmap(lambda k: env.reset_env(jax.random.split(k)[1], params))(keys)
            out = (obs, state.time, reward, term, trunc, info["final_observation"], obs_reset)
            return state, out

        return jax.lax.scan(body_fn, state, jax.random.split(key_roll, steps))[1]

    return jax.tree.map(np.asarray, jax.jit(run, compiler_options=FAST)(jax.random.PRNGKey(seed)))


def _check_time_limit_and_auto_reset(env: MJXEnv, params) -> None:
    """HalfCheetah-v5-P with a 3-step limit, 7 steps: truncation, auto-reset, final observation."""
    obs, time, reward, term, trunc, final_obs, obs_reset = _rollout(env, params, steps=7)
    assert obs.shape == (7, N, 8) and np.isfinite(obs).all() and np.isfinite(reward).all()
    assert not term.any()  # HalfCheetah never terminates
    np.testing.assert_array_equal(trunc.sum(axis=1), [0, 0, N, 0, 0, N, 0])  # steps 3 and 6
    np.testing.assert_array_equal(time[:, 0], [1, 2, 0, 1, 2, 0, 1])
    # after an ending step the returned obs is a fresh reset's; the last obs is in info
    np.testing.assert_array_equal(obs[trunc], obs_reset[trunc])
    assert np.abs(obs[trunc] - final_obs[trunc]).max() > 1e-3
    np.testing.assert_array_equal(obs[~trunc], final_obs[~trunc])
    # a reset obs: qpos0 (zeros) + U(+-0.1) noise on the kept positions
    assert np.abs(obs[trunc]).max() <= 0.1


@pytest.mark.slow
def test_halfcheetah_is_truncated_at_the_time_limit_and_auto_resets() -> None:
    _check_time_limit_and_auto_reset(*make("HalfCheetah-v5-P", max_steps_in_episode=3))


def test_time_limit_and_auto_reset_around_a_stand_in_physics_step(monkeypatch) -> None:
    """The env's own logic (time limit, auto-reset, final observation, the P mask, reward) around
    a cheap stand-in for MJX's physics, so that no ``mjx.step`` compiles: every joint drifts by
    0.05 per step, the velocities follow the action (the real physics: ``-m slow`` above)."""
    env, params = make("HalfCheetah-v5-P", max_steps_in_episode=3)
    model = env.physics.mjx_model

    def init_data(qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        return mjx.make_data(model).replace(qpos=qpos, qvel=qvel)

    def physics_step(data: mjx.Data, action: jax.Array) -> mjx.Data:
        return data.replace(qpos=data.qpos + 0.05, qvel=data.qvel + action.sum(), ctrl=action)

    monkeypatch.setattr(env.physics, "init_data", init_data)
    monkeypatch.setattr(env.physics, "physics_step", physics_step)
    _check_time_limit_and_auto_reset(env, params)


@pytest.mark.slow
def test_hopper_falls_terminates_and_auto_resets() -> None:
    env, params = make("Hopper-v5-P")
    obs, time, reward, term, trunc, final_obs, obs_reset = _rollout(env, params, steps=200)
    assert term.any(axis=0).all()  # random torques topple every hopper within 200 steps
    assert not trunc.any()
    # the terminating step is unhealthy: fallen (z <= 0.7) or tilted (|angle| >= 0.2)
    z, angle = final_obs[term][:, 0], final_obs[term][:, 1]
    assert ((z <= 0.7) | (np.abs(angle) >= 0.2)).all()
    np.testing.assert_array_equal(obs[term], obs_reset[term])
    assert (time[term] == 0).all() and (time[~term] > 0).all()
    # reset obs: z = 1.25 and angles 0, each +- 0.005
    np.testing.assert_allclose(obs[term][:, 0], 1.25, atol=5e-3)
    # healthy steps earn the healthy reward 1 on top of a small forward / control term
    assert np.median(reward[~term]) > 0.5


def test_check_suggests_the_v5_id_for_an_older_mujoco_version() -> None:
    with pytest.raises(UserError, match="did you mean 'HalfCheetah-v5'"):
        check("HalfCheetah-v4")
