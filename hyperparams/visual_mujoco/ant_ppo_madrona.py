"""Recurrent (GRU) PPO on ant-pixels rendered by Madrona-MJX on GPU: lr x GAE lambda, 3 seeds.

Visual MuJoCo with the Madrona batch renderer (``renderer: "madrona"``). Madrona cannot
be vmapped across hyperparameters or seeds, so the planner gives each of the 6 configs x 3 seeds
its own task (18 tasks, ``--seed s --n_seeds 1``) and notes it in the plan output; Madrona
compiles its renderer on first use (minutes) in every task. Needs ``madrona_mjx``, which the
image does not build: Madrona-MJX is unmaintained upstream and its JAX bridge needs jax < 0.6, so
where it is missing each task stops at once with one line saying so and naming
``renderer: "jax"``. The same study with ``renderer: "jax"`` runs anywhere (slower, same image
shape) as one vmapped task. Settings as
``hyperparams/visual_mujoco/hopper_ppo_pixels.py``. Return: about 1000 for standing still the
whole episode.
"""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {
            "env": "ant-pixels",
            "renderer": "madrona",
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
