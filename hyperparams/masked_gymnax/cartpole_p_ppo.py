"""Recurrent (GRU) PPO on CartPole-P-v0 (positions x, theta only): lr x GAE lambda vmapped, 5 seeds.

The velocities are hidden, so a memoryless policy cannot balance well; the GRU must infer them
from successive positions. Settings follow PureJaxRL's CartPole PPO (4 envs x 128 steps, 4 epochs,
4 minibatches, clip 0.2, entropy 0.01, gamma 0.99) with the lr / lambda grid of the T-Maze study
trimmed to the usual range; the previous action is appended to the observation as in POBAX.
Return is at most 500 (CartPole-v1's time limit).
"""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {
            "env": "CartPole-P-v0",
            "action_concat": True,
            "lr": vmap([2.5e-3, 2.5e-4, 2.5e-5]),
            "lambda0": vmap([0.5, 0.7, 0.9, 0.95]),
            "hidden_size": 64,
            "num_envs": 4,
            "num_steps": 128,
            "update_epochs": 4,
            "num_minibatches": 4,
            "entropy_coeff": 0.01,
            "gamma": 0.99,
            "total_steps": 1_000_000,
            "seed": 2024,
            "n_seeds": 5,
        }
    ],
}
