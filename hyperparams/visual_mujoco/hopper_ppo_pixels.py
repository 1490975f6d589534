"""Recurrent (GRU) PPO on hopper-pixels (MJX; 64 x 64 depth + shade image, pure-JAX ray casting).

Visual MuJoCo: the agent sees only the ``track`` camera image (``sweepax.envs.pixels``),
which a small CNN encodes in front of the GRU; velocities must be inferred from successive frames
(the floor's checkerboard moving past). The renderer is ``jax`` (MJX ray casting, runs anywhere,
vmappable), so lr x GAE lambda x seeds share one program per task. Settings as
``hyperparams/masked_mujoco/hopper_p_ppo.py`` (published PPO MuJoCo defaults) with fewer envs, as
images make every step and the rollout memory larger (64 x 64 x 2 floats per obs). No
``normalize_obs``: pixels are already in [0, 1]. Return: about 1000 for standing still the whole
episode, 3000+ for a good hopper.
"""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {
            "env": "hopper-pixels",
            "renderer": "jax",
            "lr": vmap([1e-3, 3e-4, 1e-4]),
            "lambda0": vmap([0.9, 0.95]),
            "hidden_size": 128,
            "num_envs": 32,
            "num_steps": 128,
            "update_epochs": 10,
            "num_minibatches": 4,
            "entropy_coeff": 0.0,
            "vf_coeff": 0.5,
            "clip_eps": 0.2,
            "max_grad_norm": 0.5,
            "gamma": 0.99,
            "total_steps": 5_000_000,
            "seed": 2024,
            "n_seeds": 3,
        }
    ],
}
