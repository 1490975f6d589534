"""Recurrent (GRU) PPO on craftax_pixels (Craftax, POBAX's 27-row image, CNN encoder), 43 actions.

POBAX's best Craftax settings (scripts/hyperparams/craftax/best/craftax_ppo_best.py: lr 2.5e-4,
lambda0 0.5, anneal_lr, entropy 0.01, 4 minibatches, 64 steps per rollout) at a CPU-sized
budget: 16 envs (POBAX: 256), hidden 128 (POBAX: 512), 5e5 steps (POBAX: 5e8), 3 seeds; in
POBAX's own format (entry `-m pobax.algos.ppo`). No action_concat (POBAX ignores it for Craftax).
The first task on a fresh install waits for craftax to prepare its textures (minutes, once).
"""

from pathlib import Path

exp_name = Path(__file__).stem

hparams = {
    "file_name": f"runs_{exp_name}.txt",
    "entry": "-m pobax.algos.ppo",
    "args": [
        {
            "env": "craftax_pixels",
            "double_critic": False,
            "memoryless": False,
            "lr": 2.5e-4,
            "anneal_lr": True,
            "hidden_size": 128,
            "lambda0": 0.5,
            "lambda1": 0.95,
            "entropy_coeff": 0.01,
            "num_minibatches": 4,
            "num_steps": 64,
            "num_envs": 16,
            "total_steps": int(5e5),
            "seed": 2024,
            "n_seeds": 3,
            "platform": "cpu",
            "study_name": exp_name,
        }
    ],
}
