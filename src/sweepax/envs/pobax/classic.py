"""Classic POMDPs from ``.POMDP`` files (gymnax 1.0 API), under POBAX's ids.

Source: the models are the ``.POMDP`` files POBAX ships (github.com/taodav/pobax,
``pobax/envs/classic/POMDP``; origins and license in ``pomdp/NOTICE.md``), read by our parser
(``pomdp_file``); the semantics follow POBAX 0.0.1's ``pobax/envs/classic``.

Ids: the file names (``4x3``, ``cheese.95``, ``hallway``, ``heavenhell``, ``network``, ``paint``,
``shuttle``, ``tiger-alt-start``, ``tmaze2``, ``tmaze5``, ``4x3_nonterminating``,
``cheese.95_nonterminating``) and ``fully_observable_<name>`` for the first ten, which observes the
hidden state itself as a one-hot vector.

Model (``build_model``), from the file's T, O, R:
- rows of T, the start distribution and the observation rows are divided by their sums (rows that
  sum to 0 stay 0), as POBAX does; ``paint.POMDP`` writes two observations with probability 1 in
  its terminal state, which so become 0.5 each;
- the reward of a transition is R[a, s, s'] (every shipped file gives the same reward for every
  observation; a reward that depends on the observation is replaced by its expectation over it);
- when the observation probabilities depend on the action (``paint``), the hidden state becomes
  (state, previous action), indexed ``s * |A| + a``, plus one start state (index ``|S|`` times
  ``|A|`` + a) that emits a new observation of its own (the last one) and moves to the file's
  start distribution: so an observation depends on the state alone. A state absorbing under
  every action in the file stays absorbing under every action in this space.
- a state is terminal when every action keeps it there with probability 1.

Episode: reset samples the state from the start distribution, then the observation; a step samples
s' ~ T[a, s], then o ~ phi[s'] (a one-hot float32 vector over the observations), reward
R[a, s, s']; ``terminated`` when s' is terminal. The keys are split and used as POBAX does (reset:
observation key, then state key; step: state key, then observation key), so the same keys give the
same episode. Time limit: ``max_steps_in_episode`` (default 1000, the value POBAX declares; POBAX's
step never truncates these envs). ``env.gamma`` is the file's discount, which POBAX uses in place
of the agent's gamma.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from sweepax.envs.pobax import pomdp_file

# the shipped models; fully_observable_<name> exists for these (as in POBAX's get_env)
NAMES = (
    "4x3",
    "cheese.95",
    "hallway",
    "heavenhell",
    "network",
    "paint",
    "shuttle",
    "tiger-alt-start",
    "tmaze2",
    "tmaze5",
)
NONTERMINATING = ("4x3_nonterminating", "cheese.95_nonterminating")
FULLY_OBSERVABLE = "fully_observable_"
IDS = NAMES + NONTERMINATING + tuple(FULLY_OBSERVABLE + n for n in NAMES)


@dataclasses.dataclass(frozen=True)
class Model:
    """A POMDP ready to sample: hidden states 0..N-1, actions 0..A-1, observations 0..K-1."""

    T: np.ndarray  # (A, N, N) float32, rows are distributions (or all 0)
    R: np.ndarray  # (A, N, N) float32, reward of (a, s, s')
    p0: np.ndarray  # (N,) float32 start distribution
    phi: np.ndarray  # (N, K) float32, P(o | s)
    terminal: np.ndarray  # (N,) bool, absorbing under every action
    gamma: float


def _normalise(rows: np.ndarray) -> np.ndarray:
    """Divide each last-axis row by its sum; rows summing to 0 stay 0."""
    total = rows.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(rows / total)


def _transition_rewards(f: pomdp_file.PomdpFile) -> np.ndarray:
    """R[a, s, s'] from R[a, s, s', o]: exact where the reward ignores o, else its expectation."""
    if np.all(f.R[..., :1] == f.R):
        return f.R[..., 0]
    obs = _normalise(f.O)[:, None, :, :]  # P(o | a, s'), broadcast over s
    return (f.R * obs).sum(-1)


def _with_previous_action(
    trans: np.ndarray, rewards: np.ndarray, emit: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hidden state (s, previous action) at index s * A + a, plus start states S * A + a.

    ``trans`` (A, S, S), ``rewards`` (A, S, S), ``emit`` (A, S, O) = P(o | a, s'), ``start`` (S,);
    returns the same four for the (S + 1) * A pairs, ``emit`` as (N, O + 1) without the action.
    """
    n_a, n_s, _ = trans.shape
    # the start state (index n_s) moves to the start distribution under any action
    t1 = np.zeros((n_a, n_s + 1, n_s + 1))
    t1[:, :n_s, :n_s] = trans
    t1[:, n_s, :n_s] = start
    r1 = np.zeros_like(t1)
    r1[:, :n_s, :n_s] = rewards
    absorbing = np.all(t1[:, np.arange(n_s + 1), np.arange(n_s + 1)] == 1, axis=0)
    n = (n_s + 1) * n_a
    t2 = np.zeros((n_a, n_s + 1, n_a, n_s + 1, n_a))  # [a, s, prev, s', a']
    for a in range(n_a):
        t2[a, :, :, :, a] = t1[a][:, None, :]  # s' is reached by a: a' = a, whatever prev was
    t2 = t2.reshape(n_a, n, n)
    stay = np.repeat(absorbing, n_a)  # absorbing states keep (s, prev) under every action
    t2[:, stay, :] = 0.0
    t2[:, stay, stay.nonzero()[0]] = 1.0
    r2 = np.repeat(np.repeat(r1, n_a, axis=1), n_a, axis=2)
    phi = np.zeros((n_s + 1, n_a, emit.shape[-1] + 1))
    phi[:n_s, :, :-1] = emit.transpose(1, 0, 2)  # P(o | s', a) for the pair (s', a)
    phi[n_s, :, -1] = 1.0  # the start state's own observation
    p0 = np.zeros(n)
    p0[n_s * n_a :] = 1.0 / n_a
    return t2, r2, phi.reshape(n, -1), p0


def build_model(f: pomdp_file.PomdpFile) -> Model:
    """A sampleable model from a parsed file (see the module docstring)."""
    trans, rewards = f.T, _transition_rewards(f)
    if all(np.allclose(f.O[0], o) for o in f.O[1:]):
        phi, p0 = f.O[0], f.start
    else:
        trans, rewards, phi, p0 = _with_previous_action(trans, rewards, f.O, f.start)
    trans = _normalise(trans).astype(np.float32)
    n = trans.shape[-1]
    return Model(
        T=trans,
        R=rewards.astype(np.float32),
        p0=_normalise(p0).astype(np.float32),
        phi=_normalise(phi).astype(np.float32),
        terminal=np.all(trans[:, np.arange(n), np.arange(n)] == 1, axis=0),
        gamma=float(f.discount),
    )


def model_path(name: str) -> Any:
    """The shipped file for ``name`` (package data)."""
    return resources.files("sweepax.envs.pobax").joinpath("pomdp", f"{name}.POMDP")


@functools.cache
def load_model(name: str) -> Model:
    """The model of a shipped file, parsed once per process."""
    path = model_path(name)
    return build_model(pomdp_file.parse(path.read_text(), source=str(path)))


@struct.dataclass
class EnvState(environment.EnvState):
    """The hidden state index and gymnax's step counter."""

    state: jax.Array  # int32, 0 .. N-1
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


class ClassicPOMDP(environment.Environment[EnvState, EnvParams]):
    """A POMDP from a model; ``fully_observable`` observes the hidden state (one-hot)."""

    def __init__(self, model: Model, name: str, fully_observable: bool = False):
        super().__init__()
        self.model = model
        self._name = name
        self.fully_observable = bool(fully_observable)
        self.gamma = model.gamma

    @classmethod
    def from_id(cls, env_id: str) -> ClassicPOMDP:
        """``<name>`` or ``fully_observable_<name>`` (see ``IDS``)."""
        fully = env_id.startswith(FULLY_OBSERVABLE)
        name = env_id.removeprefix(FULLY_OBSERVABLE)
        return cls(load_model(name), env_id, fully_observable=fully)

    @property
    def default_params(self) -> EnvParams:
        """A 1000-step time limit."""
        return EnvParams()

    def _observe(self, key: jax.Array, s: jax.Array) -> jax.Array:
        if self.fully_observable:
            return jax.nn.one_hot(s, self.obs_dim, dtype=jnp.float32)
        phi = jnp.asarray(self.model.phi)
        o = jax.random.choice(key, phi.shape[-1], p=phi[s])
        return jax.nn.one_hot(o, self.obs_dim, dtype=jnp.float32)

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """s' ~ T[a, s], o ~ phi[s'], reward R[a, s, s'], terminated if s' is terminal."""
        key_state, key_obs = jax.random.split(key)
        action = jnp.asarray(action, jnp.int32)
        trans = jnp.asarray(self.model.T)
        s_next = jax.random.choice(key_state, trans.shape[-1], p=trans[action, state.state])
        s_next = s_next.astype(jnp.int32)
        reward = jnp.asarray(self.model.R)[action, state.state, s_next]
        terminated = jnp.asarray(self.model.terminal)[s_next]
        obs = self._observe(key_obs, s_next)
        state = EnvState(state=s_next, time=state.time + 1)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return obs, state, reward.astype(jnp.float32), terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """s ~ start distribution, then its observation."""
        key_obs, key_state = jax.random.split(key)
        p0 = jnp.asarray(self.model.p0)
        s = jax.random.choice(key_state, p0.shape[0], p=p0).astype(jnp.int32)
        state = EnvState(state=s, time=jnp.zeros((), jnp.int32))
        return self._observe(key_obs, s), state

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Whether the hidden state is terminal."""
        return jnp.asarray(self.model.terminal)[state.state]

    @property
    def name(self) -> str:
        """Environment id (POBAX's)."""
        return self._name

    @property
    def num_actions(self) -> int:
        """The file's actions."""
        return int(self.model.T.shape[0])

    @property
    def num_states(self) -> int:
        """Hidden states (with the previous action where observations depend on it)."""
        return int(self.model.T.shape[-1])

    @property
    def obs_dim(self) -> int:
        """Observations (one-hot), or hidden states when fully observable."""
        return self.num_states if self.fully_observable else int(self.model.phi.shape[-1])

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """The file's actions."""
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """One-hot vector, shape (obs_dim,)."""
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Hidden state and step counter."""
        return spaces.Dict(
            {
                "state": spaces.Discrete(self.num_states),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
