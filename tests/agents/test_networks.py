"""The actor-critics' products: the same parameters, outputs and gradients as flax's ``Dense``
layers applied one by one with autodiff, plain and vmapped over runs."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.linen.initializers import constant

from sweepax.agents.networks import (
    ActionSpec,
    ScannedRNN,
    dense_product,
    make_network,
    orthogonal,
    rows_product,
)

T, B, D, H = 6, 3, 5, 8


class _Reference(nn.Module):
    """Each head's hidden and output layer a flax ``nn.Dense`` of its own, in creation order."""

    memoryless: bool
    action: ActionSpec
    num_values: int

    @nn.compact
    def __call__(self, hidden: jax.Array, x: tuple) -> tuple:
        obs, resets = x

        def dense(n: int, scale: float) -> nn.Dense:
            return nn.Dense(n, kernel_init=orthogonal(scale), bias_init=constant(0.0))

        h = nn.relu(dense(H, np.sqrt(2))(obs))
        if self.memoryless:
            h = nn.relu(dense(H, np.sqrt(2))(h))
        else:
            hidden, h = ScannedRNN(H)(hidden, (h, resets))
        actor = dense(H, np.sqrt(2))
        policy = dense(self.action.size, 0.01)(nn.relu(actor(h)))
        if self.action.continuous:
            log_std = self.param("log_std", constant(0.0), (self.action.size,))
            policy = (policy, jnp.broadcast_to(log_std, policy.shape))
        values = []
        for _ in range(self.num_values):
            critic = dense(H, np.sqrt(2))
            values.append(dense(1, 1.0)(nn.relu(critic(h)))[..., 0])
        return hidden, policy, values[0] if self.num_values == 1 else jnp.stack(values, axis=-1)


def _inputs() -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    obs = jax.random.normal(keys[0], (T, B, D))
    resets = jax.random.bernoulli(keys[1], 0.3, (T, B))
    return jnp.zeros((B, H)), (obs, resets)


def _loss(apply, params, hidden, xs) -> jax.Array:  # noqa: ANN001
    """Weights every output differently, so each one's gradient counts."""
    last, policy, value = apply(params, hidden, xs)
    outs = [*jax.tree.leaves(policy), value, last]
    return sum((jnp.sin(o) * jnp.arange(1, o.size + 1).reshape(o.shape)).sum() for o in outs)


NETWORKS = [
    (True, ActionSpec(4), 1),
    (False, ActionSpec(4), 1),
    (True, ActionSpec(3, continuous=True), 2),
    (False, ActionSpec(2), 2),
]


@pytest.mark.parametrize(("memoryless", "action", "num_values"), NETWORKS)
def test_network_is_flax_dense_layers_with_autodiff(
    memoryless: bool, action: ActionSpec, num_values: int
) -> None:
    hidden, xs = _inputs()
    net = make_network(memoryless, action, H, num_values=num_values)
    reference = _Reference(memoryless, action, num_values)
    params = net.init(jax.random.PRNGKey(7), hidden, xs)
    ref_params = reference.init(jax.random.PRNGKey(7), hidden, xs)
    assert jax.tree.structure(params) == jax.tree.structure(ref_params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params), strict=True):
        np.testing.assert_array_equal(a, b)  # same names, shapes and initial weights
    params = jax.tree.map(lambda p: p + 0.1 * jnp.cos(jnp.arange(p.size).reshape(p.shape)), params)

    outs, ref_outs = net.apply(params, hidden, xs), reference.apply(params, hidden, xs)
    for a, b in zip(jax.tree.leaves(outs), jax.tree.leaves(ref_outs), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    grads = jax.grad(_loss, argnums=1)(net.apply, params, hidden, xs)
    ref_grads = jax.grad(_loss, argnums=1)(reference.apply, params, hidden, xs)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(ref_grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert all(np.abs(g).max() > 0 for g in jax.tree.leaves(grads))


def test_network_gradients_vmapped_over_runs_equal_each_run_alone() -> None:
    hidden, xs = _inputs()
    net = make_network(True, ActionSpec(4), H, num_values=2)
    params = jax.vmap(lambda k: net.init(k, hidden, xs))(jax.random.split(jax.random.PRNGKey(3), 4))
    grad = jax.grad(_loss, argnums=1)
    batched = jax.vmap(lambda p: grad(net.apply, p, hidden, xs))(params)
    reference = _Reference(True, ActionSpec(4), 2)
    for run in (0, 3):
        one = jax.tree.map(lambda x, run=run: x[run], params)
        alone = grad(reference.apply, one, hidden, xs)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a[run], b, rtol=1e-4, atol=1e-5)


def test_dense_product_and_rows_product_equal_plain_matmuls() -> None:
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    x = jax.random.normal(keys[0], (T, B, D))
    kernel = jax.random.normal(keys[1], (D, H))
    d_out = jax.random.normal(keys[2], (T, B, H))
    np.testing.assert_allclose(dense_product(x, kernel), x @ kernel, rtol=1e-6)
    ours = jax.vjp(dense_product, x, kernel)[1](d_out)
    plain = jax.vjp(lambda a, b: a @ b, x, kernel)[1](d_out)
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    by_hand = sum(np.outer(x[t, b], d_out[t, b]) for t in range(T) for b in range(B))
    np.testing.assert_allclose(rows_product(x, d_out), by_hand, rtol=1e-5, atol=1e-5)
