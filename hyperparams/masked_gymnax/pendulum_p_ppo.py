"""Recurrent (GRU) PPO on Pendulum-P-v0 (cos, sin of the angle only): lr x GAE lambda vmapped.

The angular velocity is hidden, so a memoryless policy cannot swing up and balance well; the GRU
must infer it from successive angles (and the previous torque, appended as in POBAX). Continuous
torque in [-2, 2]: a Gaussian policy head, actions clipped to the bounds when stepping the env.
5 seeds. Settings follow what learns Pendulum-v1 with memoryless PPO here in 2e5 steps (16 envs x
128 steps, 10 epochs, 4 minibatches, gamma 0.9, no entropy bonus, observation normalisation;
``tests/agents/test_continuous.py``), given 1e6 steps for the harder masked task. Returns lie in
about [-1600, 0] per 200-step episode (random play: about -1250).
"""

from sweepax import vmap

hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [
        {
            "env": "Pendulum-P-v0",
            "action_concat": True,
            "normalize_obs": True,
            "lr": vmap([3e-3, 1e-3, 3e-4]),
            "lambda0": vmap([0.5, 0.7, 0.9, 0.95]),
            "hidden_size": 64,
            "num_envs": 16,
            "num_steps": 128,
            "update_epochs": 10,
            "num_minibatches": 4,
            "entropy_coeff": 0.0,
            "gamma": 0.9,
            "total_steps": 1_000_000,
            "seed": 2024,
            "n_seeds": 5,
        }
    ],
}
