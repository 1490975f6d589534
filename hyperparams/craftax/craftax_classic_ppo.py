"""Recurrent (GRU) PPO on craftax_classic (Craftax-Classic, symbolic observation, 17 actions).

A small sweep in POBAX's own format (POBAX's scripts/hyperparams/craftax/craftax_ppo.py, entry
`-m pobax.algos.ppo`, which sweepax plans as its `ppo` with POBAX's defaults): POBAX's settings
(anneal_lr, entropy 0.01, 4 minibatches, 64 steps per rollout) at a CPU-sized budget: 2 learning
rates x 2 GAE lambdas vmapped in one program, 16 envs (POBAX: 256), hidden 128 (POBAX: 512),
1e6 steps (POBAX: 5e8), 3 seeds. The symbolic Classic game instead of POBAX's craftax_pixels:
the same game's cheapest observation. No action_concat (POBAX ignores it for Craftax). Reward:
craftax's (achievements, health change / 10); gamma 0.99 (POBAX's default).
"""

from pathlib import Path

exp_name = Path(__file__).stem

lrs = [2.5e-4, 2.5e-5]
lambda0s = [0.5, 0.9]
lambda1s = [0.95]
alphas = [1]
ld_weights = [0]

hparams = {
    "file_name": f"runs_{exp_name}.txt",
    "entry": "-m pobax.algos.ppo",
    "args": [
        {
            "env": "craftax_classic",
            "double_critic": False,
            "memoryless": False,
            "lr": " ".join(map(str, lrs)),
            "anneal_lr": True,
            "hidden_size": 128,
            "lambda0": " ".join(map(str, lambda0s)),
            "lambda1": " ".join(map(str, lambda1s)),
            "alpha": " ".join(map(str, alphas)),
            "ld_weight": " ".join(map(str, ld_weights)),
            "entropy_coeff": 0.01,
            "num_minibatches": 4,
            "num_steps": 64,
            "num_envs": 16,
            "total_steps": int(1e6),
            "seed": 2024,
            "n_seeds": 3,
            "platform": "cpu",
            "study_name": exp_name,
        }
    ],
}
