"""Visual MuJoCo (``<body>-pixels``): image shapes under jit/vmap, the CPU renderer draws the body
and the floor and the image changes when the body moves, the Madrona renderer's refusal and
declaration, the CNN encoder's shapes.

Shapes are checked with ``jax.eval_shape`` (traced, not compiled); the one compiled check renders
Hopper through ``mjx.forward`` (no ``mjx.step``: a fraction of the compile time) at 16 x 16 with
XLA's backend optimisation level 0. The PPO smoke run is ``@pytest.mark.slow``.
"""

from __future__ import annotations

import logging
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.agents.networks import ActionSpec, make_network
from sweepax.envs import registry
from sweepax.envs.pixels import PIXEL_IDS, PixelMJXEnv
from sweepax.errors import UserError

FAST = {"xla_backend_optimization_level": 0}
N = 3  # vmapped envs
SIZE = 16  # test image side
ACTION_DIM = {"hopper": 3, "walker2d": 6, "halfcheetah": 6, "ant": 8}


def test_pixel_ids_are_registered_with_the_renderer_choice_and_their_vmappability() -> None:
    assert set(PIXEL_IDS) == {
        "hopper-pixels",
        "walker2d-pixels",
        "halfcheetah-pixels",
        "ant-pixels",
    }
    for env_id in (*PIXEL_IDS, "ant-pixels-32"):
        registry.check(env_id)
        assert registry.vmappable(env_id) and registry.vmappable(env_id, "jax")
        assert not registry.vmappable(env_id, "madrona")
    assert registry.vmappable("Hopper-v5", "madrona")  # only image families declare anything
    with pytest.raises(UserError, match="renderer 'madrona' applies only to"):
        registry.make("CartPole-v1", renderer="madrona")
    with pytest.raises(UserError, match="image size must be 8..512"):
        registry.check("hopper-pixels-4")


@pytest.mark.parametrize("env_id", PIXEL_IDS)
def test_pixel_env_shapes_and_dtypes_under_jit_and_vmap(env_id: str) -> None:
    env, params = registry.make(f"{env_id}-{SIZE}")
    assert env.name == f"{env_id}-{SIZE}" and env.vmappable
    assert env.obs_shape == (SIZE, SIZE, 2) and env.obs_dim == SIZE * SIZE * 2
    assert env.observation_space(params).shape == (env.obs_dim,)
    keys = jax.random.split(jax.random.key(0), N)
    obs, state = jax.eval_shape(jax.jit(jax.vmap(env.reset, in_axes=(0, None))), keys, params)
    assert (obs.shape, obs.dtype) == ((N, env.obs_dim), jnp.float32)
    actions = jax.ShapeDtypeStruct((N, ACTION_DIM[env_id.split("-")[0]]), jnp.float32)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs2, _, reward, terminated, truncated, _ = jax.eval_shape(step, keys, state, actions, params)
    assert (obs2.shape, obs2.dtype) == ((N, env.obs_dim), jnp.float32)
    assert reward.shape == terminated.shape == truncated.shape == (N,)
    image = jax.eval_shape(jax.vmap(env.render), state.data)
    assert (image.shape, image.dtype) == ((N, SIZE, SIZE, 2), jnp.float32)


def test_cpu_renderer_draws_body_and_floor_and_the_image_changes_when_the_body_moves() -> None:
    env, _ = registry.make(f"hopper-pixels-{SIZE}")
    physics = env.physics
    nv = physics.mj_model.nv

    def _images(qpos: jax.Array) -> jax.Array:
        return jax.vmap(lambda q: env.render(physics.init_data(q, jnp.zeros(nv))))(qpos)

    qpos0 = np.asarray(physics.mj_model.qpos0, np.float32)
    slid = qpos0.copy()
    slid[0] += 0.3  # the whole body 0.3 m forward: the camera follows, the floor slides by
    bent = qpos0.copy()
    bent[3:6] = (-0.8, -0.8, 0.5)  # thigh, leg, foot joints bent: the body's outline changes
    render = jax.jit(_images, compiler_options=FAST)
    still, moved, posed = np.asarray(render(jnp.asarray(np.stack([qpos0, slid, bent]))))
    depth, shade = still[..., 0], still[..., 1]
    assert np.all((still >= 0) & (still <= 1))
    assert depth.std() > 0.05 and shade.std() > 0.05  # not a constant image
    assert (depth == 0).any() and (depth > 0).any()  # sky above, floor and body below
    assert len(np.unique(shade.round(3))) >= 3  # sky, both floor squares, body
    body = np.isclose(shade, env._geom_shade[1:].max())  # the hopper's grey, not the floor's
    assert body.any()
    # sliding: the tracked body stays put in the image, the checkerboard moves
    assert (np.isclose(moved[..., 1], env._geom_shade[1:].max()) == body).mean() > 0.95
    assert not np.allclose(moved[..., 1], shade)
    # bending the legs: the silhouette (depth) changes
    assert np.abs(posed[..., 0] - depth).max() > 0.05


def test_madrona_renderer_refuses_in_one_line_when_madrona_mjx_is_missing(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "madrona_mjx", None)  # import fails, installed or not
    with pytest.raises(UserError) as err:
        registry.make("ant-pixels-16", renderer="madrona")
    message = str(err.value)
    assert "\n" not in message and "madrona_mjx" in message and "not installed here" in message
    assert "unmaintained upstream" in message and "jax < 0.6" in message
    assert 'use renderer: "warp"' in message
    with pytest.raises(UserError, match="not installed here"):
        PixelMJXEnv("Ant", image_size=16, renderer="madrona")


def test_madrona_renderer_declares_no_vmap_and_logs_its_compile(monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "madrona_mjx", types.ModuleType("madrona_mjx"))
    with caplog.at_level(logging.WARNING, logger="sweepax.envs.pixels"):
        env = PixelMJXEnv("Ant", image_size=16, renderer="madrona")
    assert env.vmappable is False
    assert "Madrona compiles its renderer on first use (minutes)" in caplog.text


@pytest.mark.parametrize("memoryless", [False, True])
def test_cnn_encoder_reads_the_flat_image_and_appends_extra_features(memoryless: bool) -> None:
    obs_shape, extra, hidden, steps, batch = (SIZE, SIZE, 2), 3, 8, 2, 2
    net = make_network(memoryless, ActionSpec(3, continuous=True), hidden, obs_shape=obs_shape)
    obs = jnp.zeros((steps, batch, SIZE * SIZE * 2 + extra))
    x = (obs, jnp.zeros((steps, batch), bool))
    carry = net.initialize_carry(batch)
    params = jax.eval_shape(net.init, jax.random.key(0), carry, x)
    kernels = params["params"]["cnn"]
    assert [kernels[f"Conv_{i}"]["kernel"].shape[-1] for i in range(3)] == [16, 32, 32]
    assert kernels["Dense_0"]["kernel"].shape == (2 * 2 * 32, hidden)  # 16 -> 8 -> 4 -> 2
    first = params["params"]["Dense_0"]["kernel"].shape
    assert first == (hidden + extra, hidden)  # CNN features + the appended extras
    _, (mean, _), value = jax.eval_shape(net.apply, params, carry, x)
    assert mean.shape == (steps, batch, 3) and value.shape == (steps, batch)
    vector = make_network(memoryless, ActionSpec(3, continuous=True), hidden)
    vector_params = jax.eval_shape(vector.init, jax.random.key(0), carry, (obs[..., :5], x[1]))
    assert "cnn" not in vector_params["params"]


@pytest.mark.slow
def test_ppo_trains_a_few_updates_on_hopper_pixels() -> None:
    from sweepax.agents.config import PPOStatic, PPOSweep
    from sweepax.agents.ppo import make_sweep_fn

    static = PPOStatic(
        env=f"hopper-pixels-{SIZE}", num_envs=2, num_steps=4, total_steps=16,
        num_minibatches=1, update_epochs=1, hidden_size=16, eval_steps=4, action_concat=True,
    )  # fmt: skip
    sweep = jax.tree.map(lambda x: jnp.asarray([x]), PPOSweep())
    metrics = make_sweep_fn(static)(sweep, jnp.asarray([0]))
    assert metrics.loss_total.shape == (1, 1, static.num_updates)
    assert np.all(np.isfinite(np.asarray(metrics.loss_total)))
