"""PPO with a gated transformer-XL (GTrXL) memory over a window of past embeddings.

Source: Parisotto et al., "Stabilizing Transformers for Reinforcement Learning" (GTrXL, GRU-type
gating, identity-map reordering), https://arxiv.org/abs/1910.06764; Dai et al., "Transformer-XL",
https://arxiv.org/abs/1901.02860 (segment-level memory). The PPO loop is ``ppo.make_train`` with
this network passed in.

Memory. The network's carry (``TransformerMemory``) holds, for every layer, that layer's input at
the last ``memory_window`` steps (M), plus a flag per slot saying whether it belongs to the episode
running at the last step. A call on a sequence of T steps (T = 1 in the rollout, T = num_steps in
the update) lets step t of layer l attend to the inputs of layer l at itself and at the M steps
before it, taken from the carried memory and from the sequence itself, and only those of the same
episode: keys before an episode start (``resets``) or from invalid slots are masked out of the
softmax (their weight is exactly 0). As in Transformer-XL the reach grows with depth: the
output at step t depends on observations back to t - num_layers * M. The new carry is the last M
layer inputs. So one call on T steps gives what T chained one-step calls give (up to float
rounding; ``tests/agents/test_transformer.py``), and the update recomputes a rollout of T steps in
one pass from the memory carried at its start (the Transformer-XL scheme: gradients flow through
the keys inside the rollout; the carried memory is a constant computed with the rollout's
parameters). Positions enter as a learned bias per head and relative distance 0..M on the
attention logits.
"""

from __future__ import annotations

import functools
import typing as tp

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant

from sweepax.agents import ppo
from sweepax.agents.config import PPOSweep, TrainMetrics, TransformerStatic
from sweepax.agents.networks import ActionSpec, _heads, orthogonal


class TransformerMemory(tp.NamedTuple):
    """Carry of the GTrXL: per-layer inputs of the last M steps and their validity."""

    embeddings: jax.Array  # (batch, num_layers, memory_window, embed_size)
    valid: jax.Array  # (batch, memory_window) bool, slot holds a step of the running episode


class _GRUGate(nn.Module):
    """GTrXL's GRU-type gate g(x, y): x the residual stream, y the sublayer output."""

    gating_bias: float

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        size = x.shape[-1]

        def dense(name: str, bias: bool) -> nn.Dense:
            return nn.Dense(size, use_bias=bias, kernel_init=orthogonal(1.0), name=name)

        r = nn.sigmoid(dense("w_r", True)(y) + dense("u_r", False)(x))
        z = nn.sigmoid(dense("w_z", True)(y) + dense("u_z", False)(x) - self.gating_bias)
        h = jnp.tanh(dense("w_g", True)(y) + dense("u_g", False)(r * x))
        return (1.0 - z) * x + z * h


class _GTrXLLayer(nn.Module):
    """One GTrXL layer: LN -> masked MHA over [memory, sequence] -> gate -> LN -> MLP -> gate."""

    num_heads: int
    memory_window: int
    gating_bias: float

    @nn.compact
    def __call__(
        self, x: jax.Array, keys_in: jax.Array, mask: jax.Array, dist: jax.Array
    ) -> jax.Array:
        """x (B, T, E), keys_in (B, M + T, E), mask (B, T, M + T) bool, dist (T, M + T) int."""
        size = x.shape[-1]
        head = size // self.num_heads
        ln_q, ln_kv = nn.LayerNorm(name="ln_q"), nn.LayerNorm(name="ln_kv")
        q = nn.Dense(size, kernel_init=orthogonal(1.0), name="query")(ln_q(x))
        kv = ln_kv(keys_in)
        k = nn.Dense(size, kernel_init=orthogonal(1.0), name="key")(kv)
        v = nn.Dense(size, kernel_init=orthogonal(1.0), name="value")(kv)
        split = lambda a: a.reshape(a.shape[:2] + (self.num_heads, head))  # noqa: E731
        logits = jnp.einsum("bthd,bshd->bhts", split(q), split(k)) / np.sqrt(head)
        rel_bias = self.param("rel_bias", constant(0.0), (self.num_heads, self.memory_window + 1))
        logits = logits + rel_bias[:, jnp.clip(dist, 0, self.memory_window)][None]
        # Masked keys get weight exactly 0: each query always sees itself, so no row is empty.
        logits = jnp.where(mask[:, None], logits, -1e30)
        weights = jax.nn.softmax(logits, axis=-1)
        attn = jnp.einsum("bhts,bshd->bthd", weights, split(v)).reshape(x.shape)
        attn = nn.Dense(size, kernel_init=orthogonal(1.0), name="attn_out")(attn)
        x = _GRUGate(self.gating_bias, name="gate_attn")(x, nn.relu(attn))
        mlp = nn.Dense(size, kernel_init=orthogonal(np.sqrt(2)), name="mlp_in")(
            nn.LayerNorm(name="ln_mlp")(x)
        )
        mlp = nn.Dense(size, kernel_init=orthogonal(1.0), name="mlp_out")(nn.relu(mlp))
        return _GRUGate(self.gating_bias, name="gate_mlp")(x, nn.relu(mlp))


class GTrXLActorCritic(nn.Module):
    """Dense embedding -> GTrXL layers with windowed episode-masked memory -> actor / critic heads.

    Same signature as ``networks.RecurrentActorCritic``: ``(memory, (obs (T, B, d), resets (T, B)))
    -> (memory, policy, value (T, B) or (T, B, 2))``; policy: logits (T, B, n), or continuous
    ``(mean, log_std)`` each (T, B, dim).
    """

    action: ActionSpec
    hidden_size: int = 128
    embed_size: int = 64
    num_heads: int = 4
    num_layers: int = 2
    memory_window: int = 32
    gating_bias: float = 2.0
    num_values: int = 1

    @nn.compact
    def __call__(
        self, memory: TransformerMemory, xs: tuple[jax.Array, jax.Array]
    ) -> tuple[TransformerMemory, tp.Any, jax.Array]:
        obs, resets = xs
        steps, window = obs.shape[0], self.memory_window
        x = nn.Dense(self.embed_size, kernel_init=orthogonal(np.sqrt(2)), name="embed")(obs)
        x = jnp.swapaxes(x, 0, 1)  # (B, T, E)
        # EPISODE MASK: episode index 0 for the memory, +1 at every reset inside the sequence
        seg = jnp.cumsum(jnp.swapaxes(resets, 0, 1).astype(jnp.int32), axis=1)  # (B, T)
        key_seg = jnp.concatenate([jnp.zeros_like(memory.valid, jnp.int32), seg], axis=1)
        key_valid = jnp.concatenate([memory.valid, jnp.ones_like(seg, bool)], axis=1)  # (B, M+T)
        dist = (window + jnp.arange(steps))[:, None] - jnp.arange(window + steps)[None, :]
        in_window = (dist >= 0) & (dist <= window)  # (T, M+T): itself and the M steps before
        mask = in_window[None] & (seg[:, :, None] == key_seg[:, None, :]) & key_valid[:, None, :]
        new_embeddings = []
        for layer in range(self.num_layers):
            keys_in = jnp.concatenate([memory.embeddings[:, layer], x], axis=1)  # (B, M+T, E)
            new_embeddings.append(keys_in[:, -window:])
            x = _GTrXLLayer(self.num_heads, window, self.gating_bias, name=f"layer_{layer}")(
                x, keys_in, mask, dist
            )
        new_valid = key_valid[:, -window:] & (key_seg[:, -window:] == seg[:, -1:])
        memory = TransformerMemory(jnp.stack(new_embeddings, axis=1), new_valid)
        x = nn.LayerNorm(name="ln_out")(jnp.swapaxes(x, 0, 1))  # (T, B, E)
        policy, value = _heads(self, x, self.hidden_size, self.action, self.num_values)
        return memory, policy, value

    def initialize_carry(self, batch_size: int) -> TransformerMemory:
        """Empty memory: zeros, every slot invalid."""
        return TransformerMemory(
            jnp.zeros(
                (batch_size, self.num_layers, self.memory_window, self.embed_size), jnp.float32
            ),
            jnp.zeros((batch_size, self.memory_window), bool),
        )


def make_network(static: TransformerStatic, action: ActionSpec) -> GTrXLActorCritic:
    """The GTrXL actor-critic for ``static`` (two value heads with ``double_critic``)."""
    return GTrXLActorCritic(
        action=action,
        hidden_size=static.hidden_size,
        embed_size=static.embed_size,
        num_heads=static.num_heads,
        num_layers=static.num_layers,
        memory_window=static.memory_window,
        gating_bias=static.gating_bias,
        num_values=2 if static.double_critic else 1,
    )


def make_train(static: TransformerStatic) -> tp.Callable[[PPOSweep, jax.Array], TrainMetrics]:
    """Pure ``train(sweep, seed)``: ``ppo.make_train`` with the GTrXL network."""
    return ppo.make_train(static, network=functools.partial(make_network, static))


def make_sweep_fn(
    static: TransformerStatic, on_progress: tp.Callable[[int, int], None] | None = None
) -> ppo.SweepFn:
    """Configs x seeds with the GTrXL network (``ppo.SweepFn``): leaves (C,), seeds (S,)."""
    return ppo.make_sweep_fn(static, on_progress, network=functools.partial(make_network, static))
