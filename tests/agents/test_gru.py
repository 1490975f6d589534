"""The GRU the recurrent networks run: the same parameters, states and gradients as scanning
flax's ``GRUCell`` with episode-start resets, plain and vmapped."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sweepax.agents.networks import ScannedRNN, _GRUStep

T, B, D, H = 12, 3, 5, 8


class _FlaxScan(nn.Module):
    """The reference: flax's GRUCell scanned over time by ``nn.scan``, autodiff for gradients."""

    @nn.compact
    def __call__(self, carry: jax.Array, xs: tuple) -> tuple:
        scan = nn.scan(_GRUStep, variable_broadcast="params", split_rngs={"params": False})
        return scan(H, name="gru")(carry, xs)


def _inputs() -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    ins = jax.random.normal(keys[0], (T, B, D))
    resets = jax.random.bernoulli(keys[1], 0.25, (T, B)).at[0].set(jnp.arange(B) == 0)
    return jax.random.normal(keys[2], (B, H)), (ins, resets)


def _loss(apply, params, h0, ins, resets) -> jax.Array:  # noqa: ANN001
    """Weights every step differently, and the last state, so each step's gradient counts."""
    last, hs = apply(params, h0, (ins, resets))
    return (jnp.sin(hs) * jnp.arange(1, T + 1)[:, None, None]).sum() + (3 * last).sum()


def test_gru_parameters_and_states_are_flax_gru_cells() -> None:
    h0, xs = _inputs()
    params = ScannedRNN(H).init(jax.random.PRNGKey(7), h0, xs)
    reference = _FlaxScan().init(jax.random.PRNGKey(7), h0, xs)
    assert jax.tree.structure(params) == jax.tree.structure(reference)
    assert set(params["params"]["gru"]["cell"]) == {"ir", "iz", "in", "hr", "hz", "hn"}
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)  # same initial weights for the same key
    last, hs = ScannedRNN(H).apply(params, h0, xs)
    ref_last, ref_hs = _FlaxScan().apply(params, h0, xs)
    np.testing.assert_allclose(hs, ref_hs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last, ref_last, rtol=1e-5, atol=1e-6)
    # a reset step starts from zeros: step 0 of env 0 is the cell applied to a zero state
    fresh = ScannedRNN(H).apply(params, jnp.zeros_like(h0), (xs[0][:1], xs[1][:1]))[1]
    np.testing.assert_allclose(hs[0, 0], fresh[0, 0], rtol=1e-6, atol=1e-7)


def test_gru_gradients_equal_autodiff_of_flax_scan() -> None:
    h0, (ins, resets) = _inputs()
    params = ScannedRNN(H).init(jax.random.PRNGKey(7), h0, (ins, resets))
    grad = jax.grad(_loss, argnums=(1, 2, 3))
    ours = grad(ScannedRNN(H).apply, params, h0, ins, resets)
    reference = grad(_FlaxScan().apply, params, h0, ins, resets)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    d_h0 = ours[1]
    np.testing.assert_array_equal(d_h0[0], 0.0)  # env 0 resets at step 0: h0 never used
    assert np.abs(d_h0[1:]).min() > 0


def test_gru_gradients_vmapped_over_runs_equal_each_run_alone() -> None:
    h0, (ins, resets) = _inputs()
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    params = jax.vmap(lambda k: ScannedRNN(H).init(k, h0, (ins, resets)))(keys)
    grad = jax.grad(_loss, argnums=1)
    batched = jax.vmap(lambda p: grad(ScannedRNN(H).apply, p, h0, ins, resets))(params)
    for run in (0, 3):
        one = jax.tree.map(lambda x, run=run: x[run], params)
        alone = grad(_FlaxScan().apply, one, h0, ins, resets)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a[run], b, rtol=1e-4, atol=1e-5)
