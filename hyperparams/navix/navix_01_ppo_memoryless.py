"""Memoryless PPO on Navix-DMLab-Maze-01-v0: the baseline that cannot remember where it has been.

A small sweep in POBAX's own format (POBAX's scripts/hyperparams/navix/navix_01_*.py, entry
`-m pobax.algos.ppo`, which sweepax plans as its `ppo` with POBAX's defaults): POBAX's settings
(action_concat, anneal_lr, entropy 0.01, 16 envs x 128 steps) at a CPU-sized budget: 2 learning
rates x 2 GAE lambdas vmapped in one program, hidden 128 (POBAX: 256), 1e6 steps (POBAX: 1e7),
3 seeds. Reward 1 on reaching the goal (time limit 2000 steps), gamma 0.99 (the maze's).
"""

from pathlib import Path

exp_name = Path(__file__).stem

lrs = [2.5e-4, 2.5e-5]
lambda0s = [0.9, 0.95]
lambda1s = [0.5]
alphas = [1]
ld_weights = [0]

hparams = {
    "file_name": f"runs_{exp_name}.txt",
    "entry": "-m pobax.algos.ppo",
    "args": [
        {
            "env": "Navix-DMLab-Maze-01-v0",
            "double_critic": False,
            "memoryless": True,
            "action_concat": True,
            "lr": " ".join(map(str, lrs)),
            "anneal_lr": True,
            "hidden_size": 128,
            "lambda0": " ".join(map(str, lambda0s)),
            "lambda1": " ".join(map(str, lambda1s)),
            "alpha": " ".join(map(str, alphas)),
            "ld_weight": " ".join(map(str, ld_weights)),
            "entropy_coeff": 0.01,
            "num_steps": 128,
            "num_envs": 16,
            "total_steps": int(1e6),
            "seed": 2024,
            "n_seeds": 3,
            "platform": "cpu",
            "study_name": exp_name,
        }
    ],
}
