"""PPO hyperparameters: which are static (shape-changing) and which are swept inside one program."""

from __future__ import annotations

import dataclasses
import typing as tp

import flax.struct
import jax

from sweepax.envs import names
from sweepax.hparams import fields_of, hp


@dataclasses.dataclass(frozen=True)
class PPOStatic:
    """Static hyperparameters: closed over by ``make_train``; a list of them = separate tasks."""

    env: str = hp("tmaze_5", "environment id (see sweepax.envs.registry), e.g. tmaze_10")
    renderer: str = hp(
        "jax",
        "image envs (*-pixels, *_pixels): 'jax' (MJX ray casting, runs anywhere, vmappable), "
        "'warp' (MJX's Warp batch renderer, RGB, CPU or NVIDIA GPU, vmappable) or 'madrona' "
        "(Madrona-MJX's GPU batch renderer, only where it is installed; cannot vmap: every "
        "config and seed becomes its own task). Unnamed in a sweep file: planned 'warp' when "
        "the study's platform is gpu, else 'jax' (faster on CPU)",
        choices=names.RENDERERS,
        label=False,
    )
    memoryless: bool = hp(False, "MLP policy instead of the GRU (no memory)")
    action_concat: bool = hp(
        False, "append the previous action (one-hot; continuous: as clipped to the env's bounds)"
    )
    normalize_obs: bool = hp(
        False, "normalize observations by running mean/var (frozen for evaluation), clip to +-10"
    )
    perfect_memory: bool = hp(False, "env appends the hidden state the agent must remember")
    double_critic: bool = hp(False, "lambda-discrepancy double critic (two value heads)")
    hidden_size: int = hp(128, "width of the GRU / MLP layers", low=1)
    num_envs: int = hp(4, "environments stepped in parallel per run", low=1)
    num_steps: int = hp(128, "steps per environment per PPO update (rollout length)", low=1)
    total_steps: int = hp(1_000_000, "environment steps per run (all envs together)")
    update_epochs: int = hp(4, "PPO epochs over each rollout", low=1)
    num_minibatches: int = hp(4, "minibatches per epoch (split along the env axis)", low=1)
    normalize_advantages: bool = hp(
        True, "normalize advantages per minibatch (POBAX, PureJaxRL); off: raw GAE advantages"
    )
    anneal_lr: bool = hp(
        False,
        "decay the learning rate linearly to 0 over the run's optimizer steps "
        "(num_updates * update_epochs * num_minibatches; POBAX's default)",
        in_id_at_default=False,
    )
    gamma: float = hp(
        0.99, "discount factor (also used for discounted_return)", low=0.0, open_low=True, high=1.0
    )
    eval_steps: int = hp(
        1000, "steps per env of the greedy-free evaluation rollout after training", low=1
    )
    num_eval_envs: int = hp(
        0,
        "envs of the evaluation rollout after training (POBAX's num_eval_envs); 0: num_envs",
        low=0,
        in_id_at_default=False,
    )
    seed: int = hp(2024, "first seed; the run uses seeds seed .. seed+n_seeds-1", label=False)
    n_seeds: int = hp(1, "seeds vmapped inside the program", low=1, label=False)

    @property
    def eval_envs(self) -> int:
        """Envs of the evaluation rollout: ``num_eval_envs``, or ``num_envs`` when it is 0."""
        return self.num_eval_envs or self.num_envs

    @property
    def num_updates(self) -> int:
        """PPO updates per run: total_steps // (num_steps * num_envs)."""
        return self.total_steps // (self.num_steps * self.num_envs)

    def problems(self) -> list[str]:
        """What makes these values unusable, one message per problem naming the key and the fix.

        First each value against its declaration (choices, range, finite), then, if all pass,
        the combinations (whole updates, minibatches dividing the envs).
        """
        out = [
            problem
            for f in fields_of(type(self), vmappable=False)
            if (problem := f.problem(getattr(self, f.name)))
        ]
        return out or self.combination_problems()

    def combination_problems(self) -> list[str]:
        """Problems of values that are each in range but do not fit together."""
        out = []
        if self.num_updates < 1:
            out.append(
                f"key 'total_steps': {self.total_steps} is less than one update "
                f"(num_steps * num_envs = {self.num_steps * self.num_envs}); raise total_steps"
            )
        if self.num_envs % self.num_minibatches:
            out.append(
                f"key 'num_minibatches': num_envs={self.num_envs} must be divisible by "
                f"num_minibatches={self.num_minibatches}"
            )
        return out


@flax.struct.dataclass
class PPOSweep:
    """Swept hyperparameters: traced scalars, vmapped over a leading ``config`` axis."""

    lr: float = hp(2.5e-4, "Adam learning rate", low=0.0, open_low=True)
    lambda0: float = hp(
        0.95, "GAE lambda of the (first) value head; the policy's advantage", low=0.0, high=1.0
    )
    lambda1: float = hp(
        0.95, "GAE lambda of the second value head (double_critic)", low=0.0, high=1.0
    )
    ld_weight: float = hp(
        0.0, "weight of the lambda-discrepancy loss (double_critic)", low=0.0, high=1.0
    )
    entropy_coeff: float = hp(0.01, "entropy bonus coefficient", low=0.0)
    vf_coeff: float = hp(0.5, "value loss coefficient", low=0.0)
    clip_eps: float = hp(0.2, "PPO ratio clipping", low=0.0, open_low=True)
    max_grad_norm: float = hp(0.5, "global gradient-norm clip", low=0.0, open_low=True)


class TrainMetrics(tp.NamedTuple):
    """What one run returns; under the study's vmaps every leaf gains leading (config, seed) dims.

    Per-update values describe the rollout collected in that update; a value over episodes is NaN
    where no episode ended. ``final_*`` come from an evaluation rollout after training
    (``eval_steps`` steps × ``num_envs`` envs, actions sampled from the trained policy).
    """

    episode_return: jax.Array  # (num_updates,) mean return of episodes that ended in the update
    discounted_return: jax.Array  # (num_updates,) same, discounted by gamma from episode start
    episodes: jax.Array  # (num_updates,) int32, episodes that ended in the update
    loss_total: jax.Array  # (num_updates,) mean over epochs and minibatches
    loss_value: jax.Array  # (num_updates,)
    loss_policy: jax.Array  # (num_updates,)
    entropy: jax.Array  # (num_updates,)
    approx_kl: jax.Array  # (num_updates,)
    final_return: jax.Array  # () mean return of the episodes completed in the evaluation rollout
    final_discounted_return: jax.Array  # ()
    final_episodes: jax.Array  # () int32


@dataclasses.dataclass(frozen=True)
class TransformerStatic(PPOStatic):
    """Static hyperparameters of PPO with a GTrXL transformer memory."""

    embed_size: int = hp(64, "transformer embedding size", low=1)
    num_heads: int = hp(4, "attention heads", low=1)
    num_layers: int = hp(2, "transformer layers", low=1)
    memory_window: int = hp(32, "past embeddings each step attends to", low=1)
    gating_bias: float = hp(2.0, "GRU-gate bias of the GTrXL layers")

    def combination_problems(self) -> list[str]:
        """PPO's combinations plus the transformer's own."""
        out = super().combination_problems()
        if self.memoryless:
            out.append("key 'memoryless': does not apply to the transformer entry (use ppo)")
        if self.embed_size % self.num_heads:
            out.append(
                f"key 'embed_size': {self.embed_size} must be divisible by "
                f"num_heads={self.num_heads}"
            )
        return out
