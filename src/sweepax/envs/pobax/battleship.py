"""Battleship (gymnax 1.0 API), as POBAX 0.0.1 defines it: ``battleship_3``, ``_5``, ``_10``.

Source: POBAX 0.0.1 (github.com/taodav/pobax, ``pobax/envs/jax/battleship.py`` and its
``get_env``): a square board with ships of lengths (2,) on 3 x 3, (3, 2) on 5 x 5 and
(5, 4, 3, 2) on 10 x 10, placed at random (one after another, each horizontal or vertical with
probability 1/2, uniformly among the placements that overlap no earlier ship).

Action ``a`` fires at cell (a // size, a % size). Each shot costs -1; the shot that hits the last
ship cell gives ``size ** 2`` and ends the episode (a repeated shot is allowed and counts as a
step). Observation (float32, ``1 + size ** 2``): [1 if this shot hit a new ship cell (else 0),
then per cell 1 if it was never fired at]. That second part is an action mask
(``action_mask_dims``): as POBAX's agent, sweepax's PPO cuts it out of what the network sees
(which is then the hit flag alone) and never fires at a cell twice.

Keys are used as POBAX uses them, so the same reset key gives the same board. Time limit:
``max_steps_in_episode`` (default 1000; POBAX's env has none). ``env.gamma`` is 1.0, the discount
POBAX trains Battleship with (finite horizon). POBAX's ``perfect_memory`` variant is not offered:
its observation (a board of hits and misses) does not fit POBAX's own observation wrapper.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

SHIPS = {3: (2,), 5: (3, 2), 10: (5, 4, 3, 2)}
UNKNOWN, MISS, HIT = 0, 1, 2


@struct.dataclass
class EnvState(environment.EnvState):
    """Ship cells, shots so far (UNKNOWN / MISS / HIT per cell) and gymnax's step counter."""

    board: jax.Array  # (size, size) int32, 1 = ship
    hits_misses: jax.Array  # (size, size) int32
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


def _pick(key: jax.Array, fits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A uniform (row, column) among the True cells of ``fits``."""
    flat = jax.random.categorical(key, jnp.where(fits.ravel(), 0.0, -jnp.inf), shape=())
    return jnp.divmod(flat, fits.shape[1])


def place_ship(key: jax.Array, board: jax.Array, length: int) -> jax.Array:
    """``board`` with one more ship of ``length`` cells that overlaps none of its ships."""
    size = board.shape[0]
    span = size - length + 1
    # fits[y, x]: the ship starting at (y, x) covers free cells only
    down = sum(board[i : i + span, :] for i in range(length)) == 0  # vertical, (span, size)
    across = sum(board[:, i : i + span] for i in range(length)) == 0  # horizontal, (size, span)
    key_pose, key_cell = jax.random.split(key)
    horizontal = jax.random.bernoulli(key_pose)
    y_down, x_down = _pick(key_cell, down)
    y_across, x_across = _pick(key_cell, across)
    ship = jnp.ones((length,), board.dtype)
    return jax.lax.cond(
        horizontal,
        lambda: jax.lax.dynamic_update_slice(board, ship[None, :], (y_across, x_across)),
        lambda: jax.lax.dynamic_update_slice(board, ship[:, None], (y_down, x_down)),
    )


class Battleship(environment.Environment[EnvState, EnvParams]):
    """Battleship on a ``size`` x ``size`` board with POBAX's ships for that size."""

    gamma = 1.0  # POBAX trains it undiscounted (finite horizon)

    def __init__(self, size: int = 10):
        super().__init__()
        self.size = int(size)
        self.ship_lengths = SHIPS[self.size]
        self.action_mask_dims = (1, 1 + self.size**2)  # obs[1:]: 1 where firing is allowed

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
        """Fire at cell ``action``; -1, or size ** 2 when the last ship cell is hit."""
        row, col = jnp.divmod(jnp.asarray(action, jnp.int32), self.size)
        shot = jnp.where(state.board[row, col] == 1, HIT, MISS)
        next_state = state.replace(
            hits_misses=state.hits_misses.at[row, col].set(shot), time=state.time + 1
        )
        terminated = self.is_terminated(next_state, params)
        reward = jnp.where(terminated, float(self.size**2), -1.0).astype(jnp.float32)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return self._observe(state, next_state), next_state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Place the ships, one key each; nothing fired at."""
        board = jnp.zeros((self.size, self.size), jnp.int32)
        for length in self.ship_lengths:
            key_ship, key = jax.random.split(key)
            board = place_ship(key_ship, board, length)
        state = EnvState(
            board=board, hits_misses=jnp.zeros_like(board), time=jnp.zeros((), jnp.int32)
        )
        return self._observe(state, state), state

    def _observe(self, before: EnvState, after: EnvState) -> jax.Array:
        hit = jnp.sum(after.hits_misses == HIT) > jnp.sum(before.hits_misses == HIT)
        unfired = (after.hits_misses == UNKNOWN).ravel()
        return jnp.concatenate([hit[None], unfired]).astype(jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Every ship cell hit."""
        return jnp.all((state.board == 0) | (state.hits_misses == HIT))

    @property
    def name(self) -> str:
        """Environment id (POBAX's)."""
        return f"battleship_{self.size}"

    @property
    def num_actions(self) -> int:
        """One per cell."""
        return self.size**2

    @property
    def obs_dim(self) -> int:
        """Hit flag, then one entry per cell."""
        return 1 + self.size**2

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """One per cell."""
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Shape (1 + size ** 2,), entries 0 or 1."""
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Ships, shots and step counter."""
        cells = (self.size, self.size)
        return spaces.Dict(
            {
                "board": spaces.Box(0, 1, cells, jnp.int32),
                "hits_misses": spaces.Box(0, 2, cells, jnp.int32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
