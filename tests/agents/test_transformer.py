"""GTrXL PPO: episode masking, window reach, sequence = chained steps, vmap = single."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sweepax.agents.config import PPOSweep, TransformerStatic
from sweepax.agents.networks import ActionSpec
from sweepax.agents.transformer import GTrXLActorCritic, make_sweep_fn, make_train

NET = GTrXLActorCritic(
    action=ActionSpec(4), hidden_size=8, embed_size=8, num_heads=2, num_layers=2, memory_window=3
)
STEPS, ENVS, OBS = 8, 2, 3
APPLY = jax.jit(NET.apply)

TINY_GTRXL = {"embed_size": 8, "num_heads": 2, "num_layers": 2, "memory_window": 4}


def _inputs(seed: int = 0) -> tuple[jax.Array, jax.Array]:
    obs = jax.random.normal(jax.random.PRNGKey(seed), (STEPS, ENVS, OBS))
    resets = jnp.zeros((STEPS, ENVS), bool).at[0].set(True).at[5, 0].set(True)
    return obs, resets


def _params(obs: jax.Array, resets: jax.Array):
    return NET.init(jax.random.PRNGKey(1), NET.initialize_carry(ENVS), (obs, resets))


def test_transformer_observation_before_a_reset_cannot_change_outputs_after_it() -> None:
    obs, resets = _inputs()
    params = _params(obs, resets)
    mem0 = NET.initialize_carry(ENVS)
    _, logits, value = APPLY(params, mem0, (obs, resets))
    # Env 0 resets at step 5: change all its earlier observations (within the same call).
    changed = obs.at[:5, 0].set(obs[:5, 0] * -3.0 + 7.0)
    _, logits2, value2 = APPLY(params, mem0, (changed, resets))
    assert np.array_equal(logits2[5:, 0], logits[5:, 0])
    assert np.array_equal(value2[5:, 0], value[5:, 0])
    assert not np.allclose(logits2[:5, 0], logits[:5, 0])  # before the reset it does matter
    assert np.array_equal(logits2[:, 1], logits[:, 1])  # other env untouched

    # Across calls: the memory carried from a first sequence is masked after a reset.
    mem_a, _, _ = APPLY(params, mem0, (obs, resets))
    mem_b, _, _ = APPLY(params, mem0, (changed * 0.5 - 1.0, resets))
    nxt_obs, _ = _inputs(seed=2)
    nxt_resets = jnp.zeros((STEPS, ENVS), bool).at[0].set(True)
    _, la, va = APPLY(params, mem_a, (nxt_obs, nxt_resets))
    _, lb, vb = APPLY(params, mem_b, (nxt_obs, nxt_resets))
    assert np.array_equal(la, lb) and np.array_equal(va, vb)
    # ... and without the reset the carried memory does change the output.
    _, lc, _ = APPLY(params, mem_a, (nxt_obs, jnp.zeros_like(nxt_resets)))
    _, ld, _ = APPLY(params, mem_b, (nxt_obs, jnp.zeros_like(nxt_resets)))
    assert not np.allclose(lc, ld)


def test_transformer_reach_is_memory_window_per_layer() -> None:
    obs, _ = _inputs()
    resets = jnp.zeros((STEPS, ENVS), bool).at[0].set(True)
    params = _params(obs, resets)
    mem0 = NET.initialize_carry(ENVS)
    _, logits, _ = APPLY(params, mem0, (obs, resets))
    # Each layer looks back 3 steps (window 3): with 2 layers step 6 still sees step 0, step 7 not.
    _, changed, _ = APPLY(params, mem0, (obs.at[0].add(5.0), resets))
    assert np.array_equal(changed[7], logits[7]) and not np.allclose(changed[6], logits[6])


def test_transformer_sequence_call_equals_chained_one_step_calls() -> None:
    """What the update recomputes in one pass is what the rollout computed step by step."""
    obs, resets = _inputs()
    params = _params(obs, resets)
    mem_seq, logits_seq, value_seq = APPLY(params, NET.initialize_carry(ENVS), (obs, resets))
    mem = NET.initialize_carry(ENVS)
    logits, values = [], []
    for t in range(STEPS):
        mem, lg, v = APPLY(params, mem, (obs[t : t + 1], resets[t : t + 1]))
        logits.append(lg[0])
        values.append(v[0])
    np.testing.assert_allclose(np.stack(logits), logits_seq, atol=1e-5)
    np.testing.assert_allclose(np.stack(values), value_seq, atol=1e-5)
    np.testing.assert_allclose(mem.embeddings, mem_seq.embeddings, atol=1e-5)
    assert np.array_equal(mem.valid, mem_seq.valid)


def test_transformer_vmapped_cells_equal_separate_runs(tiny, cells_equal_separate_runs) -> None:
    static = tiny(TransformerStatic, **TINY_GTRXL)
    sweeps = [PPOSweep(lr=1e-3, lambda0=0.9), PPOSweep(lr=3e-3, lambda0=0.7, entropy_coeff=0.05)]
    seeds = jnp.array([3, 11], jnp.int32)
    stacked = jax.tree.map(lambda *xs: jnp.asarray(xs, jnp.float32), *sweeps)
    out = make_sweep_fn(static)(stacked, seeds)
    assert out.episode_return.shape == (2, 2, static.num_updates)
    assert np.all(np.isfinite(np.asarray(out.loss_total)))
    cells_equal_separate_runs(
        make_train(static), out, sweeps, seeds, seed_indices=(0,), rtol=1e-4, atol=1e-5
    )
    assert not np.allclose(out.loss_total[0, 0], out.loss_total[0, 1])


def test_transformer_double_critic_trains(tiny) -> None:
    static = tiny(TransformerStatic, **TINY_GTRXL, double_critic=True)
    sweep = jax.tree.map(jnp.float32, PPOSweep(lr=1e-3, lambda1=0.5, ld_weight=0.5))
    out = jax.jit(make_train(static))(sweep, jnp.int32(0))
    assert np.all(np.isfinite(np.asarray(out.loss_value)))
