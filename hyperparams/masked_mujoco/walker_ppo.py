"""PPO on POBAX's masked Walker (brax walker2d): velocities only (Walker-V-v0) vs the full
observation (Walker-F-v0), recurrent (GRU) vs memoryless: the gap masking opens, and how much of it
memory closes.

A small sweep in POBAX's own format (POBAX's scripts/hyperparams/masked_mujoco/best/ppo*/walker_*,
entry `-m pobax.algos.ppo`, which sweepax plans as its `ppo` with POBAX's defaults): POBAX's best
settings for Walker-V-v0 (lr 2.5e-4, GAE lambda 0.95, hidden 256, action_concat) at a CPU-sized
budget: 2 learning rates vmapped in one program, 2e6 steps (POBAX: 5e7), 3 seeds; the 2 ids x
recurrent / memoryless are 4 tasks. Walker-V-v0 hides the 8 positions (height, angles) of brax's
17 features; episodes end when the walker falls or after 1000 steps; gamma 0.99 (POBAX's).
"""

from pathlib import Path

exp_name = Path(__file__).stem

lrs = [2.5e-4, 2.5e-5]
lambda0s = [0.95]
lambda1s = [0.95]

hparams = {
    "file_name": f"runs_{exp_name}.txt",
    "entry": "-m pobax.algos.ppo",
    "args": [
        {
            "env": ["Walker-V-v0", "Walker-F-v0"],
            "memoryless": [False, True],
            "double_critic": False,
            "action_concat": True,
            "lr": " ".join(map(str, lrs)),
            "lambda0": " ".join(map(str, lambda0s)),
            "lambda1": " ".join(map(str, lambda1s)),
            "hidden_size": 256,
            "total_steps": int(2e6),
            "seed": 2025,
            "n_seeds": 3,
            "platform": "cpu",
            "study_name": exp_name,
        }
    ],
}
