"""Demo: memoryless (MLP) PPO on T-Maze 5, 3 lrs x 2 GAE lambdas x 3 seeds in one program."""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {
            "env": "tmaze_5",
            "action_concat": True,
            "memoryless": True,
            "lr": vmap([1e-3, 3e-3, 1e-2]),
            "lambda0": vmap([0.5, 0.9]),
            "hidden_size": 32,
            "num_envs": 8,
            "num_steps": 64,
            "total_steps": 60_000,
            "eval_steps": 200,
            "seed": 2024,
            "n_seeds": 3,
        }
    ],
}
