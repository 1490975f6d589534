"""Actor-critic networks (GRU and memoryless MLP, same call signature) and their policies.

Source: the recurrent PPO pattern of PureJaxRL (github.com/luchris429/purejaxrl, ``ppo_rnn.py``;
the Gaussian head of ``ppo_continuous_action.py``).
Every network maps ``(hidden, (obs, resets)) -> (hidden, policy, value)`` over a whole sequence:
obs (time, batch, obs_dim), resets (time, batch) bool (True where obs starts a new episode),
hidden (batch, hidden_size), value (time, batch). ``policy`` depends on the ``ActionSpec``:
discrete, logits (time, batch, n) for ``Categorical``; continuous, ``(mean, log_std)`` each
(time, batch, dim) for ``DiagGaussian`` (``log_std`` is one learned, state-independent parameter
per action dim, broadcast).
Image observations (``obs_shape`` (H, W, C) given: the env's obs is the image flattened, maybe
followed by extra features such as ``action_concat``'s previous action) pass a small conv stack
(``CNNEncoder``) before the first Dense layer; vector observations (``obs_shape=None``) skip it.
"""

from __future__ import annotations

import functools
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

    @staticmethod
    def noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """The random draw ``sample(key)`` makes for logits of ``shape`` (Gumbel noise)."""
        return jax.random.gumbel(key, shape, jnp.float32)

    def sample_from(self, noise: jax.Array) -> jax.Array:
        """``sample(key)`` given ``noise(key, logits.shape)``: the same actions (Gumbel-max,
        as ``jax.random.categorical`` computes it)."""
        return jnp.argmax(noise + self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """Log-probability of ``action``, shape logits.shape[:-1]."""
        action = jnp.asarray(action, jnp.int32)
        return jnp.take_along_axis(self.logits, action[..., None], axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """Entropy, shape logits.shape[:-1]."""
        probs = jnp.exp(self.logits)
        return -jnp.sum(probs * self.logits, axis=-1)


class DiagGaussian:
    """Diagonal Gaussian over the last axis of ``mean``; densities of the whole action vector."""

    def __init__(self, mean: jax.Array, log_std: jax.Array):
        self.mean = mean
        self.log_std = jnp.broadcast_to(log_std, mean.shape)

    def sample(self, key: jax.Array) -> jax.Array:
        """Sample actions, shape mean.shape, float32 (unbounded: clip to the env's Box outside)."""
        return self.sample_from(self.noise(key, self.mean.shape))

    @staticmethod
    def noise(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """The random draw ``sample(key)`` makes for a mean of ``shape`` (standard normal)."""
        return jax.random.normal(key, shape, jnp.float32)

    def sample_from(self, noise: jax.Array) -> jax.Array:
        """``sample(key)`` given ``noise(key, mean.shape)``."""
        return self.mean + jnp.exp(self.log_std) * noise

    def log_prob(self, action: jax.Array) -> jax.Array:
        """Log-density of ``action``, summed over action dims: shape mean.shape[:-1]."""
        z = (action - self.mean) * jnp.exp(-self.log_std)
        return jnp.sum(-0.5 * jnp.square(z) - self.log_std - 0.5 * np.log(2 * np.pi), axis=-1)

    def entropy(self) -> jax.Array:
        """Entropy, summed over action dims: shape mean.shape[:-1]."""
        return jnp.sum(0.5 + 0.5 * np.log(2 * np.pi) + self.log_std, axis=-1)


class ActionSpec(tp.NamedTuple):
    """What the actor head outputs: ``size`` logits, or a ``size``-dim Gaussian mean."""

    size: int  # number of discrete actions, or of continuous action dims
    continuous: bool = False


def distribution(policy: tp.Any, continuous: bool) -> Categorical | DiagGaussian:
    """The action distribution of a network's ``policy`` output (logits, or (mean, log_std))."""
    return DiagGaussian(*policy) if continuous else Categorical(policy)


class ScannedRNN(nn.Module):
    """GRU scanned over time; the carry is reset to zeros where ``resets`` is True.

    The parameters are flax's ``GRUCell`` (``gru/cell/{ir,iz,in,hr,hz,hn}``), created by
    scanning ``_GRUStep`` at init. Applying runs ``gru_sequence``: the same cell, with the input
    projections of every step done as one matmul before the scan and a hand-written backward
    pass that sums the recurrent kernel's gradient over time in one matmul after its scan (a
    scan's own transpose would add one outer product per step into a loop carry).
    """

    hidden_size: int
    unroll: int = 1

    @nn.compact
    def __call__(
        self, carry: jax.Array, xs: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        """carry (batch, hidden); xs = (ins (time, batch, d), resets (time, batch))."""
        if self.is_initializing():
            scan = nn.scan(
                _GRUStep,
                variable_broadcast="params",
                split_rngs={"params": False},
                in_axes=0,
                out_axes=0,
                unroll=self.unroll,
            )
            return scan(self.hidden_size, name="gru")(carry, xs)
        cell = self.variables["params"]["gru"]["cell"]
        ins, resets = xs
        w_in = jnp.concatenate([cell[g]["kernel"] for g in ("ir", "iz", "in")], axis=-1)
        b_in = jnp.concatenate([cell[g]["bias"] for g in ("ir", "iz", "in")], axis=-1)
        w_h = jnp.concatenate([cell[g]["kernel"] for g in ("hr", "hz", "hn")], axis=-1)
        pre = dense_product(ins, w_in) + b_in
        hs, last = gru_sequence(w_h, cell["hn"]["bias"], carry, pre, resets, self.unroll)
        return last, hs

    @staticmethod
    def initialize_carry(batch_size: int, hidden_size: int) -> jax.Array:
        """Zero carry, shape (batch, hidden)."""
        return jnp.zeros((batch_size, hidden_size), jnp.float32)


class _GRUStep(nn.Module):
    """One GRU step with episode-start reset (creates ``ScannedRNN``'s parameters; the
    reference ``gru_sequence`` is tested against)."""

    hidden_size: int

    @nn.compact
    def __call__(
        self, carry: jax.Array, x: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        ins, resets = x
        carry = _reset(resets, carry)
        carry, y = nn.GRUCell(
            features=self.hidden_size,
            kernel_init=nn.initializers.lecun_normal(),
            recurrent_kernel_init=orthogonal(1.0),
            name="cell",
        )(carry, ins)
        return carry, y


def rows_product(x: jax.Array, y: jax.Array) -> jax.Array:
    """sum over rows of x_row^T y_row: ``x`` (..., i), ``y`` (..., j) with the same leading
    dims -> (i, j), as one plain matmul of ``x`` transposed and ``y``.

    The barrier keeps the transpose a copy of its own; folded into the product (XLA's default),
    the CPU backend transposes ``y`` as well and runs a slower kernel.
    """
    rows_t = jax.lax.optimization_barrier(x.reshape(-1, x.shape[-1]).T)
    return rows_t @ y.reshape(-1, y.shape[-1])


@jax.custom_vjp
def dense_product(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x`` (..., in) times ``kernel`` (in, out), as ``nn.Dense`` computes it, with a
    hand-written backward pass whose kernel gradient is one plain matmul of ``x`` transposed
    (materialised) and the cotangent, rows of all leading dims contracted.

    Autodiff contracts both operands over their row dim, which XLA's CPU backend emits as a
    product on transposed operands (a copy and a slower kernel); this form keeps every product
    of the backward pass in the layout the CPU's matmul kernels take directly.
    """
    return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))


def _dense_product_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple]:
    return dense_product(x, kernel), (x, kernel)


def _dense_product_bwd(residuals: tuple, d_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    d_x = jax.lax.dot_general(d_out, kernel, (((d_out.ndim - 1,), (1,)), ((), ())))
    return d_x, rows_product(x, d_out)


dense_product.defvjp(_dense_product_fwd, _dense_product_bwd)


def _dense_dot_general(
    x: jax.Array,
    kernel: jax.Array,
    dimension_numbers: tp.Any,
    precision: tp.Any = None,
    preferred_element_type: tp.Any = None,
) -> jax.Array:
    """``nn.Dense``'s ``dot_general`` argument: ``dense_product`` for the one contraction
    ``Dense`` asks for (last dim of ``x`` with the kernel's first, default precision)."""
    if dimension_numbers != (((x.ndim - 1,), (0,)), ((), ())) or precision is not None:
        raise ValueError(f"dense_product computes x @ kernel only, not {dimension_numbers}")
    return dense_product(x, kernel)


def _dense(features: int, kernel_init: tp.Callable, bias_init: tp.Callable) -> nn.Dense:
    """``nn.Dense`` (the same parameters, names and numbers) whose product is ``dense_product``."""
    return nn.Dense(
        features, kernel_init=kernel_init, bias_init=bias_init, dot_general=_dense_dot_general
    )


def _gru_cell(pre: jax.Array, proj: jax.Array, h: jax.Array) -> jax.Array:
    """flax's ``GRUCell`` from its two projections: ``pre`` = x W_i + b_i and ``proj`` =
    h W_h (+ b_hn on the n third), each (..., 3 hidden) as [r | z | n]; ``h`` (..., hidden)."""
    size = h.shape[-1]
    r = nn.sigmoid(pre[..., :size] + proj[..., :size])
    z = nn.sigmoid(pre[..., size : 2 * size] + proj[..., size : 2 * size])
    n = jnp.tanh(pre[..., 2 * size :] + r * proj[..., 2 * size :])
    return (1.0 - z) * n + z * h


def _recurrent_projection(w_h: jax.Array, b_hn: jax.Array, h: jax.Array) -> jax.Array:
    """h W_h with the n gate's bias added to its third: (..., 3 hidden)."""
    proj = h @ w_h
    size = h.shape[-1]
    return jnp.concatenate([proj[..., : 2 * size], proj[..., 2 * size :] + b_hn], axis=-1)


def _reset(resets: jax.Array, h: jax.Array) -> jax.Array:
    """``h`` (..., batch, hidden) with the rows where ``resets`` (..., batch) set to zero."""
    return jnp.where(resets[..., None], jnp.zeros_like(h), h)


def _gru_forward(
    w_h: jax.Array, b_hn: jax.Array, h0: jax.Array, pre: jax.Array, resets: jax.Array, unroll: int
) -> tuple[jax.Array, jax.Array]:
    """Hidden states (time, batch, hidden) and the last one."""

    def step(h: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        pre_t, reset_t = x
        h = _reset(reset_t, h)
        h = _gru_cell(pre_t, _recurrent_projection(w_h, b_hn, h), h)
        return h, h

    last, hs = jax.lax.scan(step, h0, (pre, resets), unroll=unroll)
    return hs, last


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def gru_sequence(
    w_h: jax.Array, b_hn: jax.Array, h0: jax.Array, pre: jax.Array, resets: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """A GRU over time from its input projections ``pre`` (time, batch, 3 hidden), starting at
    ``h0`` (batch, hidden), the state zeroed where ``resets`` (time, batch): (states, last).

    ``w_h`` (hidden, 3 hidden) is [W_hr | W_hz | W_hn], ``b_hn`` (hidden,) the n gate's bias.
    The same numbers as scanning flax's ``GRUCell``; the backward pass runs one reverse scan for
    the state's cotangent and gets the weights' gradients from two matmuls over all steps.
    """
    return _gru_forward(w_h, b_hn, h0, pre, resets, unroll)


def _gru_sequence_fwd(
    w_h: jax.Array, b_hn: jax.Array, h0: jax.Array, pre: jax.Array, resets: jax.Array,
    unroll: int,
) -> tuple[tuple[jax.Array, jax.Array], tuple]:  # fmt: skip
    hs, last = _gru_forward(w_h, b_hn, h0, pre, resets, unroll)
    return (hs, last), (w_h, b_hn, h0, pre, resets, hs)


def _gru_sequence_bwd(unroll: int, residuals: tuple, cotangents: tuple) -> tuple:
    w_h, b_hn, h0, pre, resets, hs = residuals
    d_hs, d_last = cotangents
    prev = _reset(resets, jnp.concatenate([h0[None], hs[:-1]], axis=0))  # state each step saw
    proj = _recurrent_projection(w_h, b_hn, prev)  # all steps in one matmul

    def back(d_next: jax.Array, x: tuple) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        pre_t, proj_t, prev_t, d_out_t, reset_t = x
        _, cell_vjp = jax.vjp(_gru_cell, pre_t, proj_t, prev_t)
        d_pre, d_proj, d_prev = cell_vjp(d_next + d_out_t)
        d_prev = d_prev + d_proj @ w_h.T
        return _reset(reset_t, d_prev), (d_pre, d_proj)

    d_h0, (d_pre, d_proj) = jax.lax.scan(
        back, d_last, (pre, proj, prev, d_hs, resets), reverse=True, unroll=unroll
    )
    size = h0.shape[-1]
    d_w_h = rows_product(prev, d_proj)
    d_b_hn = d_proj[..., 2 * size :].sum(axis=(0, 1))
    return d_w_h, d_b_hn, d_h0, d_pre, None


gru_sequence.defvjp(_gru_sequence_fwd, _gru_sequence_bwd)


class CNNEncoder(nn.Module):
    """Conv stack for flat image observations: (..., H*W*C + k) -> (..., features + k).

    Nature-CNN-like but for small images: 5x5/2 (16), 3x3/2 (32), 3x3/2 (32), SAME padding and
    ReLU (a 64 x 64 image becomes 8 x 8 x 32, 32 x 32 becomes 4 x 4 x 32), then Dense +
    ReLU to ``features``; the ``k`` trailing non-image inputs are appended unchanged.
    """

    obs_shape: tuple[int, int, int]
    features: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x (..., H*W*C + k) -> (..., features + k)."""
        n_pixels = int(np.prod(self.obs_shape))
        lead = x.shape[:-1]
        img = x[..., :n_pixels].reshape((-1, *self.obs_shape))
        for feats, kernel in ((16, 5), (32, 3), (32, 3)):
            img = nn.Conv(
                feats,
                (kernel, kernel),
                strides=(2, 2),
                padding="SAME",
                kernel_init=orthogonal(np.sqrt(2)),
                bias_init=constant(0.0),
            )(img)
            img = nn.relu(img)
        img = img.reshape((img.shape[0], -1))
        img = nn.relu(_dense(self.features, orthogonal(np.sqrt(2)), constant(0.0))(img))
        return jnp.concatenate([img.reshape((*lead, self.features)), x[..., n_pixels:]], axis=-1)


def _encode(x: jax.Array, obs_shape: tuple[int, int, int] | None, features: int) -> jax.Array:
    """``CNNEncoder`` features of image observations; vector observations unchanged."""
    if obs_shape is None:
        return x
    return CNNEncoder(tuple(obs_shape), features, name="cnn")(x)


def _heads(
    module: nn.Module, x: jax.Array, hidden_size: int, action: ActionSpec, num_values: int = 1
) -> tuple[tp.Any, jax.Array]:
    """Actor and critic MLP heads of ``module``: policy, value (...) or (..., num_values).

    The policy is logits (..., n) or, continuous, (mean, log_std) each (..., dim): the mean from
    the actor MLP, ``log_std`` the parameter ``module``'s ``log_std`` (dim,) (init 0), broadcast.
    ``num_values=2`` (lambda-discrepancy): two independent critic MLPs on the same features,
    stacked on the last axis.

    The parameters are the ``Dense`` layers' (actor hidden, policy, then each critic's hidden
    and value). Applied, the heads run as two products: the hidden layers side by side, then the
    output layers as one block-diagonal kernel (zeros between the heads), the same numbers up to
    the order of float additions.
    """
    sqrt2 = orthogonal(np.sqrt(2))
    layers = [
        _dense(hidden_size, sqrt2, constant(0.0)),
        _dense(action.size, orthogonal(0.01), constant(0.0)),
    ]
    if action.continuous:
        log_std = module.param("log_std", constant(0.0), (action.size,))
    for _ in range(num_values):
        layers += [
            _dense(hidden_size, sqrt2, constant(0.0)),
            _dense(1, orthogonal(1.0), constant(0.0)),
        ]
    if module.is_initializing():  # creates the parameters; its outputs are not used
        outs = [layers[i + 1](nn.relu(layers[i](x))) for i in range(0, len(layers), 2)]
        out = jnp.concatenate(outs, axis=-1)
    else:
        params = module.variables["params"]
        kernels = [params[layer.name]["kernel"] for layer in layers]
        biases = [params[layer.name]["bias"] for layer in layers]
        hidden = nn.relu(
            dense_product(x, jnp.concatenate(kernels[::2], axis=-1))
            + jnp.concatenate(biases[::2], axis=-1)
        )
        out_kernel = jax.scipy.linalg.block_diag(*kernels[1::2])
        width = out_kernel.shape[1]
        # 8 output columns: XLA's CPU matmul kernels run 4 or 5 columns 1.5-2x slower than 8
        padded = jnp.pad(out_kernel, ((0, 0), (0, -width % 8)))
        out = dense_product(hidden, padded)[..., :width] + jnp.concatenate(biases[1::2], axis=-1)
    policy = out[..., : action.size]
    if action.continuous:
        policy = (policy, jnp.broadcast_to(log_std, policy.shape))
    values = out[..., action.size :]
    return policy, values[..., 0] if num_values == 1 else values


class RecurrentActorCritic(nn.Module):
    """Dense embedding -> GRU -> actor / critic heads."""

    action: ActionSpec
    hidden_size: int = 128
    unroll: int = 1
    num_values: int = 1  # 2: lambda-discrepancy double critic
    obs_shape: tuple[int, int, int] | None = None  # image obs: CNN encoder first

    @nn.compact
    def __call__(
        self, hidden: jax.Array, x: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, tp.Any, jax.Array]:
        """hidden (batch, hidden), x = (obs (time, batch, d), resets (time, batch))."""
        obs, resets = x
        obs = _encode(obs, self.obs_shape, self.hidden_size)
        emb = _dense(self.hidden_size, orthogonal(np.sqrt(2)), constant(0.0))(obs)
        emb = nn.relu(emb)
        hidden, emb = ScannedRNN(self.hidden_size, unroll=self.unroll)(hidden, (emb, resets))
        policy, value = _heads(self, emb, self.hidden_size, self.action, self.num_values)
        return hidden, policy, value

    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Zero GRU state, shape (batch, hidden)."""
        return ScannedRNN.initialize_carry(batch_size, self.hidden_size)


class MLPActorCritic(nn.Module):
    """Memoryless: Dense embedding -> Dense -> actor / critic heads; ``hidden`` passes through."""

    action: ActionSpec
    hidden_size: int = 128
    unroll: int = 1  # unused; keeps the constructor the same as RecurrentActorCritic
    num_values: int = 1
    obs_shape: tuple[int, int, int] | None = None  # image obs: CNN encoder first

    @nn.compact
    def __call__(
        self, hidden: jax.Array, x: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, tp.Any, jax.Array]:
        """hidden (batch, 1) returned unchanged, x = (obs (time, batch, d), resets ignored)."""
        obs, _ = x
        obs = _encode(obs, self.obs_shape, self.hidden_size)
        h = nn.relu(_dense(self.hidden_size, orthogonal(np.sqrt(2)), constant(0.0))(obs))
        h = nn.relu(_dense(self.hidden_size, orthogonal(np.sqrt(2)), constant(0.0))(h))
        policy, value = _heads(self, h, self.hidden_size, self.action, self.num_values)
        return hidden, policy, value

    def initialize_carry(self, batch_size: int) -> jax.Array:
        """Dummy carry, shape (batch, 1)."""
        return jnp.zeros((batch_size, 1), jnp.float32)


def make_network(
    memoryless: bool,
    action: ActionSpec,
    hidden_size: int,
    unroll: int = 1,
    num_values: int = 1,
    obs_shape: tp.Sequence[int] | None = None,
) -> RecurrentActorCritic | MLPActorCritic:
    """The actor-critic for ``PPOStatic.memoryless`` (``num_values=2``: double critic).

    ``obs_shape`` (H, W, C): the observation is a flattened image; encode it with ``CNNEncoder``.
    """
    cls = MLPActorCritic if memoryless else RecurrentActorCritic
    return cls(
        action=action,
        hidden_size=hidden_size,
        unroll=unroll,
        num_values=num_values,
        obs_shape=None if obs_shape is None else tuple(int(n) for n in obs_shape),
    )


__all__ = [
    "ActionSpec",
    "CNNEncoder",
    "Categorical",
    "DiagGaussian",
    "MLPActorCritic",
    "RecurrentActorCritic",
    "ScannedRNN",
    "distribution",
    "gru_sequence",
    "make_network",
]
