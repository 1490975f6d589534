"""POBAX's ``simple_chain`` (gymnax 1.0 API): a chain walked by its only action.

Source: POBAX 0.0.1 ``pobax/envs/jax/simple_chain.py`` (github.com/taodav/pobax), ``n = 10`` as in
its ``get_env``. The agent starts at cell 0; its one action moves it one cell on; reaching cell
``n`` gives reward 1 and ends the episode (so every episode is ``n`` steps with return 1). The
observation is always ``[1.0]``. Useful to check value estimates: the value of the start is
``gamma ** (n - 1)``.

POBAX's ``perfect_memory`` variant of this env cannot produce an observation (its ``get_obs``
returns an attribute the env does not have), so it is not offered here. Time limit:
``max_steps_in_episode`` (default 1000; POBAX's env has none, and its episodes last ``n`` steps).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class EnvState(environment.EnvState):
    """The agent's cell and gymnax's step counter."""

    pos: jax.Array  # int32, 0 .. n
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


class SimpleChain(environment.Environment[EnvState, EnvParams]):
    """A chain of ``n`` steps, reward 1 at its end."""

    gamma = None  # POBAX trains it with the agent's gamma

    def __init__(self, n: int = 10):
        super().__init__()
        self.n = int(n)

    @property
    def default_params(self) -> EnvParams:
        """A 1000-step time limit."""
        return EnvParams()

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """One cell on; reward 1 and ``terminated`` on reaching cell n."""
        pos = jnp.minimum(state.pos + 1, self.n).astype(jnp.int32)
        terminated = pos == self.n
        state = EnvState(pos=pos, time=state.time + 1)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        reward = terminated.astype(jnp.float32)
        return self.get_obs(state, params), state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Cell 0."""
        state = EnvState(pos=jnp.zeros((), jnp.int32), time=jnp.zeros((), jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> jax.Array:
        """Always ``[1.0]``."""
        return jnp.ones((1,), jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """At the end of the chain."""
        return state.pos == self.n

    @property
    def name(self) -> str:
        """Environment id (POBAX's)."""
        return "simple_chain"

    @property
    def num_actions(self) -> int:
        """One action."""
        return 1

    @property
    def obs_dim(self) -> int:
        """One constant feature."""
        return 1

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """One action."""
        return spaces.Discrete(1)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Shape (1,)."""
        return spaces.Box(0.0, 1.0, (1,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Cell and step counter."""
        return spaces.Dict(
            {
                "pos": spaces.Discrete(self.n + 1),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
