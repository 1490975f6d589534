"""PPO with a GTrXL transformer memory on T-Maze 10: lr x GAE lambda vmapped, 10 seeds."""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train transformer",
    "args": [
        {
            "env": "tmaze_10",
            "action_concat": True,
            "lr": vmap([2.5e-3, 2.5e-4, 2.5e-5, 2.5e-6]),
            "lambda0": vmap([0.1, 0.3, 0.5, 0.7, 0.9, 0.95]),
            "hidden_size": 32,
            "embed_size": 12,
            "num_envs": 4,
            "entropy_coeff": 0.01,
            # Per-minibatch advantage normalisation (POBAX's default) turns the rare -0.1 of an
            # early wrong turn into a large negative advantage; some seeds then learn never to turn
            # (experiments/tmaze10/results.md, ablation row). Raw GAE advantages avoid that.
            "normalize_advantages": False,
            "total_steps": 1_000_000,
            "seed": 2024,
            "n_seeds": 10,
        }
    ],
}

# experiments/tmaze10.py, sweep stage: the grid as above, fewer seeds and steps
for _args in hparams["args"]:
    _args.update({"n_seeds": 2, "total_steps": 50000})
