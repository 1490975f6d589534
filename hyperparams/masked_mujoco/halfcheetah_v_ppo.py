"""Recurrent (GRU) PPO on HalfCheetah-v5-V (MJX; velocities only): lr x lambda vmapped, 5 seeds.

The 8 positions (height, angles) are hidden, so the GRU must integrate them from velocities
(POBAX's masked-MuJoCo task on gymnasium's HalfCheetah-v5 dynamics and rewards; POBAX's own
HalfCheetah-V-v0 is brax's halfcheetah with other features hidden, as in walker_ppo.py). Settings
follow the published PPO MuJoCo defaults (Schulman et al. 2017; PureJaxRL's ppo_continuous_action):
lr 3e-4, gamma 0.99, GAE lambda 0.95, clip 0.2, no entropy bonus, 0.5 value coefficient and
grad-norm clip, 10 epochs; rollouts of 64 envs x 128 steps split into 4 minibatches along the env
axis (recurrent PPO keeps time order). Continuous actions need PPO's Gaussian head.
HalfCheetah never terminates (1000-step episodes); a good PPO run returns 1500-3000.
"""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {
            "env": "HalfCheetah-v5-V",
            "lr": vmap([1e-3, 3e-4, 1e-4]),
            "lambda0": vmap([0.9, 0.95]),
            "hidden_size": 128,
            "num_envs": 64,
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
            "n_seeds": 5,
        }
    ],
}
