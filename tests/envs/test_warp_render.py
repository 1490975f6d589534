"""Visual MuJoCo on MJX's Warp batch renderer (``renderer="warp"``), on Warp's CPU device.

Warp compiles its kernels on first use (about 20 s cold, cached in ~/.cache/warp), so these run
under the ``renderer`` marker: ``nox -s renderer_tests``.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from sweepax.envs import pixels, registry
from sweepax.results import store

pytestmark = pytest.mark.renderer

SIZE = 24
# Warp's depth is the distance along the camera's view axis; the ray caster's is along each
# ray, so it is compared after projecting onto the view axis (float32 arithmetic, metres).
DEPTH_TOL_M = 1e-3


@pytest.fixture(scope="module")
def envs():
    warp_env, params = registry.make(f"hopper-pixels-{SIZE}", renderer="warp")
    jax_env, _ = registry.make(f"hopper-pixels-{SIZE}", renderer="jax")
    return warp_env, jax_env, params


def _warp_depth_m(env, data) -> np.ndarray:
    return np.asarray(jax.jit(env._warp.images)(data)[1])[..., 0] * pixels.FAR


def test_warp_depth_agrees_with_the_ray_casters_for_the_same_camera_and_state(envs) -> None:
    warp_env, jax_env, _ = envs
    qpos = jnp.asarray(jax_env._init_qpos).at[2].set(0.15).at[3].set(-0.4)
    qvel = jnp.zeros(jax_env.physics.mj_model.nv)
    warp_m = _warp_depth_m(warp_env, warp_env.physics.init_data(qpos, qvel))
    cast = np.asarray(jax.jit(jax_env.render)(jax_env.physics.init_data(qpos, qvel)))
    fovy = float(jax_env.physics.mj_model.cam_fovy[jax_env._cam])
    view_axis = -pixels.camera_rays(SIZE, SIZE, fovy)[:, 2].reshape(SIZE, SIZE)
    cast_hit = cast[..., 1] > 0  # shade is 0 only where a ray hits nothing
    cast_m = (1 - cast[..., 0]) * pixels.FAR * view_axis
    near = cast_hit & (cast[..., 0] > 0.01)  # inside FAR, where neither is clipped
    assert near.sum() > SIZE * SIZE // 4  # the body and the floor in front of the camera
    assert np.abs(warp_m - cast_m)[near].max() < DEPTH_TOL_M
    assert np.all(warp_m[~cast_hit] == 0)  # sky: nothing hit in either


def test_bending_the_foot_changes_only_the_image_below_the_torso_and_lifting_moves_the_floor(
    envs,
) -> None:
    warp_env, _, params = envs
    physics = warp_env.physics
    qpos0 = jnp.asarray(warp_env._init_qpos)
    qvel = jnp.zeros(physics.mj_model.nv)
    render = jax.jit(warp_env.render)
    base = np.asarray(render(physics.init_data(qpos0, qvel)))
    assert base.shape == (SIZE, SIZE, 3) and base.min() >= 0 and base.max() <= 1
    foot = np.asarray(render(physics.init_data(qpos0.at[5].set(0.8), qvel)))
    changed_rows = np.nonzero(np.abs(foot - base).max(axis=(1, 2)) > 1e-3)[0]
    assert changed_rows.size > 0 and changed_rows.min() >= SIZE // 3  # the foot is low
    lifted = np.asarray(render(physics.init_data(qpos0.at[1].add(0.5), qvel)))
    assert np.abs(lifted - base).max() > 0.1  # the camera follows the body: the floor moves


def test_vmapped_configs_and_seeds_equal_separate_runs(envs) -> None:
    warp_env, _, params = envs
    num_envs = 3
    actions = jnp.linspace(-0.8, 0.8, num_envs * 3).reshape(num_envs, 3)

    def run(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        keys = jax.random.split(key, num_envs)
        obs, state = jax.vmap(warp_env.reset, in_axes=(0, None))(keys, params)
        step = jax.vmap(warp_env.step, in_axes=(0, 0, 0, None))
        obs2, _, reward, *_ = step(keys, state, actions, params)
        return obs, obs2, reward

    cells = jax.random.split(jax.random.key(3), 4).reshape(2, 2)  # [config, seed]
    together = jax.jit(jax.vmap(jax.vmap(run)))(cells)
    for i in range(2):
        for j in range(2):
            alone = jax.jit(run)(cells[i, j])
            for a, b in zip(alone, together, strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b[i, j]))
    assert float(jnp.abs(together[1][0, 0] - together[1][1, 1]).max()) > 0  # cells differ
    assert registry.vmappable("hopper_pixels", "warp")
    assert not registry.vmappable("hopper_pixels", "madrona")


def test_every_world_of_a_large_batch_steps_as_it_steps_alone(envs) -> None:
    """MJX's Warp Data shares one contact buffer across the worlds of a vmapped batch, sized for
    one world: 64 worlds on the floor overflow it, and the last worlds would lose their contacts."""
    physics = envs[0].physics
    qpos0 = jnp.asarray(physics.mj_model.qpos0)
    nu = physics.mj_model.nu

    def run(key: jax.Array) -> jax.Array:
        data = physics.init_data(qpos0 + 0.05 * jax.random.normal(key, qpos0.shape), qpos0 * 0)

        def step(data, key):
            return physics.physics_step(data, jax.random.uniform(key, (nu,), minval=-1)), None

        return jax.lax.scan(step, data, jax.random.split(key, 8))[0].qpos

    keys = jax.random.split(jax.random.key(5), 64)
    together = np.asarray(jax.jit(jax.vmap(jax.vmap(run)))(keys.reshape(8, 8))).reshape(64, -1)
    alone = jax.jit(run)
    for world in (0, 61, 62, 63):
        np.testing.assert_array_equal(together[world], np.asarray(alone(keys[world])))


def test_pobax_pixel_ids_are_32_pixel_rgb_in_unit_range() -> None:
    for body in ("hopper", "walker2d", "halfcheetah", "ant"):
        registry.check(f"{body}_pixels", "warp")
    env, params = registry.make("hopper_pixels", renderer="warp")
    assert env.env_id == "hopper_pixels" and env.obs_shape == (32, 32, 3)
    obs, _ = jax.jit(env.reset)(jax.random.key(0), params)
    assert obs.shape == (32 * 32 * 3,) and float(obs.min()) >= 0 and float(obs.max()) <= 1


def test_a_short_ppo_run_on_hopper_pixels_with_warp_writes_a_complete_store(tmp_path) -> None:
    argv = ["ppo", "--study", "w", "--env", "hopper_pixels", "--renderer", "warp",
            "--total_steps", "256", "--num_steps", "32", "--num_envs", "4", "--hidden_size", "8",
            "--num_minibatches", "2", "--update_epochs", "1", "--eval_steps", "32",
            "--lr", "0.001", "0.0003", "--n_seeds", "2"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.train", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = (tmp_path / "results" / "w").glob("*.zarr")
    ds = xr.open_zarr(path, consolidated=None)
    assert ds.sizes == {"config": 2, "seed": 2, "update": 2}
    assert np.isfinite(ds["final_return"].values).all()
    assert list(ds["lr"].values) == [0.001, 0.0003]
    prov = store.read_attrs(path)["provenance"]
    assert prov["renderer"]["warp-lang"] == "1.18.0" and prov["renderer"]["device"] == "cpu"
    # MJX-Warp keeps some of its state once for all worlds (unbatched by vmap): the runs stay
    # on one device, whatever the number of CPU devices
    assert prov["run_split"] == [1, 1]
