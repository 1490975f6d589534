"""Confirmation of tmaze_10_ppo_memoryless: the winner per env by auc (episode_return), on 10 fresh
seeds.

Chosen by `best --confirm` from results/tmaze_10_ppo_memoryless/scores.zarr (parsed
2026-12-03T11:55:00.829799+00:00; sweep seeds 2024..2025) at 2026-12-03T11:55:10+00:00. Seeds: the
sweep's largest + 1 (2026) onwards. Sweep file: sweeps/tmaze_10_ppo_memoryless.py
(53c81870f1a3377f).
"""

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {  # tmaze_10: P(best) 0.173, score 2.097 [1.44, 2.754] over 2 sweep seeds
            "study_name": "tmaze_10_ppo_memoryless_best",
            "env": "tmaze_10",
            "renderer": "jax",
            "memoryless": True,
            "action_concat": True,
            "normalize_obs": False,
            "perfect_memory": False,
            "double_critic": False,
            "hidden_size": 32,
            "num_envs": 4,
            "num_steps": 128,
            "total_steps": 50000,
            "update_epochs": 4,
            "num_minibatches": 4,
            "normalize_advantages": False,
            "anneal_lr": False,
            "gamma": 0.99,
            "eval_steps": 1000,
            "lr": 2.5e-06,
            "lambda0": 0.5,
            "lambda1": 0.95,
            "ld_weight": 0.0,
            "entropy_coeff": 0.01,
            "vf_coeff": 0.5,
            "clip_eps": 0.2,
            "max_grad_norm": 0.5,
            "seed": 2026,
            "n_seeds": 10,
        },
    ],
}
