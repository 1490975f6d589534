"""POBAX's PocMan (gymnax 1.0 API): partially observable Pac-Man on a 21 x 19 maze, id ``pocman``.

Source: Silver & Veness, "Monte-Carlo Planning in Large POMDPs", NeurIPS 2010 (the observation);
the variant and its numbers are POBAX 0.0.1's (github.com/taodav/pobax,
``pobax/envs/jax/pocman.py``), whose dynamics are Jumanji 1.1's Pac-Man
(github.com/instadeepai/jumanji, ``environments/routing/pac_man``, Apache-2.0) on POBAX's
smaller maze. Positions here are (row, column).

Maze: ``X`` wall, every other cell holds a pellet (+10); ``O`` power pills (+50, ghosts frightened
for 30 steps); ``P`` start; ``G`` the four ghosts' spawns; ``S`` their scatter targets. Row 9 is a
tunnel: leaving one side enters the other. Actions: 0 up, 1 left, 2 down, 3 right; a move into a
wall stays. The episode ends (``terminated``) when a ghost catches the agent or every pellet is
eaten; the time limit is ``max_steps_in_episode`` (default 1000, POBAX's) and is reported as
``truncated``. A ghost caught while frightened goes back to its spawn, paying +200 the first time
each ghost is eaten. ``env.gamma`` is 0.95, the discount POBAX trains PocMan with.

Ghosts (Jumanji's rules): ghost i first moves at step 3, 7, 12, 17 of an episode. Then a ghost
in a corridor (exactly the left and right, or the up and down cells open) repeats its last move;
elsewhere it picks uniformly among the open, non-reversing neighbour cells closest to its target:
the agent (ghost 0), 4 cells ahead of the agent in the direction of this step's action (1), the sum
of those two offsets (2), the agent when farther than 8 cells else its scatter target (3), and its
scatter target while frightened. The ghosts' randomness comes from a key kept in the state, drawn
at reset: the same reset key and actions give the same episode.

Observation (float32, 11): whether the cell up, right, down, left is open; a pellet within
Manhattan distance 1; a ghost within distance 2; per direction (up, left, down, right) the number
of ghosts in the straight line of sight up to the first wall (a ghost on the agent's own cell
counts in every direction); whether ghosts are frightened.

POBAX's quirks are kept so that episodes agree step for step: the "down" entry reads the cell
below at column = the agent's row (clamped to the maze); the targets "ahead of the agent" and
the scatter targets are compared with row and column swapped; a line of sight that reaches the
maze's edge without meeting a wall (the tunnel row) sees nothing; a ghost meets the agent when
it ends on the agent's new or previous cell, or the agent ends where the ghost was before its
previous move.

Perfect memory (``perfect_memory``, POBAX's ``PocManStateWrapper``): the observation is the
state drawn on the maze, a 21 x 19 x 6 grid flattened (``obs_shape``: the agent's CNN reads it as
an image), in place of the 11 features. Channels: (0) -1 on open cells, 0 on walls, 1 where a
pellet is; (1) the same with the power pills; (2) the ghosts, -1 each while not frightened, else
the steps of fright left; (3) the ghosts' cells before their last move; (4) the agent; (5) the last
action everywhere. ``pocman`` draws it as POBAX 0.0.1 does, which is what its published
perfect-memory results were trained on: pellets, pills and both ghost layers are written at
(column, row) of the (row, column) grid, so they land transposed and those of rows 19 and 20 are
dropped (the agent's layer is right); eaten pellets and pills, which Jumanji parks at (0, 0), mark
that corner once one is eaten; the ghost layer holds the fright counter, which after a reset
counts on below zero (-1, -2, ...) rather than -1. ``pocman_aligned`` is the same env with that
grid drawn as meant (``aligned=True``): every layer at (row, column), only uneaten pellets and
pills, ghosts -1 while not frightened. Without perfect memory the two ids are the same env.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

MAZE = (
    "XXXXXXXXXXXXXXXXXXX",
    "X  S           S  X",
    "X XX XXX X XXX XX X",
    "XO               OX",
    "X XX X XXXXX X XX X",
    "X    X  TXT  X    X",
    "XXXX XXX X XXX XXXX",
    "XXXX XT G G TX XXXX",
    "XXXX X X   X X XXXX",
    "     X XG GX X     ",
    "XXXX X XXXXX X XXXX",
    "XXXX X       X XXXX",
    "XXXX X XXXXX X XXXX",
    "X                 X",
    "X XX XXX X XXX XX X",
    "XO X S   P   S X OX",
    "XX X X XXXXX X X XX",
    "X    X   X   X    X",
    "X XXXXXX X XXXXXX X",
    "X                 X",
    "XXXXXXXXXXXXXXXXXXX",
)
# the agent's moves (row, column): 0 up, 1 left, 2 down, 3 right
PLAYER_MOVES = np.array([[-1, 0], [0, -1], [1, 0], [0, 1]], np.int32)
# a ghost's moves: 0 left, 1 up, 2 right, 3 down, 4 stay
GHOST_MOVES = np.array([[0, -1], [-1, 0], [0, 1], [1, 0], [0, 0]], np.int32)
GHOST_STARTS = (1, 5, 10, 15)  # steps before each ghost moves
FRIGHTENED_STEPS = 30
PELLET, POWER_PILL, GHOST = 10.0, 50.0, 200.0
EATEN = (0, 0)  # where eaten pellets and pills are moved (a wall cell: never reached)


def _cells(char: str) -> np.ndarray:
    """(row, column) of every ``char`` of the maze, in row-major order."""
    return np.array(
        [(r, c) for r, line in enumerate(MAZE) for c, ch in enumerate(line) if ch == char],
        np.int32,
    ).reshape(-1, 2)


def _transposed(cells: jax.Array) -> tuple[jax.Array, jax.Array]:
    """POBAX's grid index of (row, column) cells: (column, row)."""
    return cells[:, 1], cells[:, 0]


def line_of_sight(grid: np.ndarray) -> np.ndarray:
    """(rows, cols, 4, rows, cols): per open cell and direction (up, left, down, right), the cells
    seen: the cell itself and the open cells up to the first wall; none where no wall comes before
    the maze's edge."""
    rows, cols = grid.shape
    seen = np.zeros((rows, cols, 4, rows, cols), np.int32)
    for r, c in zip(*np.nonzero(grid), strict=True):
        for d, (dr, dc) in enumerate([(-1, 0), (0, -1), (1, 0), (0, 1)]):
            seen[r, c, d, r, c] = 1
            line = []
            rr, cc = r + dr, c + dc
            while 0 <= rr < rows and 0 <= cc < cols and grid[rr, cc]:
                line.append((rr, cc))
                rr, cc = rr + dr, cc + dc
            if 0 <= rr < rows and 0 <= cc < cols:  # stopped at a wall
                for cell in line:
                    seen[(r, c, d, *cell)] = 1
    return seen


@struct.dataclass
class EnvState(environment.EnvState):
    """Agent, ghosts, pellets and pills, the ghosts' key and gymnax's step counter."""

    key: jax.Array  # the ghosts' randomness
    player: jax.Array  # (2,) int32
    last_action: jax.Array  # int32
    ghosts: jax.Array  # (4, 2) int32
    previous_ghosts: jax.Array  # (4, 2) int32, the ghosts before the last move
    ghost_moves: jax.Array  # (4,) int32, each ghost's last move (GHOST_MOVES index)
    ghost_wait: jax.Array  # (4,) int32, steps before each ghost moves
    ghost_edible: jax.Array  # (4,) bool, not yet eaten this episode (pays GHOST)
    pellets: jax.Array  # (n, 2) int32, eaten ones at EATEN
    pellets_left: jax.Array  # int32
    pills: jax.Array  # (4, 2) int32, eaten ones at EATEN
    frightened: jax.Array  # int32, steps of fright left (counts below 0 once over)
    dead: jax.Array  # bool
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


class PocMan(environment.Environment[EnvState, EnvParams]):
    """PocMan on POBAX's maze with Jumanji's ghosts."""

    gamma = 0.95  # POBAX's discount for PocMan

    def __init__(self, perfect_memory: bool = False, aligned: bool = False):
        super().__init__()
        self.perfect_memory, self.aligned = bool(perfect_memory), bool(aligned)
        self.grid = np.array([[ch != "X" for ch in line] for line in MAZE], np.int32)
        self.rows, self.cols = self.grid.shape
        self.sight = line_of_sight(self.grid)
        self.start = _cells("P")[0]
        self.spawns = _cells("G")
        self.scatter = _cells("S")
        self.all_pellets = np.argwhere(self.grid == 1).astype(np.int32)
        self.all_pills = _cells("O")
        # perfect memory: the agent's CNN reads the flat grid as this image (else no image)
        self.obs_shape = (self.rows, self.cols, 6) if self.perfect_memory else None

    @property
    def default_params(self) -> EnvParams:
        """POBAX's 1000-step time limit."""
        return EnvParams()

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """The maze as drawn; ``key`` seeds the ghosts."""
        state = EnvState(
            key=key,
            player=jnp.asarray(self.start),
            last_action=jnp.int32(0),
            ghosts=jnp.asarray(self.spawns),
            previous_ghosts=jnp.asarray(self.spawns),
            ghost_moves=jnp.ones(4, jnp.int32),
            ghost_wait=jnp.asarray(GHOST_STARTS, jnp.int32),
            ghost_edible=jnp.ones(4, bool),
            pellets=jnp.asarray(self.all_pellets),
            pellets_left=jnp.int32(len(self.all_pellets)),
            pills=jnp.asarray(self.all_pills),
            frightened=jnp.int32(0),
            dead=jnp.bool_(False),
            time=jnp.int32(0),
        )
        return self._observe(state), state

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """Move the agent, then the ghosts; collisions, pills and pellets."""
        action = jnp.asarray(action, jnp.int32)
        grid = jnp.asarray(self.grid)
        moved = self._wrap(state.player + jnp.asarray(PLAYER_MOVES)[action])
        player = jnp.where(grid[moved[0], moved[1]] == 1, moved, state.player)
        state = state.replace(last_action=action)
        key_next, *ghost_keys = jax.random.split(state.key, 5)
        ghosts, ghost_moves = jax.vmap(self._move_ghost, in_axes=(None, 0, 0, 0, 0, 0, 0))(
            state,
            jnp.arange(4),
            state.ghosts,
            state.previous_ghosts,
            state.ghost_moves,
            state.ghost_wait,
            jnp.stack(ghost_keys),
        )
        ghosts, edible, dead, ghost_reward = self._collide(state, ghosts, player)
        # POWER PILLS AND PELLETS on the agent's new cell
        on_pill = jnp.all(state.pills == player, axis=-1)
        ate_pill = jnp.any(on_pill)
        pills = jnp.where(on_pill[:, None], jnp.asarray(EATEN, jnp.int32), state.pills)
        on_pellet = jnp.all(state.pellets == player, axis=-1)
        ate_pellet = jnp.any(on_pellet)
        pellets = jnp.where(on_pellet[:, None], jnp.asarray(EATEN, jnp.int32), state.pellets)
        reward = ate_pellet * PELLET + ate_pill * POWER_PILL + ghost_reward
        next_state = state.replace(
            key=key_next,
            player=player,
            ghosts=ghosts,
            previous_ghosts=state.ghosts,
            ghost_moves=ghost_moves,
            ghost_wait=state.ghost_wait - 1,
            ghost_edible=edible,
            pellets=pellets,
            pellets_left=state.pellets_left - ate_pellet.astype(jnp.int32),
            pills=pills,
            frightened=jnp.where(ate_pill, FRIGHTENED_STEPS, state.frightened - 1),
            dead=dead,
            time=state.time + 1,
        )
        terminated = self.is_terminated(next_state, params)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return self._observe(next_state), next_state, reward.astype(jnp.float32), terminated, info

    def _wrap(self, cell: jax.Array) -> jax.Array:
        return jnp.stack([cell[0] % self.rows, cell[1] % self.cols])

    def _ghost_target_distance(
        self, state: EnvState, ghost: jax.Array, index: jax.Array, options: jax.Array
    ) -> jax.Array:
        """Distance of each option cell (4, 2) to ghost ``index``'s target, shape (4,)."""
        to_agent = options - state.player
        ahead = self._wrap(state.player + 4 * jnp.asarray(PLAYER_MOVES)[state.last_action])
        to_ahead = options - ahead[::-1]  # POBAX: row and column swapped
        to_scatter = options - jnp.asarray(self.scatter)[index][::-1]  # swapped too
        norm = lambda offsets: jnp.linalg.norm(offsets.astype(jnp.float32), axis=-1)  # noqa: E731
        far = jnp.linalg.norm((ghost - state.player).astype(jnp.float32)) > 8
        chase = jnp.stack(
            [
                norm(to_agent),
                norm(to_ahead),
                norm(to_agent + to_ahead),
                jnp.where(far, norm(to_agent), norm(to_scatter)),
            ]
        )[index]
        return jnp.where(state.frightened > 0, norm(to_scatter), chase)

    def _move_ghost(
        self,
        state: EnvState,
        index: jax.Array,
        ghost: jax.Array,
        previous: jax.Array,
        last_move: jax.Array,
        wait: jax.Array,
        key: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Ghost ``index``'s next cell and move (GHOST_MOVES index)."""
        options = ghost + jnp.asarray(GHOST_MOVES)[:4]
        # as POBAX reads the tunnel's ends: column -1 is the last one, column ``cols`` clamps to it
        col = jnp.where(options[:, 1] < 0, options[:, 1] + self.cols, options[:, 1])
        open_ = jnp.asarray(self.grid)[options[:, 0], jnp.minimum(col, self.cols - 1)]
        allowed = open_ * jnp.any(options != previous, axis=-1)  # no reversing
        distance = self._ghost_target_distance(state, ghost, index, options)
        cost = jnp.where(allowed == 1, allowed * distance, jnp.inf)
        best = (cost == jnp.min(cost)).astype(jnp.int32)
        corridor = jnp.all(open_ == jnp.array([1, 0, 1, 0])) | jnp.all(
            open_ == jnp.array([0, 1, 0, 1])
        )
        _, key = jax.random.split(key)
        _, key = jax.random.split(key)
        probs = jax.nn.softmax(jnp.where(best == 0, -1e9, best))
        pick = jax.random.choice(key, jnp.arange(4) * best, p=probs).astype(jnp.int32)
        move = jnp.where(wait < 0, jnp.where(corridor, last_move, pick), 4)
        cell = self._wrap(ghost + jnp.asarray(GHOST_MOVES)[move])
        return jnp.where(wait <= 0, cell, ghost), move

    def _collide(
        self, state: EnvState, ghosts: jax.Array, player: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """Ghosts caught (back to spawn) or catching: (ghosts, edible, dead, reward)."""
        meets = (
            jnp.all(ghosts == player, axis=-1)
            | jnp.all(ghosts == state.player, axis=-1)
            | jnp.all(state.previous_ghosts == player, axis=-1)
        )
        eaten = meets & (state.frightened > 0)
        ghosts = jnp.where(eaten[:, None], jnp.asarray(self.spawns), ghosts)
        reward = jnp.sum(jnp.where(eaten & state.ghost_edible, GHOST, 0.0))
        dead = jnp.any(meets & ~eaten)
        return ghosts, state.ghost_edible & ~eaten, dead, reward

    def _observe(self, state: EnvState) -> jax.Array:
        if self.perfect_memory:
            return self.state_grid(state).reshape(-1)
        return self._features(state)

    def state_grid(self, state: EnvState) -> jax.Array:
        """The perfect-memory grid (rows, cols, 6), float32 (module doc: channels and layouts)."""
        open_ = -jnp.asarray(self.grid)
        where = (lambda cells: (cells[:, 0], cells[:, 1])) if self.aligned else _transposed

        def mark(base: jax.Array, cells: jax.Array) -> jax.Array:
            return base.at[where(cells)].set(1, mode="drop")

        pellets, pills = state.pellets, state.pills
        if self.aligned:  # eaten ones are parked on a wall: move them off the grid (dropped)
            eaten = jnp.asarray(EATEN, jnp.int32)
            pellets = jnp.where(jnp.all(pellets == eaten, -1)[:, None], self.rows, pellets)
            pills = jnp.where(jnp.all(pills == eaten, -1)[:, None], self.rows, pills)
        empty = jnp.zeros_like(open_)
        ghosts = mark(empty, state.ghosts)
        if self.aligned:
            fright = jnp.where(state.frightened > 0, state.frightened, -1)
        else:  # POBAX's: -1 only while the counter is 0 (at a reset, and as a fright ends)
            fright = jnp.where(state.frightened == 0, -1, state.frightened)
        layers = [
            mark(open_, pellets),
            mark(open_, pills),
            fright * ghosts,
            mark(empty, state.previous_ghosts),
            empty.at[state.player[0], state.player[1]].set(1),
            jnp.full_like(open_, state.last_action),
        ]
        return jnp.stack(layers, axis=-1).astype(jnp.float32)

    def _features(self, state: EnvState) -> jax.Array:
        grid = jnp.asarray(self.grid)
        row, col = state.player[0], state.player[1]
        last_row, last_col = self.rows - 1, self.cols - 1
        open_around = jnp.stack(
            [
                grid[jnp.maximum(row - 1, 0), col],
                grid[row, jnp.minimum(col + 1, last_col)],
                grid[jnp.minimum(row + 1, last_row), jnp.minimum(row, last_col)],  # POBAX's
                grid[row, jnp.maximum(col - 1, 0)],
            ]
        )
        pellet_near = jnp.any(jnp.abs(state.pellets - state.player).sum(-1) <= 1)
        ghost_near = jnp.any(jnp.abs(state.ghosts - state.player).sum(-1) <= 2)
        ghost_map = jnp.zeros_like(grid).at[state.ghosts[:, 0], state.ghosts[:, 1]].set(1)
        seen = jnp.sum(jnp.asarray(self.sight)[row, col] * ghost_map, axis=(-2, -1))
        return jnp.concatenate(
            [open_around, jnp.stack([pellet_near, ghost_near]), seen, (state.frightened > 0)[None]]
        ).astype(jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Caught by a ghost, or every pellet eaten."""
        return state.dead | (state.pellets_left == 0)

    @property
    def name(self) -> str:
        """Environment id (POBAX's, or ``pocman_aligned``)."""
        return "pocman_aligned" if self.aligned else "pocman"

    @property
    def num_actions(self) -> int:
        """Up, left, down, right."""
        return 4

    @property
    def obs_dim(self) -> int:
        """11 features, or the perfect-memory grid's 21 x 19 x 6."""
        return self.rows * self.cols * 6 if self.perfect_memory else 11

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """Up, left, down, right."""
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Shape (11,): flags, and ghost counts (0 to 4) per line of sight; with perfect memory
        the flat grid (POBAX's ghost layer is unbounded below)."""
        if self.perfect_memory:
            return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim,), jnp.float32)
        return spaces.Box(0.0, 4.0, (11,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Positions, counters and the step counter."""
        return spaces.Dict(
            {
                "player": spaces.Box(0, max(self.rows, self.cols) - 1, (2,), jnp.int32),
                "ghosts": spaces.Box(0, max(self.rows, self.cols) - 1, (4, 2), jnp.int32),
                "pellets_left": spaces.Discrete(len(self.all_pellets) + 1),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
