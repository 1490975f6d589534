"""Generalized advantage estimation by a reverse ``lax.scan``.

Source: Schulman et al., "High-Dimensional Continuous Control Using GAE", https://arxiv.org/abs/1506.02438
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """GAE advantages and value targets, shapes (num_steps, num_envs).

    ``rewards``, ``values``, ``dones`` are (num_steps, num_envs); ``dones[t]`` is True when the
    episode ended at step t (no bootstrap from ``values[t + 1]``); ``last_value`` (num_envs,) is the
    value of the observation after the last step. Targets = advantages + values.
    """
    not_done = 1.0 - dones.astype(values.dtype)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    deltas = rewards + gamma * next_values * not_done - values

    def _step(adv_next: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, nd = x
        adv = delta + gamma * lam * nd * adv_next
        return adv, adv

    _, advantages = jax.lax.scan(
        _step, jnp.zeros_like(last_value), (deltas, not_done), reverse=True, unroll=unroll
    )
    return advantages, advantages + values
