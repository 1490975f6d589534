"""Compass World (gymnax 1.0 API), as POBAX 0.0.1 defines it.

Source: Rafols et al., "Using Predictive Representations to Improve Generalization in
Reinforcement Learning", IJCAI 2005; the variant is POBAX 0.0.1's (github.com/taodav/pobax,
``pobax/envs/jax/compass_world.py``, a gymnasium env there that its ``get_env`` does not offer).

An 8 x 8 room whose walls are one colour each (north orange, east yellow, south red, west blue,
except the west wall's top cell, green). The agent stands on one of the 6 x 6 inner cells, facing
north, east, south or west, and sees only the colour of the wall right in front of it: the
observation (float32, 5) is one-hot [orange, yellow, red, blue, green] when it faces a wall from
the cell next to it, else all 0. Actions: 0 forward (walls block), 1 turn right, 2 turn left.
Facing the green cell (top-left inner cell, facing west) gives reward 1 and ends the episode.
Episodes start in a uniform state other than that goal; with the same key as POBAX's reset, the
same state. Time limit: ``max_steps_in_episode`` (default 1000; POBAX's env has none).
``env.gamma`` is None: POBAX has no discount of its own for it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

FORWARD, RIGHT, LEFT = 0, 1, 2
NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)  # (row, column) per heading
ORANGE, YELLOW, RED, BLUE, GREEN = range(5)


@struct.dataclass
class EnvState(environment.EnvState):
    """Cell (row, column), heading and gymnax's step counter."""

    position: jax.Array  # (2,) int32, each 1 .. size - 2
    heading: jax.Array  # int32, NORTH .. WEST
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


class CompassWorld(environment.Environment[EnvState, EnvParams]):
    """Compass World in a ``size`` x ``size`` room (walls included)."""

    gamma = None  # POBAX has no discount of its own for it

    def __init__(self, size: int = 8):
        super().__init__()
        self.size = int(size)
        inner = np.arange(1, self.size - 1)
        rows, cols, heads = np.meshgrid(inner, inner, np.arange(4), indexing="ij")
        states = np.stack([rows, cols, heads], axis=-1).reshape(-1, 3)
        goal = (states == [1, 1, WEST]).all(-1)
        self.start_states = states[~goal].astype(np.int32)  # row-major, as POBAX lists them

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
        """Move or turn; reward 1 and ``terminated`` when facing the green cell."""
        action = jnp.asarray(action, jnp.int32)
        ahead = jnp.clip(state.position + jnp.asarray(MOVES)[state.heading], 1, self.size - 2)
        position = jnp.where(action == FORWARD, ahead, state.position).astype(jnp.int32)
        turn = jnp.where(action == RIGHT, 1, jnp.where(action == LEFT, -1, 0))
        heading = ((state.heading + turn) % 4).astype(jnp.int32)
        state = EnvState(position=position, heading=heading, time=state.time + 1)
        terminated = self.is_terminated(state, params)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        reward = terminated.astype(jnp.float32)
        return self.get_obs(state, params), state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """A uniform state other than the goal."""
        starts = jnp.asarray(self.start_states)
        s = starts[jax.random.choice(key, starts.shape[0])]
        state = EnvState(position=s[:2], heading=s[2], time=jnp.zeros((), jnp.int32))
        return self.get_obs(state, params), state

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> jax.Array:
        """One-hot colour of the wall right ahead, or zeros."""
        row, col, far = state.position[0], state.position[1], self.size - 2
        colour = jnp.select(
            [
                (state.heading == NORTH) & (row == 1),
                (state.heading == EAST) & (col == far),
                (state.heading == SOUTH) & (row == far),
                (state.heading == WEST) & (col == 1) & (row == 1),
                (state.heading == WEST) & (col == 1),
            ],
            [ORANGE, YELLOW, RED, GREEN, BLUE],
            default=-1,
        )
        return jax.nn.one_hot(colour, 5, dtype=jnp.float32)  # -1: all zeros

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Facing the green cell from the top-left inner cell."""
        return (state.position[0] == 1) & (state.position[1] == 1) & (state.heading == WEST)

    @property
    def name(self) -> str:
        """Environment id."""
        return "compass_world"

    @property
    def num_actions(self) -> int:
        """Forward, turn right, turn left."""
        return 3

    @property
    def obs_dim(self) -> int:
        """Five wall colours."""
        return 5

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """Forward, turn right, turn left."""
        return spaces.Discrete(3)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """One-hot colour or zeros, shape (5,)."""
        return spaces.Box(0.0, 1.0, (5,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Cell, heading and step counter."""
        return spaces.Dict(
            {
                "position": spaces.Box(1, self.size - 2, (2,), jnp.int32),
                "heading": spaces.Discrete(4),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
