"""Actor-critic networks (GRU and memoryless MLP, same call signature) and a categorical policy.

Source: the recurrent PPO pattern of PureJaxRL (github.com/luchris429/purejaxrl, ``ppo_rnn.py``).
Every network maps ``(hidden, (obs, resets)) -> (hidden, logits, value)`` over a whole sequence:
obs (time, batch, obs_dim), resets (time, batch) bool (True where obs starts a new episode),
hidden (batch, hidden_size), logits (time, batch, num_actions), value (time, batch).
"""

from __future__ import annotations

import typing as tp

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant


def orthogonal(scale: float = 1.0) -> tp.Callable[..., jax.Array]:
    """Orthogonal initializer like ``jax.nn.initializers.orthogonal``, without LAPACK.

    ``jnp.linalg.qr`` under ``vmap`` (one init per seed) is a batched LAPACK call; with jaxlib 0.10
    on a 2-thread CPU two of them running at once deadlock in ``ParallelBatchMap``. Gram-Schmidt
    (twice, for stability) in plain jnp gives the same distribution: Q of a Gaussian matrix with
    R's diagonal made positive.
    """

    def init(key: jax.Array, shape: tp.Sequence[int], dtype: tp.Any = jnp.float32) -> jax.Array:
        n_cols = shape[-1]
        n_rows = int(np.prod(shape)) // n_cols
        tall = (n_rows, n_cols) if n_rows >= n_cols else (n_cols, n_rows)
        q = _gram_schmidt(jax.random.normal(key, tall, jnp.float32))
        if n_rows < n_cols:
            q = q.T
        return (scale * q.reshape(shape)).astype(dtype)

    return init


def _gram_schmidt(a: jax.Array) -> jax.Array:
    """Orthonormalize the columns of ``a`` (rows >= cols), left to right (CGS2)."""
    n = a.shape[1]

    def _column(j: jax.Array, q: jax.Array) -> jax.Array:
        earlier = (jnp.arange(n) < j).astype(q.dtype)
        v = q[:, j]
        for _ in range(2):
            v = v - q @ ((q.T @ v) * earlier)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, n, _column, a)


class Categorical:
    """Categorical distribution over the last axis of ``logits`` (no distrax)."""

    def __init__(self, logits: jax.Array):
        self.logits = jax.nn.log_softmax(logits, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        """Sample actions, shape logits.shape[:-1], int32."""
        return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """Log-probability of ``action``, shape logits.shape[:-1]."""
        action = jnp.asarray(action, jnp.int32)
        return jnp.take_along_axis(self.logits, action[..., None], axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """Entropy, shape logits.shape[:-1]."""
        probs = jnp.exp(self.logits)
        return -jnp.sum(probs * self.logits, axis=-1)


class ScannedRNN(nn.Module):
    """GRU scanned over time; the carry is reset to zeros where ``resets`` is True."""

    hidden_size: int
    unroll: int = 1

    @nn.compact
    def __call__(
        self, carry: jax.Array, xs: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        """carry (batch, hidden); xs = (ins (time, batch, d), resets (time, batch))."""
        scan = nn.scan(
            _GRUStep,
            variable_broadcast="params",
            split_rngs={"params": False},
            in_axes=0,
            out_axes=0,
            unroll=self.unroll,
        )
        return scan(self.hidden_size, name="gru")(carry, xs)

    @staticmethod
    def initialize_carry(batch_size: int, hidden_size: int) -> jax.Array:
        """Zero carry, shape (batch, hidden)."""
        return jnp.zeros((batch_size, hidden_size), jnp.float32)


class _GRUStep(nn.Module):
    """One GRU step with episode-start reset (the body of ``ScannedRNN``'s scan)."""

    hidden_size: int

    @nn.compact
    def __call__(
        self, carry: jax.Array, x: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        ins, resets = x
        carry = jnp.where(resets[:, None], jnp.zeros_like(carry), carry)
        carry, y = nn.GRUCell(
            features=self.hidden_size,
            kernel_init=nn.initializers.lecun_normal(),
            recurrent_kernel_init=orthogonal(1.0),
            name="cell",
        )(carry, ins)
        return carry, y


def _heads(
    x: jax.Array, hidden_size: int, num_actions: int, num_values: int = 1
) -> tuple[jax.Array, jax.Array]:
    """Actor and critic MLP heads: logits (..., num_actions), value (...) or (..., num_values).

    ``num_values=2`` (lambda-discrepancy): two independent critic MLPs on the same features,
    stacked on the last axis.
    """
    actor = nn.relu(
        nn.Dense(hidden_size, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x)
    )
    logits = nn.Dense(num_actions, kernel_init=orthogonal(0.01), bias_init=constant(0.0))(actor)
    values = []
    for _ in range(num_values):
        critic = nn.relu(
            nn.Dense(hidden_size, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x)
        )
        values.append(nn.Dense(1, kernel_init=orthogonal(1.0), bias_init=constant(0.0))(critic))
    if num_values == 1:
        return logits, values[0][..., 0]
    return logits, jnp.concatenate(values, axis=-1)


class RecurrentActorCritic(nn.Module):
    """Dense embedding -> GRU -> actor / critic heads."""

    num_actions: int
    hidden_size: int = 128
    unroll: int = 1
    num_values: int = 1  # 2: lambda-discrepancy double critic

    @nn.compact
    def __call__(
        self, hidden: jax.Array, x: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """hidden (batch, hidden), x = (obs (time, batch, d), resets (time, batch))."""
        obs, resets = x
        emb = nn.Dense(
            self.hidden_size, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0)
        )(obs)
        emb = nn.relu(emb)
        hidden, emb = ScannedRNN(self.hidden_size, unroll=self.unroll)(hidden, (emb, resets))
        logits, value = _heads(emb, self.hidden_size, self.num_actions, self.num_values)
        return hidden, logits, value

    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zero GRU state, shape (batch, hidden)."""
        return ScannedRNN.initialize_carry(batch_size, self.hidden_size)


class MLPActorCritic(nn.Module):
    """Memoryless: Dense embedding -> Dense -> actor / critic heads; ``hidden`` passes through."""

    num_actions: int
    hidden_size: int = 128
    unroll: int = 1  # unused; keeps the constructor the same as RecurrentActorCritic
    num_values: int = 1

    @nn.compact
    def __call__(
        self, hidden: jax.Array, x: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """hidden (batch, 1) returned unchanged, x = (obs (time, batch, d), resets ignored)."""
        obs, _ = x
        h = nn.relu(
            nn.Dense(self.hidden_size, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(
                obs
            )
        )
        h = nn.relu(
            nn.Dense(self.hidden_size, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(
                h
            )
        )
        logits, value = _heads(h, self.hidden_size, self.num_actions, self.num_values)
        return hidden, logits, value

    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Dummy carry, shape (batch, 1)."""
        return jnp.zeros((batch_size, 1), jnp.float32)


def make_network(
    memoryless: bool, num_actions: int, hidden_size: int, unroll: int = 1, num_values: int = 1
) -> RecurrentActorCritic | MLPActorCritic:
    """The actor-critic for ``PPOStatic.memoryless`` (``num_values=2``: double critic)."""
    cls = MLPActorCritic if memoryless else RecurrentActorCritic
    return cls(
        num_actions=num_actions, hidden_size=hidden_size, unroll=unroll, num_values=num_values
    )


__all__ = [
    "Categorical",
    "MLPActorCritic",
    "RecurrentActorCritic",
    "ScannedRNN",
    "make_network",
]
