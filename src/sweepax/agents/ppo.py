"""Recurrent (GRU), memoryless or any-memory PPO whose whole run is one pure, vmappable ``train``.

Source: the PureJaxRL pattern (github.com/luchris429/purejaxrl, ``ppo_rnn.py``; continuous actions
and observation normalisation as in ``ppo_continuous_action.py`` and ``wrappers.py``); PPO from
Schulman et al., https://arxiv.org/abs/1707.06347.

``make_train(static)`` does the Python setup (env, network, shapes) and returns ``train``;
everything in ``train`` is traced, so the swept ``PPOSweep`` scalars can be vmapped
(``make_sweep_fn``).
The network is a parameter of ``make_train`` (``network``: ``ActionSpec`` -> module with the
``(hidden, (obs, resets)) -> (hidden, policy, value)`` signature of ``networks.py``; ``hidden``
may be any pytree with a leading env axis), so ``transformer.py`` reuses all of this with a GTrXL.
Actions follow the env's ``action_space``: ``Discrete`` -> categorical policy (int32 actions);
``Box`` -> diagonal Gaussian (float32 actions of ``dim`` = the Box's size). The transition keeps
the raw Gaussian sample and its log-density; the action is clipped to the Box's bounds only to
step the env (and for ``action_concat``, which appends the clipped previous action).
With ``normalize_obs`` the network sees ``clip((obs - mean) / sqrt(var + 1e-8), -10, 10)``, with
the running mean / variance of every observation the run has seen (the reset ones and every
step's, all envs), updated before each use and carried in the env loop (``ObsStats``, one per
[config, seed] under vmap); the evaluation rollout uses the statistics frozen at the end of
training.
With ``double_critic`` (lambda-discrepancy, Allen et al. 2024, https://arxiv.org/abs/2407.07333)
the network has two value heads, ``value[..., 0]`` trained on GAE(lambda0) targets and
``value[..., 1]`` on GAE(lambda1) targets; the policy uses the lambda0 advantage.
Two env-declared hooks, as POBAX's agent has them: ``env.action_mask_dims`` (start, stop) marks
a slice of the observation as an action mask (Battleship's never-fired cells): the network does
not see it and masked actions get logit ``MASKED_LOGIT`` (``ActionMasked``); with
``env.normalize_reward`` (RockSample) the agent learns from rewards divided by the running std of
the discounted return over all envs (``RewardStats``), while returns are reported unscaled.
Truncation (``max_steps_in_episode``) is treated like termination: no bootstrap from the value of
the cut-off state. For the T-Maze this only affects wandering episodes of 1000 steps.
"""

from __future__ import annotations

import itertools
import math
import typing as tp

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from gymnax.environments import spaces
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from sweepax.agents.config import PPOStatic, PPOSweep, TrainMetrics
from sweepax.agents.gae import gae
from sweepax.agents.networks import (
    ActionSpec,
    Categorical,
    DiagGaussian,
    distribution,
    make_network,
)
from sweepax.envs import registry
from sweepax.errors import UserError

# Loop unrolling of the GRU time scans and of the env-step scans (speed only, same numbers).
_RNN_UNROLL = 1
_ENV_UNROLL = 1
OBS_CLIP = 10.0  # normalised observations are clipped to +-OBS_CLIP
OBS_EPS = 1e-8
MASKED_LOGIT = -1e6  # logit of an action the env's action mask forbids (POBAX's value)


class ObsStats(tp.NamedTuple):
    """Running mean and (population) variance of raw observations; ``count`` of them seen."""

    mean: jax.Array  # (obs_dim,)
    var: jax.Array  # (obs_dim,)
    count: jax.Array  # () float32

    @classmethod
    def empty(cls, obs_dim: int) -> ObsStats:
        """No observation seen yet (the first ``update`` sets the batch's own mean / var)."""
        zeros = jnp.zeros((obs_dim,), jnp.float32)
        return cls(zeros, zeros, jnp.zeros((), jnp.float32))

    def update(self, obs: jax.Array) -> ObsStats:
        """Merge a batch ``obs`` (n, obs_dim) in (parallel Welford, Chan et al.)."""
        n = jnp.asarray(obs.shape[0], jnp.float32)
        batch_mean, batch_var = obs.mean(axis=0), obs.var(axis=0)
        count = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / count
        m2 = self.var * self.count + batch_var * n + jnp.square(delta) * self.count * n / count
        return ObsStats(mean, m2 / count, count)

    def normalize(self, obs: jax.Array) -> jax.Array:
        """``obs`` (..., obs_dim) standardised with these statistics, clipped to +-OBS_CLIP."""
        z = (obs - self.mean) / jnp.sqrt(self.var + OBS_EPS)
        return jnp.clip(z, -OBS_CLIP, OBS_CLIP)


class RewardStats(tp.NamedTuple):
    """Running mean / variance of the discounted return of every env, as POBAX's
    ``NormalizeVecReward`` keeps them for envs that ask for it (``env.normalize_reward``):
    the agent learns from ``reward / sqrt(var + 1e-8)``; returns are reported unscaled."""

    mean: jax.Array  # ()
    var: jax.Array  # ()
    count: jax.Array  # ()
    running: jax.Array  # (num_envs,) discounted return of each env's episode so far

    @classmethod
    def empty(cls, num_envs: int) -> RewardStats:
        """POBAX's start: mean 0, variance 1, count 1e-4."""
        one = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        return cls(one(0.0), one(1.0), one(1e-4), jnp.zeros((num_envs,), jnp.float32))

    def update(
        self, reward: jax.Array, done: jax.Array, gamma: float
    ) -> tuple[RewardStats, jax.Array]:
        """Merge this step's returns (parallel Welford); the scaled ``reward`` (num_envs,)."""
        running = self.running * gamma * (1.0 - done) + reward
        n = running.shape[0]
        delta = running.mean() - self.mean
        count = self.count + n
        mean = self.mean + delta * n / count
        m2 = self.var * self.count + running.var() * n + delta**2 * self.count * n / count
        stats = RewardStats(mean, m2 / count, count, running)
        return stats, reward / jnp.sqrt(stats.var + OBS_EPS)


class ActionMasked:
    """An env's action mask applied to a network: ``obs[..., start:stop]`` (1 allowed, 0 not) is
    cut out of what the network sees, and the logits of masked actions become ``MASKED_LOGIT``
    (POBAX's Battleship agent: ``logits * mask + (1 - mask) * -1e6``). Same ``init`` / ``apply``
    / ``initialize_carry`` as the network, same parameters."""

    def __init__(self, net: tp.Any, start: int, stop: int):
        self.net, self.start, self.stop = net, start, stop

    def _seen(self, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        obs, reset = x
        return jnp.concatenate([obs[..., : self.start], obs[..., self.stop :]], -1), reset

    def init(self, key: jax.Array, hidden: tp.Any, x: tuple[jax.Array, jax.Array]) -> tp.Any:
        return self.net.init(key, hidden, self._seen(x))

    def apply(self, params: tp.Any, hidden: tp.Any, x: tuple[jax.Array, jax.Array]) -> tp.Any:
        hidden, logits, value = self.net.apply(params, hidden, self._seen(x))
        mask = x[0][..., self.start : self.stop]
        return hidden, logits * mask + (1 - mask) * MASKED_LOGIT, value

    def initialize_carry(self, batch_size: int) -> tp.Any:
        return self.net.initialize_carry(batch_size)


class EnvLoop(tp.NamedTuple):
    """Per-env state carried between env steps; leading dim num_envs."""

    env_state: tp.Any  # gymnax state, leaves (num_envs, ...)
    obs: jax.Array  # (num_envs, input_dim) network input (obs + previous action one-hot)
    reset: jax.Array  # (num_envs,) bool, ``obs`` starts a new episode
    hidden: tp.Any  # GRU state (num_envs, hidden_size) before ``obs``; MLP (num_envs, 1); a pytree
    # with leading num_envs for other memories (transformer: window of past embeddings)
    ep_return: jax.Array  # (num_envs,) undiscounted return of the running episode so far
    ep_disc_return: jax.Array  # (num_envs,) discounted return of the running episode so far
    ep_discount: jax.Array  # (num_envs,) gamma ** (steps since episode start)
    obs_stats: ObsStats | None  # normalize_obs: statistics of every raw obs so far; else None
    reward_stats: RewardStats | None  # env.normalize_reward: return statistics; else None


class StepDraws(tp.NamedTuple):
    """The random draws of one env step of ``num_envs`` envs (leading axis: steps, in a rollout)."""

    action_noise: jax.Array  # (n, actions) the policy's sampling noise (``Categorical.noise``)
    env: tp.Any  # per env: its key for ``env.step``, or ``env.draw_step``'s draws from it


class Transition(tp.NamedTuple):
    """One env step of a rollout; leaves (num_envs, ...), stacked to (num_steps, num_envs, ...)."""

    obs: jax.Array  # (num_envs, input_dim) network input (normalised with the stats of its step)
    reset: jax.Array  # (num_envs,) bool
    action: jax.Array  # (num_envs,) int32; continuous: (num_envs, dim) float32 raw (unclipped)
    log_prob: jax.Array  # (num_envs,)
    value: jax.Array  # (num_envs,), double_critic: (num_envs, 2) = (lambda0 head, lambda1 head)
    reward: jax.Array  # (num_envs,) what the agent learns from (scaled by RewardStats if kept)
    done: jax.Array  # (num_envs,) bool, the episode ended at this step (terminated or truncated)
    ended_return: jax.Array  # (num_envs,) episode return where ``done``, else 0
    ended_disc_return: jax.Array  # (num_envs,) discounted episode return where ``done``, else 0


# The float fields of a Transition that a rollout's loop writes side by side, one float32
# (num_envs, k) array per step (each back to its dtype after the loop): each array a loop writes
# is one more small kernel in every env step on a CPU.
_SIDE_BY_SIDE = ("log_prob", "value", "reward", "ended_return", "ended_disc_return")


def _side(t: Transition) -> list[tuple[str, jax.Array]]:
    """The fields of ``t`` a rollout's loop writes side by side (``_SIDE_BY_SIDE``)."""
    return [(f, getattr(t, f)) for f in _SIDE_BY_SIDE]


def env_step_fns(env: tp.Any) -> tuple[tp.Callable, tp.Callable]:
    """``(draw, step)`` of one env step from its key: ``step(draw(key), state, action, params)``
    is ``env.step(key, state, action, params)``. An env with ``draw_step(key)`` and
    ``step_drawn(draws, ...)`` (the T-Maze) makes its step's random draws in ``draw``, so a
    rollout makes them for all its steps before its loop; for others ``draw`` is the key."""
    if hasattr(env, "draw_step") and hasattr(env, "step_drawn"):
        return env.draw_step, env.step_drawn
    return (lambda key: key), env.step


class RunnerState(tp.NamedTuple):
    """Carry of the update scan."""

    params: tp.Any
    opt_state: tp.Any
    loop: EnvLoop
    key: jax.Array


class LossInfo(tp.NamedTuple):
    """Loss terms of one minibatch (scalars)."""

    total: jax.Array
    value: jax.Array  # value loss incl. the lambda-discrepancy term (before vf_coeff)
    policy: jax.Array
    entropy: jax.Array
    approx_kl: jax.Array


class UpdateMetrics(tp.NamedTuple):
    """What one update logs (scalars); stacked over updates by the update scan."""

    episode_return: jax.Array
    discounted_return: jax.Array
    episodes: jax.Array  # int32
    loss: LossInfo  # means over epochs and minibatches


class EvalMetrics(tp.NamedTuple):
    """The evaluation rollout after training (scalars)."""

    final_return: jax.Array
    final_discounted_return: jax.Array
    final_episodes: jax.Array  # int32


class Trainer(tp.NamedTuple):
    """The pure pieces of one run (``make_trainer``); ``train`` composes the other three."""

    init: tp.Callable[[PPOSweep, jax.Array], RunnerState]  # (sweep, seed) -> runner
    update: tp.Callable  # (runner, sweep, update_idx (L,)) -> (runner, UpdateMetrics (L,))
    evaluate: tp.Callable[[RunnerState, jax.Array], EvalMetrics]  # (runner, seed)
    train: tp.Callable[[PPOSweep, jax.Array], TrainMetrics]  # (sweep, seed)
    num_updates: int
    # (params, loop, key, steps, learn_stats=True) -> (loop, Transition (steps, num_envs, ...)):
    # the env loop alone, for inspection (tests); ``steps`` and ``learn_stats`` are static
    rollout: tp.Callable[..., tuple[EnvLoop, Transition]]
    gamma: float  # the discount the run uses (``discount``)
    gamma_source: str  # "env": the env's own discount; "sweep": the sweep's ``gamma``


def assemble(updates: UpdateMetrics, final: EvalMetrics) -> TrainMetrics:
    """Per-update metrics (..., U) and the evaluation's (...) as ``TrainMetrics``."""
    loss = updates.loss
    return TrainMetrics(
        episode_return=updates.episode_return,
        discounted_return=updates.discounted_return,
        episodes=updates.episodes,
        loss_total=loss.total,
        loss_value=loss.value,
        loss_policy=loss.policy,
        entropy=loss.entropy,
        approx_kl=loss.approx_kl,
        **final._asdict(),
    )


def _mean_where(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``x`` where ``mask``; NaN if nothing is masked in."""
    n = mask.sum()
    return jnp.where(n > 0, jnp.where(mask, x, 0.0).sum() / jnp.maximum(n, 1), jnp.nan)


def value_targets(
    reward: jax.Array,
    value: jax.Array,
    done: jax.Array,
    last_value: jax.Array,
    gamma: float,
    lambda0: jax.Array,
    lambda1: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Policy advantage (T, B) and value targets: (T, B), or (T, B, 2) for two value heads.

    One head (``value`` (T, B)): GAE(lambda0). Two heads (``value`` (T, B, 2), lambda-discrepancy):
    head 0 gets GAE(lambda0) targets from its own values, head 1 GAE(lambda1) from its own; the
    advantage is head 0's.
    """
    if value.ndim == reward.ndim:
        return gae(reward, value, done, last_value, gamma, lambda0)
    adv0, targets0 = gae(reward, value[..., 0], done, last_value[..., 0], gamma, lambda0)
    _, targets1 = gae(reward, value[..., 1], done, last_value[..., 1], gamma, lambda1)
    return adv0, jnp.stack([targets0, targets1], axis=-1)


def ppo_loss(
    net: tp.Any,
    params: tp.Any,
    hidden0: tp.Any,
    traj: Transition,
    adv: jax.Array,
    targets: jax.Array,
    sweep: PPOSweep,
    normalize_advantages: bool = True,
    continuous: bool = False,
) -> tuple[jax.Array, LossInfo]:
    """PPO clipped loss over one minibatch of whole env sequences (time, mb_envs).

    Two value heads (``targets`` (T, B, 2)): value loss = (1 - ld_weight) * clipped loss averaged
    over both heads + ld_weight * mean((v_lambda0 - v_lambda1) ** 2); it is scaled by vf_coeff.
    ``continuous``: the policy is a diagonal Gaussian (log-densities summed over action dims).
    """
    _, policy, value = net.apply(params, hidden0, (traj.obs, traj.reset))
    pi = distribution(policy, continuous)
    log_prob = pi.log_prob(traj.action)
    # VALUE LOSS (clipped; no 0.5 factor, as in POBAX, so vf_coeff means the same there)
    value_clipped = traj.value + jnp.clip(value - traj.value, -sweep.clip_eps, sweep.clip_eps)
    value_loss = jnp.maximum(
        jnp.square(value - targets), jnp.square(value_clipped - targets)
    ).mean()
    if targets.ndim == adv.ndim + 1:
        # LAMBDA-DISCREPANCY between the two heads
        ld_loss = jnp.square(value[..., 0] - value[..., 1]).mean()
        value_loss = (1.0 - sweep.ld_weight) * value_loss + sweep.ld_weight * ld_loss
    # POLICY LOSS
    log_ratio = log_prob - traj.log_prob
    ratio = jnp.exp(log_ratio)
    if normalize_advantages:
        # Per-minibatch advantage normalization (as POBAX, PureJaxRL). With few, sparse rewards it
        # blows up the first -0.1 turns, and some seeds then learn to never turn (see tests).
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = -jnp.minimum(
        ratio * adv, jnp.clip(ratio, 1.0 - sweep.clip_eps, 1.0 + sweep.clip_eps) * adv
    ).mean()
    entropy = pi.entropy().mean()
    total = policy_loss + sweep.vf_coeff * value_loss - sweep.entropy_coeff * entropy
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    return total, LossInfo(total, value_loss, policy_loss, entropy, approx_kl)


def action_spec(space: tp.Any) -> tuple[ActionSpec, jax.Array | None, jax.Array | None]:
    """The actor head for an env action space, and the bounds (dim,) continuous actions clip to.

    ``Discrete(n)`` -> ``ActionSpec(n)``, no bounds; ``Box`` of shape s -> ``ActionSpec(prod(s),
    continuous=True)`` with its low / high flattened (float32; +-inf where unbounded).
    """
    if isinstance(space, spaces.Discrete):
        return ActionSpec(int(space.n)), None, None
    if isinstance(space, spaces.Box):
        shape = tuple(int(d) for d in space.shape)
        dim = int(np.prod(shape, dtype=int))
        low, high = (
            jnp.asarray(np.broadcast_to(np.asarray(b, np.float32), shape).reshape(dim))
            for b in (space.low, space.high)
        )
        return ActionSpec(dim, continuous=True), low, high
    raise UserError(f"PPO needs a Discrete or Box action space, not {type(space).__name__}")


def discount(env: tp.Any, static: PPOStatic) -> tuple[float, str]:
    """The run's discount and where it comes from: an env with its own ``gamma`` (POBAX's
    ``.POMDP`` models, Battleship) trains with it, as in POBAX (``"env"``); every other env with
    the sweep's ``gamma`` (``"sweep"``)."""
    own = getattr(env, "gamma", None)
    if own is None:
        return float(static.gamma), "sweep"
    return float(own), "env"


def make_trainer(
    static: PPOStatic, network: tp.Callable[[ActionSpec], nn.Module] | None = None
) -> Trainer:
    """Set up env and network for ``static``; return the pure pieces of a run (``Trainer``).

    ``network(action_spec)`` builds the actor-critic (default: GRU or MLP from ``static``); it
    must give two value heads when ``static.double_critic``.
    """
    env, env_params = registry.make(
        static.env, renderer=static.renderer, perfect_memory=static.perfect_memory
    )
    if not getattr(env, "vmappable", True) and static.n_seeds > 1:
        raise UserError(
            f"env {static.env!r} (renderer {static.renderer}) cannot vmap seeds: run one seed per "
            "task (--n_seeds 1; the planner splits them)"
        )
    num_envs, num_steps, num_mb = static.num_envs, static.num_steps, static.num_minibatches
    num_updates = static.num_updates
    steps_per_update = static.update_epochs * num_mb  # optimizer steps
    mb_envs = num_envs // num_mb
    space = env.action_space(env_params)
    action, low, high = action_spec(space)
    continuous = action.continuous
    gamma, gamma_source = discount(env, static)
    if network is None:
        net = make_network(
            static.memoryless,
            action,
            static.hidden_size,
            unroll=_RNN_UNROLL,
            num_values=2 if static.double_critic else 1,
            obs_shape=getattr(env, "obs_shape", None),
        )
    else:
        net = network(action)
    mask_dims = getattr(env, "action_mask_dims", None)  # (start, stop) of the obs, or None
    if mask_dims is not None:
        if static.normalize_obs:
            raise UserError(
                f"env {static.env!r} gives its action mask in the observation, which "
                "normalize_obs would rescale: run it without normalize_obs"
            )
        net = ActionMasked(net, *mask_dims)
    normalize_reward = bool(getattr(env, "normalize_reward", False))  # POBAX's RockSample
    v_reset = jax.vmap(env.reset, in_axes=(0, None))
    draw_step, step = env_step_fns(env)
    v_step = jax.vmap(step, in_axes=(0, 0, 0, None))

    def _no_action(n: int) -> jax.Array:
        """Placeholder previous action at the first reset of ``n`` envs: (n,) int32 or (n, dim)."""
        if continuous:
            return jnp.zeros((n, action.size), jnp.float32)
        return jnp.zeros((n,), jnp.int32)

    def _observe(
        stats: ObsStats | None, obs: jax.Array, learn: bool
    ) -> tuple[ObsStats | None, jax.Array]:
        """With ``normalize_obs``: merge raw ``obs`` into ``stats`` (if ``learn``), normalise."""
        if stats is None:
            return None, obs
        if learn:
            stats = stats.update(obs)
        return stats, stats.normalize(obs)

    def _net_input(obs: jax.Array, prev_action: jax.Array, reset: jax.Array) -> jax.Array:
        """Obs (+ previous action, zeros at episode start), (num_envs, input_dim).

        The previous action is one-hot (discrete) or the clipped action the env got (continuous).
        """
        if not static.action_concat:
            return obs
        if continuous:
            prev = prev_action * (~reset)[:, None]
        else:
            prev = jax.nn.one_hot(prev_action, action.size) * (~reset)[:, None]
        return jnp.concatenate([obs, prev], axis=-1)

    def _init_loop(key: jax.Array, obs_stats: ObsStats | None = None, n: int = num_envs) -> EnvLoop:
        """``n`` fresh envs (default ``num_envs``); ``obs_stats`` given: frozen statistics
        (evaluate)."""
        obs, env_state = v_reset(jax.random.split(key, n), env_params)
        reset = jnp.ones((n,), bool)
        learn = obs_stats is None
        if static.normalize_obs and learn:
            obs_stats = ObsStats.empty(obs.shape[-1])
        obs_stats, obs = _observe(obs_stats, obs, learn)
        return EnvLoop(
            env_state=env_state,
            obs=_net_input(obs, _no_action(n), reset),
            reset=reset,
            hidden=net.initialize_carry(n),
            ep_return=jnp.zeros((n,), jnp.float32),
            ep_disc_return=jnp.zeros((n,), jnp.float32),
            ep_discount=jnp.ones((n,), jnp.float32),
            obs_stats=obs_stats,
            reward_stats=RewardStats.empty(n) if normalize_reward else None,
        )

    def _env_step(
        params: tp.Any, loop: EnvLoop, draws: StepDraws, learn_stats: bool
    ) -> tuple[EnvLoop, Transition]:
        """Act with the policy in every env and step them (auto-reset), with the step's random
        ``draws`` (``_step_draws``)."""
        n = loop.reset.shape[0]  # num_envs, or the evaluation's envs
        # SELECT ACTION
        hidden, policy, value = net.apply(params, loop.hidden, (loop.obs[None], loop.reset[None]))
        pi = distribution(jax.tree.map(lambda x: x[0], policy), continuous)
        act = pi.sample_from(draws.action_noise)
        log_prob = pi.log_prob(act)
        # STEP ENV (continuous: the raw sample is clipped to the Box only here)
        env_action = jnp.clip(act, low, high) if continuous else act
        obs, env_state, reward, terminated, truncated, _ = v_step(
            draws.env,
            loop.env_state,
            env_action.reshape((n,) + tuple(space.shape)) if continuous else env_action,
            env_params,
        )
        done = terminated | truncated
        reward = reward.astype(jnp.float32)
        reward_stats, learn_reward = loop.reward_stats, reward
        if reward_stats is not None:
            reward_stats, learn_reward = reward_stats.update(reward, done, gamma)
        obs_stats, obs = _observe(loop.obs_stats, obs, learn_stats)
        # TRACK RETURNS
        ep_return = loop.ep_return + reward
        ep_disc_return = loop.ep_disc_return + loop.ep_discount * reward
        transition = Transition(
            obs=loop.obs,
            reset=loop.reset,
            action=act,
            log_prob=log_prob,
            value=value[0],
            reward=learn_reward,
            done=done,
            ended_return=jnp.where(done, ep_return, 0.0),
            ended_disc_return=jnp.where(done, ep_disc_return, 0.0),
        )
        loop = EnvLoop(
            env_state=env_state,
            obs=_net_input(obs, env_action, done),
            reset=done,
            hidden=hidden,
            ep_return=jnp.where(done, 0.0, ep_return),
            ep_disc_return=jnp.where(done, 0.0, ep_disc_return),
            ep_discount=jnp.where(done, 1.0, loop.ep_discount * gamma),
            obs_stats=obs_stats,
            reward_stats=reward_stats,
        )
        return loop, transition

    dist = Categorical if not continuous else DiagGaussian

    def _step_draws(keys: jax.Array, n: int) -> StepDraws:
        """The random draws of the env steps of ``keys`` (one key per step), made for all steps
        at once before the rollout's loop: each step's key splits into an action key (the
        policy's sampling noise for ``n`` envs) and an env key (split into one key per env,
        and each of those into the env's own draws where it makes them ahead). The same
        numbers as drawing them inside each step, without small hashes in every step."""
        key_act, key_env = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
        env_keys = jax.vmap(lambda k: jax.random.split(k, n))(key_env)
        return StepDraws(
            action_noise=jax.vmap(lambda k: dist.noise(k, (n, action.size)))(key_act),
            env=jax.vmap(jax.vmap(draw_step))(env_keys),
        )

    def _rollout(
        params: tp.Any, loop: EnvLoop, key: jax.Array, steps: int, learn_stats: bool = True
    ) -> tuple[EnvLoop, Transition]:
        """``steps`` env steps; transitions stacked to (steps, num_envs, ...).

        ``learn_stats=False``: observation statistics stay frozen (evaluation).
        """

        shapes: dict[str, jax.ShapeDtypeStruct] = {}  # one step's fields, noted as scan traces

        def _body(loop: EnvLoop, draws: StepDraws) -> tuple[EnvLoop, tuple]:
            loop, t = _env_step(params, loop, draws, learn_stats)
            shapes.update((f, jax.ShapeDtypeStruct(x.shape, x.dtype)) for f, x in _side(t))
            cols = [x.reshape(t.done.shape[0], -1).astype(jnp.float32) for _, x in _side(t)]
            return loop, (t.obs, t.action, t.done, jnp.concatenate(cols, axis=1))

        first_reset = loop.reset
        draws = _step_draws(jax.random.split(key, steps), first_reset.shape[0])
        loop, (obs, act, done, cols) = jax.lax.scan(_body, loop, draws, unroll=_ENV_UNROLL)
        widths = [math.prod(shapes[f].shape[1:]) for f in _SIDE_BY_SIDE]
        parts = jnp.split(cols, list(itertools.accumulate(widths))[:-1], axis=-1)
        fields = {
            f: x.reshape((steps,) + shapes[f].shape).astype(shapes[f].dtype)
            for f, x in zip(_SIDE_BY_SIDE, parts)
        }
        reset = jnp.concatenate([first_reset[None], done[:-1]])  # a step after an end resets
        return loop, Transition(obs=obs, reset=reset, action=act, done=done, **fields)

    def _optimizer(sweep: PPOSweep) -> optax.GradientTransformation:
        """Adam with gradient clipping; lr and max_grad_norm are traced (vmappable).

        ``anneal_lr`` (as POBAX, PureJaxRL): update k of n (from 0) steps with
        ``lr * (1 - k / n)``, counted over its ``update_epochs * num_minibatches`` optimizer
        steps: ``lr`` in the first update, ``lr / n`` in the last, 0 after.
        """

        def _annealed(count: jax.Array) -> jax.Array:
            return sweep.lr * (1.0 - (count // steps_per_update) / num_updates)

        return optax.chain(
            optax.clip_by_global_norm(sweep.max_grad_norm),
            optax.adam(_annealed if static.anneal_lr else sweep.lr, eps=1e-5),
        )

    def init(sweep: PPOSweep, seed: jax.Array) -> RunnerState:
        """Network, optimizer and envs of one run with key ``PRNGKey(seed)``."""
        key, key_net, key_env, _ = jax.random.split(jax.random.PRNGKey(seed), 4)  # _: evaluate
        # INIT NETWORK AND OPTIMIZER
        loop = _init_loop(key_env)
        params = net.init(key_net, loop.hidden, (loop.obs[None], loop.reset[None]))
        return RunnerState(params, _optimizer(sweep).init(params), loop, key)

    def _update_step(runner: RunnerState, sweep: PPOSweep) -> tuple[RunnerState, UpdateMetrics]:
        """One PPO update: a rollout of ``num_steps``, then ``update_epochs`` over minibatches."""
        tx = _optimizer(sweep)

        def _loss(
            params: tp.Any, hidden0: tp.Any, traj: Transition, adv: jax.Array, targets: jax.Array
        ) -> tuple[jax.Array, LossInfo]:
            return ppo_loss(
                net, params, hidden0, traj, adv, targets, sweep,
                normalize_advantages=static.normalize_advantages, continuous=continuous,
            )  # fmt: skip

        grad_fn = jax.value_and_grad(_loss, has_aux=True)

        def _update_minibatch(
            carry: tuple[tp.Any, tp.Any], mb: tuple[jax.Array, Transition, jax.Array, jax.Array]
        ) -> tuple[tuple[tp.Any, tp.Any], LossInfo]:
            params, opt_state = carry
            hidden0, traj, adv, targets = mb
            (_, info), grads = grad_fn(params, hidden0, traj, adv, targets)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), info

        def _update_epoch(
            carry: tuple[tp.Any, tp.Any, jax.Array], _: None, *, batch: tuple
        ) -> tuple:
            params, opt_state, key = carry
            key, key_perm = jax.random.split(key)
            # SHUFFLE ENVS, SPLIT ALONG THE ENV AXIS (time order kept for the GRU)
            perm = jax.random.permutation(key_perm, num_envs)
            hidden0, traj, adv, targets = batch

            def _split_time_major(x: jax.Array) -> jax.Array:
                x = jnp.take(x, perm, axis=1)  # (T, B, ...)
                x = x.reshape((x.shape[0], num_mb, mb_envs) + x.shape[2:])
                return jnp.swapaxes(x, 0, 1)  # (M, T, mb_envs, ...)

            hidden_mb = jax.tree.map(
                lambda h: jnp.take(h, perm, axis=0).reshape((num_mb, mb_envs) + h.shape[1:]),
                hidden0,
            )
            traj_mb, adv_mb, targets_mb = jax.tree.map(_split_time_major, (traj, adv, targets))
            (params, opt_state), info = jax.lax.scan(
                _update_minibatch, (params, opt_state), (hidden_mb, traj_mb, adv_mb, targets_mb)
            )
            return (params, opt_state, key), info

        params, opt_state, loop, key = runner
        key, key_roll, key_epochs = jax.random.split(key, 3)
        hidden0 = loop.hidden
        # COLLECT TRAJECTORIES
        loop, traj = _rollout(params, loop, key_roll, num_steps)
        # CALCULATE ADVANTAGE
        _, _, last_value = net.apply(params, loop.hidden, (loop.obs[None], loop.reset[None]))
        adv, targets = value_targets(
            traj.reward, traj.value, traj.done, last_value[0], gamma, sweep.lambda0, sweep.lambda1
        )
        # UPDATE NETWORK
        batch = (hidden0, traj, adv, targets)
        (params, opt_state, _), info = jax.lax.scan(
            lambda c, x: _update_epoch(c, x, batch=batch),
            (params, opt_state, key_epochs),
            None,
            length=static.update_epochs,
        )
        # METRICS
        metrics = UpdateMetrics(
            episode_return=_mean_where(traj.ended_return, traj.done),
            discounted_return=_mean_where(traj.ended_disc_return, traj.done),
            episodes=traj.done.sum().astype(jnp.int32),
            loss=jax.tree.map(jnp.mean, info),
        )
        return RunnerState(params, opt_state, loop, key), metrics

    def update(
        runner: RunnerState, sweep: PPOSweep, update_idx: jax.Array
    ) -> tuple[RunnerState, UpdateMetrics]:
        """The updates numbered ``update_idx`` (L,) in order; those >= num_updates are skipped.

        ``update_idx`` must not be vmapped: the skip is a real ``lax.cond``, so a chunked run
        (the last chunk padded past ``num_updates``) does the same updates as ``train``.
        """

        def _step(runner: RunnerState, idx: jax.Array) -> tuple[RunnerState, UpdateMetrics]:
            if num_updates % update_idx.shape[0] == 0:
                return _update_step(runner, sweep)
            shapes = jax.eval_shape(_update_step, runner, sweep)[1]
            return jax.lax.cond(
                idx < num_updates,
                lambda r: _update_step(r, sweep),
                lambda r: (r, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)),
                runner,
            )

        return jax.lax.scan(_step, runner, update_idx)

    def evaluate(runner: RunnerState, seed: jax.Array) -> EvalMetrics:
        """Returns of a fresh ``eval_steps`` rollout of ``static.eval_envs`` envs with the trained
        policy (actions sampled).

        Its keys come from ``PRNGKey(seed)`` alone (the 4th split, as in ``init``), so evaluation
        does not depend on how the updates were chunked. With ``normalize_obs`` it normalises with
        the training statistics, frozen (``runner.loop.obs_stats``).
        """
        key_eval = jax.random.split(jax.random.PRNGKey(seed), 4)[3]
        key_eval_env, key_eval_roll = jax.random.split(key_eval)
        loop = _init_loop(key_eval_env, runner.loop.obs_stats, static.eval_envs)
        _, traj = _rollout(runner.params, loop, key_eval_roll, static.eval_steps, learn_stats=False)
        return EvalMetrics(
            final_return=_mean_where(traj.ended_return, traj.done),
            final_discounted_return=_mean_where(traj.ended_disc_return, traj.done),
            final_episodes=traj.done.sum().astype(jnp.int32),
        )

    def train(sweep: PPOSweep, seed: jax.Array) -> TrainMetrics:
        """One PPO run with hyperparameters ``sweep`` and key ``PRNGKey(seed)``."""
        runner = init(sweep, seed)
        runner, metrics = update(runner, sweep, jnp.arange(num_updates, dtype=jnp.int32))
        return assemble(metrics, evaluate(runner, seed))

    return Trainer(
        init=init,
        update=update,
        evaluate=evaluate,
        train=train,
        num_updates=num_updates,
        rollout=_rollout,
        gamma=gamma,
        gamma_source=gamma_source,
    )


def make_train(
    static: PPOStatic, network: tp.Callable[[ActionSpec], nn.Module] | None = None
) -> tp.Callable[[PPOSweep, jax.Array], TrainMetrics]:
    """The pure ``train(sweep, seed) -> TrainMetrics`` of one whole run (see ``make_trainer``)."""
    return make_trainer(static, network).train


# Runs whose parameters fit in this many bytes are updated together on a CPU (see
# ``runs_per_block``): with Adam's two moments and the gradients, about 4x this, which stays
# within a core's L2 cache (2 MiB per core where the figure was measured).
CPU_BLOCK_PARAM_BYTES = 384 * 1024


def run_param_bytes(params: tp.Any, runs: int) -> int:
    """Bytes of one run's parameters, from ``params`` of ``runs`` runs (arrays or shapes)."""
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(params)) // max(1, runs)


def runs_per_block(
    static: PPOStatic, backend: str, param_bytes: int, spread: bool = False
) -> int | None:
    """How many of a task's configs x seeds runs the update program vmaps at a time on
    ``backend``, for runs of ``param_bytes`` of parameters each: None for all of them.
    ``spread``: the runs are split over the host's CPU devices (``run_mesh``), one per core.

    A recurrent network's epochs step through time with small products, and vmapping all
    runs at once makes every step stream every run's weights through the cache: on a CPU such
    an update does a block of runs at a time, sized so their parameters, Adam moments and
    gradients stay within a core's L2 cache (``CPU_BLOCK_PARAM_BYTES`` of parameters).
    A memoryless network (no time loop in the epochs) does the same when its runs are spread
    over one device per core; on a single device it keeps one wide batch, whose products
    XLA's intra-op threads share. Accelerators keep one wide batch. Measured on 2 cores,
    24x10 runs: memoryless on one device 344k env steps/s at once against 315k in blocks, on
    two devices 760k in blocks against 660k at once; recurrent on one device 85k in blocks
    against 70k at once.
    """
    if backend != "cpu" or (static.memoryless and not spread):
        return None
    return max(1, CPU_BLOCK_PARAM_BYTES // max(1, param_bytes))


def block_size(runs: int, block: int | None) -> int:
    """Runs per block: the largest divisor of ``runs`` not above ``block`` (None: all)."""
    if block is None or block >= runs:
        return runs
    return max(d for d in range(1, block + 1) if runs % d == 0)


def over_runs(fn: tp.Callable, in_axes: tuple, block: int | None = None) -> tp.Callable:
    """``fn`` (one run) over a (configs, seeds) grid of runs. ``in_axes`` gives each argument's
    leading (config, seed) axes: ``(0, 0)``, ``(0, None)`` (per config), ``(None, 0)`` (per
    seed), or None (the same for every run). Every run in one vmap, or, with ``block`` below
    the number of runs, ``block_size(runs, block)`` runs at a time (``lax.map`` over blocks).
    Each run computes the same numbers either way, up to the float reassociation of batched
    matmuls."""
    inner = tuple(None if a is None else a[1] for a in in_axes)
    outer = tuple(None if a is None else a[0] for a in in_axes)
    grid = jax.vmap(jax.vmap(fn, inner), outer)
    if block is None:
        return grid

    def blocked(*args: tp.Any) -> tp.Any:
        shape = next(jax.tree.leaves(x)[0].shape[:2] for x, a in zip(args, in_axes) if a == (0, 0))
        runs = shape[0] * shape[1]
        size = block_size(runs, block)
        if size == runs:
            return grid(*args)

        def per_run(x: tp.Any, axes: tuple) -> tp.Any:
            """``x`` with one leading axis of ``runs`` (config-major, as the grid flattens)."""
            if axes == (0, 0):
                return jax.tree.map(lambda v: v.reshape((runs,) + v.shape[2:]), x)
            if axes == (0, None):
                return jax.tree.map(lambda v: jnp.repeat(v, shape[1], axis=0), x)
            return jax.tree.map(lambda v: jnp.tile(v, (shape[0],) + (1,) * (v.ndim - 1)), x)

        which = [i for i, a in enumerate(in_axes) if a is not None]

        def one(xs: list) -> tp.Any:
            full = list(args)
            for i, x in zip(which, xs, strict=True):
                full[i] = x
            return fn(*full)

        out = jax.lax.map(one, [per_run(args[i], in_axes[i]) for i in which], batch_size=size)
        return jax.tree.map(lambda v: v.reshape(shape + v.shape[1:]), out)

    return blocked


# runner (C, S), sweep (C,), update indices (L,) the same for every run
UPDATE_AXES = ((0, 0), (0, None), None)
# sweep (C,), seeds (S,)
INIT_AXES = ((0, None), (None, 0))
# runner (C, S), seeds (S,)
EVALUATE_AXES = ((0, 0), (None, 0))


def blocked_update(
    update: tp.Callable, static: PPOStatic, backend: str, spread: bool = False
) -> tp.Callable:
    """``update`` (one run) over runner (C, S, ...), sweep (C,), idx (L,), in blocks of
    ``runs_per_block`` runs, sized from the runner's parameters when the program is traced."""

    def run(runner: RunnerState, sweep: PPOSweep, idx: jax.Array) -> tuple:
        configs, seeds = jax.tree.leaves(runner)[0].shape[:2]
        param_bytes = run_param_bytes(runner.params, configs * seeds)
        block = runs_per_block(static, backend, param_bytes, spread)
        return over_runs(update, UPDATE_AXES, block)(runner, sweep, idx)

    return run


def device_split(configs: int, seeds: int, devices: int) -> tuple[int, int]:
    """(configs, seeds) shares of a grid's runs over at most ``devices`` devices: divisors of
    ``configs`` and ``seeds`` whose product is the largest within ``devices``, the configs'
    share the larger where two products tie (24 x 10 on 16 devices: 8 x 2)."""

    def divisors(n: int, most: int) -> list[int]:
        return [d for d in range(1, min(n, most) + 1) if n % d == 0]

    return max(
        ((c, max(divisors(seeds, devices // c))) for c in divisors(configs, devices)),
        key=lambda cs: (cs[0] * cs[1], cs[0]),
    )


def run_mesh(configs: int, seeds: int, backend: str) -> Mesh | None:
    """The devices a (configs, seeds) grid of runs is split over: a mesh of axes ``configs``
    and ``seeds`` (``device_split``), or None for one device.

    On a CPU with more than one JAX device (``sweepax.train`` makes one per core the process
    may use), each device takes an equal share of the runs and computes it on its own thread:
    the runs are independent, so nothing passes between devices, and each run computes what
    it does on one device, up to the float reassociation of batched products. Accelerators
    keep one device.
    """
    if backend != "cpu":
        return None
    devices = jax.devices("cpu")
    split = device_split(configs, seeds, len(devices))
    if split[0] * split[1] < 2:
        return None
    return Mesh(np.array(devices[: split[0] * split[1]]).reshape(split), ("configs", "seeds"))


def _grid_shape(args: tuple, in_axes: tuple) -> tuple[int, int]:
    """(configs, seeds) of a grid program's arguments (``over_runs``'s ``in_axes``)."""
    configs = seeds = None
    for x, axes in zip(args, in_axes, strict=True):
        if axes is None:
            continue
        shape = jax.tree.leaves(x)[0].shape
        if axes == (0, 0):
            configs, seeds = shape[:2]
        elif axes == (0, None):
            configs = shape[0]
        else:
            seeds = shape[0]
    if configs is None or seeds is None:
        raise ValueError(f"in_axes {in_axes} name no configs or no seeds axis")
    return configs, seeds


def _has_grid_axes(tree: tp.Any, axes: tuple | None, configs: int, seeds: int) -> bool:
    """Whether every leaf of ``tree`` leads with the grid axes ``axes`` says it has."""
    if axes is None:
        return True
    lead = {(0, 0): (configs, seeds), (0, None): (configs,), (None, 0): (seeds,)}[axes]
    return all(tuple(x.shape[: len(lead)]) == lead for x in jax.tree.leaves(tree))


def over_devices(
    grid: tp.Callable[[bool], tp.Callable],
    in_axes: tuple,
    backend: str,
    check_outputs: bool = False,
) -> tp.Callable:
    """A grid program (``over_runs``'s ``in_axes``; every output leaf (C, S, ...)) split over
    ``run_mesh``'s devices, chosen from the arguments' shapes when it is traced. ``grid(spread)``
    builds the program for one device's share of the runs (``spread``: there is more than one
    device) or, when the mesh is None, for all of them.

    Some env states hold leaves that vmap leaves unbatched (MJX-Warp's ``Data`` keeps its
    contact buffers once for all worlds): a program whose arguments (or, with
    ``check_outputs``, results) have such leaves runs on one device."""

    def run(*args: tp.Any) -> tp.Any:
        configs, seeds = _grid_shape(args, in_axes)
        mesh = run_mesh(configs, seeds, backend)
        if mesh is not None and not all(
            _has_grid_axes(x, a, configs, seeds) for x, a in zip(args, in_axes, strict=True)
        ):
            mesh = None
        if mesh is not None and check_outputs:
            out = jax.eval_shape(grid(False), *args)
            if not _has_grid_axes(out, (0, 0), configs, seeds):
                mesh = None
        if mesh is None:
            return grid(False)(*args)
        names = ("configs", "seeds")
        # each argument's leading axes, in order: (C, S), (C,), (S,) or none
        specs = tuple(
            P() if a is None else P(*(n for n, i in zip(names, a, strict=True) if i is not None))
            for a in in_axes
        )
        return jax.shard_map(
            grid(True), mesh=mesh, in_specs=specs, out_specs=P(*names), check_vma=False
        )(*args)

    return run


class Checkpointer(tp.Protocol):
    """What ``SweepFn`` asks of a checkpointer (``sweepax.checkpoint`` provides one)."""

    def due(self) -> bool: ...

    def save(self, update: int, runner: list[tp.Any], metrics: list[tp.Any]) -> tp.Any: ...


class SweepFn:
    """Configs x seeds of one static setting, run as three jitted programs, updates in chunks.

    ``init`` and ``evaluate`` are vmapped like ``train``; the updates run in ``chunks`` calls of
    one compiled program of ``ceil(num_updates / chunks)`` updates, so progress is reported from
    Python between calls. No host callback is traced into the programs, which keeps them
    cacheable by JAX's persistent compilation cache (the second task of a study with the same
    shapes loads them instead of compiling). ``sweep`` leaves (C,), ``seeds`` (S,) -> (C, S, ...).
    """

    PROGRAMS = ("init", "update", "evaluate")

    def __init__(
        self,
        static: PPOStatic,
        on_progress: tp.Callable[[int, int], None] | None = None,
        network: tp.Callable[[ActionSpec], nn.Module] | None = None,
        chunks: int = 20,
    ) -> None:
        trainer = make_trainer(static, network)
        self.num_updates = trainer.num_updates
        self.gamma, self.gamma_source = trainer.gamma, trainer.gamma_source
        self.final_params: tp.Any = None  # the last call's trained parameters, leaves (C, S, ...)
        self.chunk = -(-self.num_updates // max(1, min(chunks, self.num_updates)))
        self.on_progress = on_progress

        backend = jax.default_backend()

        def spread(fn: tp.Callable, in_axes: tuple, check_outputs: bool = False) -> tp.Callable:
            grid = lambda _: over_runs(fn, in_axes)  # noqa: E731
            return over_devices(grid, in_axes, backend, check_outputs)

        # (sweep (C,), seeds (S,)) -> runner (C, S, ...)
        self.init = jax.jit(spread(trainer.init, INIT_AXES, check_outputs=True))
        # (runner (C, S), sweep (C,), idx (L,) unbatched) -> runner, metrics (C, S, L)
        self.update = jax.jit(
            over_devices(
                lambda split: blocked_update(trainer.update, static, backend, split),
                UPDATE_AXES,
                backend,
            ),
            donate_argnums=0,
        )
        # (runner (C, S), seeds (S,)) -> eval metrics (C, S)
        self.evaluate = jax.jit(spread(trainer.evaluate, EVALUATE_AXES))

    def _indices(self, start: int) -> np.ndarray:
        return np.arange(start, start + self.chunk, dtype=np.int32)

    def compile(self, sweep: PPOSweep, seeds: jax.Array) -> SweepFn:
        """Trace and compile the three programs now (or load them from the persistent cache)."""
        init = self.init.lower(sweep, seeds)
        runner = init.out_info  # shapes and dtypes of the runner state
        self.init = init.compile()
        update = self.update.lower(runner, sweep, self._indices(0))
        self.runner_info, self.metrics_info = runner, update.out_info[1]
        self.update = update.compile()
        self.evaluate = self.evaluate.lower(runner, seeds).compile()
        return self

    def programs(self) -> dict[str, tp.Any]:
        """The compiled programs serialized, with the state shapes and the ids of the devices
        each runs on (after ``compile``): what ``load_programs`` needs in another process on
        the same backend, devices and versions."""
        from jax.experimental import serialize_executable

        def device_ids(program: tp.Any) -> list[int]:
            shardings = jax.tree.leaves(
                program.input_shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding)
            )
            return sorted({d.id for sharding in shardings for d in sharding.device_set})

        return {
            "executables": {
                name: serialize_executable.serialize(getattr(self, name)) for name in self.PROGRAMS
            },
            "devices": {name: device_ids(getattr(self, name)) for name in self.PROGRAMS},
            "runner_info": self.runner_info,
            "metrics_info": self.metrics_info,
        }

    def load_programs(self, programs: dict[str, tp.Any]) -> SweepFn:
        """Take the compiled programs from ``programs()`` of a ``SweepFn`` of the same static
        values and input shapes, instead of ``compile``: nothing is traced. Each is loaded
        onto the devices it was compiled for (a one-device program among several devices
        would otherwise be loaded onto all of them)."""
        from jax.experimental import serialize_executable

        by_id = {d.id: d for d in jax.devices()}
        loaded = {
            name: serialize_executable.deserialize_and_load(
                *programs["executables"][name],
                execution_devices=[by_id[i] for i in programs["devices"][name]],
            )
            for name in self.PROGRAMS
        }
        for name, program in loaded.items():
            setattr(self, name, program)
        self.runner_info, self.metrics_info = programs["runner_info"], programs["metrics_info"]
        return self

    def run_split(self) -> list[int]:
        """(configs, seeds) shares of the runs over the devices of the update program (after
        ``compile`` or ``load_programs``): ``[1, 1]`` on one device."""
        shardings = jax.tree.leaves(
            self.update.input_shardings, is_leaf=lambda x: isinstance(x, jax.sharding.Sharding)
        )
        devices = len({d.id for sharding in shardings for d in sharding.device_set})
        configs, seeds = jax.tree.leaves(self.runner_info)[0].shape[:2]
        return list(device_split(configs, seeds, devices))

    def state_shapes(self, updates: int) -> tuple[list[tp.Any], list[tp.Any]]:
        """Leaves (shape and dtype) of the runner state and of the metrics of ``updates``
        updates, in the order a checkpoint holds them (after ``compile``)."""
        runner = jax.tree.leaves(self.runner_info)
        metrics = [
            jax.ShapeDtypeStruct((*m.shape[:-1], updates), m.dtype)
            for m in jax.tree.leaves(self.metrics_info)
        ]
        return runner, metrics

    def __call__(
        self,
        sweep: PPOSweep,
        seeds: jax.Array,
        resume: tuple[int, list[tp.Any], list[tp.Any]] | None = None,
        checkpoint: Checkpointer | None = None,
    ) -> TrainMetrics:
        """Train every config x seed; returns once every chunk and the evaluation are done.

        Chunk k + 1 is dispatched before waiting for chunk k, so reporting progress never leaves
        the device idle (progress lags one chunk behind the computation). ``resume``:
        ``(update, runner leaves, metrics leaves)`` of a checkpoint (``state_shapes``): training
        continues after ``update`` (a multiple of the chunk length) exactly as it would have.
        ``checkpoint``: after each chunk but the last, when ``checkpoint.due()``, it is given the
        state (it waits for the chunk): ``checkpoint.save(update, runner leaves, metrics
        leaves)``; it may raise to stop the run there.
        """
        if resume is None:
            done, runner, chunks = 0, self.init(sweep, seeds), []
        else:
            done, runner_leaves, metric_leaves = resume
            runner = jax.tree.unflatten(jax.tree.structure(self.runner_info), runner_leaves)
            chunks = [jax.tree.unflatten(jax.tree.structure(self.metrics_info), metric_leaves)]
        for start in range(done, self.num_updates, self.chunk):
            runner, metrics = self.update(runner, sweep, self._indices(start))
            if chunks:
                self._report(chunks[-1], start)
            chunks.append(metrics)
            end = start + self.chunk
            if checkpoint is not None and end < self.num_updates and checkpoint.due():
                so_far = self._concatenate(chunks, end)
                checkpoint.save(end, jax.tree.leaves(jax.device_get(runner)), so_far)
        final = self.evaluate(runner, seeds)
        self.final_params = runner.params
        self._report(chunks[-1], self.num_updates)
        per_update = jax.tree.unflatten(
            jax.tree.structure(chunks[0]), self._concatenate(chunks, self.num_updates)
        )
        return assemble(per_update, jax.device_get(final))

    @staticmethod
    def _concatenate(chunks: list[UpdateMetrics], updates: int) -> list[np.ndarray]:
        """Leaves of the metrics of chunks, joined along the update axis and cut at ``updates``."""
        host = jax.device_get(chunks)
        return [
            np.concatenate(xs, axis=2)[:, :, :updates]
            for xs in zip(*(jax.tree.leaves(c) for c in host), strict=True)
        ]

    def _report(self, metrics: UpdateMetrics, done: int) -> None:
        """Wait for ``metrics`` (the chunk ending at update ``done``) and report progress."""
        if self.on_progress is not None:
            jax.block_until_ready(metrics)
            self.on_progress(min(done, self.num_updates), self.num_updates)


def make_sweep_fn(
    static: PPOStatic,
    on_progress: tp.Callable[[int, int], None] | None = None,
    network: tp.Callable[[ActionSpec], nn.Module] | None = None,
) -> SweepFn:
    """Train configs x seeds: ``fn(sweep (C,), seeds (S,))`` -> ``TrainMetrics`` (C, S, ...)."""
    return SweepFn(static, on_progress, network)
