"""POBAX's Navix mazes (``Navix-DMLab-Maze-<NN>-v0`` / ``-F-<NN>-``) on navix, gymnax 1.0 API.

Source: the mazes of POBAX 0.0.1 (github.com/taodav/pobax, ``pobax/envs/jax/navix_mazes.py``
and ``pobax/envs/wrappers/nx.py``; Apache-2.0, copy in ``pobax/pomdp/LICENSE-POBAX``), DeepMind
Lab's ``nav_maze_random_goal_0N`` layouts as ASCII maps, run by navix 0.7.4 (PyPI ``navix``,
github.com/epignatelli/navix): its grid, entities, moves, goal event and auto-reset are used as
they are; only the reset (where the player and goal start) and POBAX's observations are ours.

* Layouts and time limits: ``00`` 9 x 14 (1000 steps), ``01`` 11 x 21 (2000), ``02`` 19 x 31
  (4000), ``03`` 27 x 41 (6000). Reset: the player on a uniform free cell facing a uniform
  direction, the goal on a uniform free cell outside the rows numbered by the player's row and
  column (POBAX indexes the grid with the player's position vector, which closes those two rows
  to the goal; so the goal never starts under the player).
* Actions (3): navix's rotate counter-clockwise, rotate clockwise, forward (walls block).
* Reward 1 on reaching the goal, which ends the episode (``terminated``); ``truncated`` after
  the time limit. As in POBAX (navix's own auto-reset), the step after an episode's last one
  starts the next episode: its action is ignored, its reward is 0, and its observation is the
  new episode's first; the reset draws with a key navix keeps in the state, so ``step``'s key is
  unused. ``env.gamma`` = 0.99, the discount POBAX trains these mazes with.
* Observation ``-<NN>-`` (first person, ``obs_shape`` (4, 7, 2)): navix's categorical first-person
  view (radius 3, the agent at the bottom centre facing up), its 4 rows nearest the agent, as
  one-hot [wall, goal] channels; cells the agent cannot see along a straight (Bresenham) line
  from its cell, because a wall stands on the line before them, are -1 in both channels
  (POBAX's field-of-view mask). POBAX 0.0.1 declares this 4 x 7 view but crops it with its own
  navix fork; with navix 0.7.4 (7 x 7 views) its wrapper fails at reset, so the 4 rows kept here
  are our reading of it: the rows POBAX's observation space and mask describe.
* Observation ``-F-<NN>-`` (full, ``obs_shape`` (2H - 1, 2W - 1, 6)): the whole maze centred on
  the agent (zero padding, the agent's cell at (H - 1, W - 1), not rotated): channel 0 the walls
  (-1), channel 1 the goal as POBAX marks it (``grid.at[goal.position]``: the rows numbered by
  the goal's row and column are 1), channels 2-5 the one-hot heading (east, south, west, north).

Observations are flat float32 vectors (``obs_dim``), the image ``obs_shape`` for the CNN encoder.
"""

from __future__ import annotations

import functools
import re
import typing as tp
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from sweepax.errors import UserError

RADIUS = 3  # navix's first-person view radius (``navix.observations.RADIUS``)
VIEW_SHAPE = (RADIUS + 1, 2 * RADIUS + 1)  # rows ahead (agent's row last) x columns
NUM_ACTIONS = 3  # rotate counter-clockwise, rotate clockwise, forward
GAMMA = 0.99  # the discount POBAX trains Navix mazes with
MASKED = -1.0  # value of cells outside the field of view, both channels

# DeepMind Lab's nav_maze_random_goal_0N as POBAX 0.0.1 draws them: '#' wall, '.' free.
LAYOUTS: dict[str, tuple[str, int]] = {
    "00": (
        """
        ##############
        #...#...#....#
        #.#.#.#####.##
        #.#.#....#...#
        #.#.#.#..#...#
        #.#...#..#.#.#
        #.#####..#.#.#
        #.....#....#.#
        ##############
        """,
        1000,
    ),
    "01": (
        """
        #####################
        #...#...#...........#
        #.#.#.#####.#####.#.#
        #.#.#.#...#.....#.#.#
        #.#.#.#...#.....#.#.#
        #.#...#...#.....#.#.#
        #.#####...#.#...#.#.#
        #.....#...#.#...#.#.#
        #####.#.###########.#
        #...................#
        #####################
        """,
        2000,
    ),
    "02": (
        """
        ###############################
        #.#...............#.......#...#
        #.#.###.###########.###.#.#.#.#
        #...#...#.............#.#...#.#
        #.###.###.#############.#####.#
        #...#...#.#.........#...#.....#
        ###.###.#.#.........#.#####.#.#
        #.....#...#.........#.#.....#.#
        #.###.#####.........#.#.....###
        #.#.....#...........#.#.....#.#
        #.#.....#.#.........#.#.....#.#
        #.......#.#...........#.....#.#
        #.#.....#.#########...#.....#.#
        #.#.....#.......#.....#.....#.#
        #.#####.#######.#.###.#######.#
        #...#.........#.#.#.....#.....#
        ###.###.#####.#.#.#######.#####
        #.......#.......#.............#
        ###############################
        """,
        4000,
    ),
    "03": (
        """
        #########################################
        #.......................................#
        #.#################.###########.#######.#
        #.#...#...........#.#...#.............#.#
        #.###.#...........#.#.#.#.............#.#
        #...#.............#.#.#.#.............#.#
        ###.#.#...........#.###.#.............#.#
        #.#...#...........#...#.#.............#.#
        #.###.#...........###.#.#.............#.#
        #...#.#...........#...#.#.............#.#
        #.###.#...........#.###.#.............#.#
        #.....#...........#.....#.............#.#
        #.#####################.###############.#
        #.#.........#.........#.......#.........#
        #.#.#.###############.#.#######.#.#######
        #...#.#.............#.#.......#.#.#.....#
        #####.#.............#.#.......#.###.###.#
        #.#...#.............#.#.......#.....#...#
        #.#.###.............#.#.......#.#####.#.#
        #...#.#.............#.#.......#.#...#.#.#
        #.###.#.............#.#.......#.#.#.#.#.#
        #...#...............#.#.......#...#.#.#.#
        ###.#.###############.#.......#####.#.#.#
        #...#...#.....#.....#.#.......#...#.#.#.#
        #.###.#.###.#.###.#.#.#.#######.#.###.#.#
        #.....#.....#.....#.#...........#.....#.#
        #########################################
        """,
        6000,
    ),
}

# groups: "F-" of a fully observable maze, the layout; "Annas" for Annas' maze (refused)
PATTERN = r"Navix-(?:DMLab-Maze-(F-)?(0[0-3])|(Annas)-Maze(?:-F)?)-v0"
IDS: tuple[str, ...] = tuple(
    f"Navix-DMLab-Maze-{full}{n}-v0" for n in LAYOUTS for full in ("", "F-")
)
ANNAS_MISSING = (
    "its maze layout is in neither POBAX 0.0.1 (PyPI) nor navix 0.7.4 (POBAX's development "
    "version takes it from its own unpublished navix fork), so it cannot be built here; use "
    "Navix-DMLab-Maze-01/02/03-v0 (or their -F- variants)"
)


@functools.cache
def import_navix() -> tp.Any:
    """``navix``, imported once; its agents' distrax / tensorflow-probability import warns that
    ``jax.core.pytype_aval_mappings`` is deprecated, which says nothing about the mazes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "jax.core.pytype_aval_mappings", DeprecationWarning)
        import navix

    return navix


def layout_grid(layout: str) -> np.ndarray:
    """The maze ``layout`` ("00".."03") as navix reads an ASCII map: int32, -1 walls, 0 free."""
    rows = [line.strip() for line in LAYOUTS[layout][0].strip().splitlines()]
    return np.asarray([[-1 if ch == "#" else 0 for ch in row] for row in rows], np.int32)


def line_cells(r0: int, c0: int, r1: int, c1: int) -> list[tuple[int, int]]:
    """Cells of the Bresenham line from (r0, c0) to (r1, c1), both ends included.

    Ties (the error exactly on a step) step neither way first, as POBAX's field of view does.
    """
    dr, dc = abs(r1 - r0), abs(c1 - c0)
    step_r, step_c = (r1 > r0) - (r1 < r0), (c1 > c0) - (c1 < c0)
    err, r, c = dc - dr, r0, c0
    cells = [(r, c)]
    while (r, c) != (r1, c1):
        twice = 2 * err
        if twice > -dr:
            err -= dr
            c += step_c
        if twice < dc:
            err += dc
            r += step_r
        cells.append((r, c))
    return cells


def view_blockers(shape: tuple[int, int] = VIEW_SHAPE) -> np.ndarray:
    """``B[t, s]``: cell ``s`` lies on the line from the agent to cell ``t``, strictly between.

    Cells are numbered row-major in a view of ``shape`` whose agent is at the bottom centre;
    a cell is visible when no wall stands on any of its blockers.
    """
    rows, cols = shape
    agent = (rows - 1, cols // 2)
    blockers = np.zeros((rows * cols, rows * cols), bool)
    for r in range(rows):
        for c in range(cols):
            for rr, cc in line_cells(*agent, r, c)[1:-1]:
                blockers[r * cols + c, rr * cols + cc] = True
    return blockers


def field_of_view(layers: jax.Array, blockers: jax.Array) -> jax.Array:
    """One-hot [wall, goal] view (rows, cols, 2) with cells out of sight set to ``MASKED``."""
    walls = layers[..., 0].reshape(-1) > 0
    hidden = jnp.any(blockers & walls[None, :], axis=1).reshape(layers.shape[:2])
    return jnp.where(hidden[..., None], MASKED, layers)


class NavixMaze(environment.Environment):
    """One of POBAX's Navix mazes: navix's own dynamics, POBAX's observations (module doc)."""

    gamma = GAMMA

    def __init__(self, layout: str, fully_observable: bool, max_steps: int | None = None):
        super().__init__()
        ascii_map, default_steps = LAYOUTS[layout]
        self.layout = layout
        self.fully_observable = bool(fully_observable)
        self.env_id = f"Navix-DMLab-Maze-{'F-' if fully_observable else ''}{layout}-v0"
        self.grid = layout_grid(layout)
        self.max_steps = int(default_steps if max_steps is None else max_steps)
        if self.max_steps < 1:
            raise UserError(f"env {self.env_id!r}: max_steps_in_episode must be >= 1")
        height, width = self.grid.shape
        self.obs_shape: tuple[int, int, int] = (
            (2 * height - 1, 2 * width - 1, 6) if fully_observable else (*VIEW_SHAPE, 2)
        )
        self._blockers = view_blockers()
        navix = import_navix()
        observe = self._full_view if fully_observable else self._first_person_view
        self.navix_env = _maze_class().create(
            height=height,
            width=width,
            max_steps=self.max_steps,
            observation_fn=observe,
            reward_fn=navix.rewards.on_goal_reached,
            termination_fn=navix.terminations.on_goal_reached,
            observation_space=navix.spaces.Continuous.create(
                shape=self.obs_shape, minimum=jnp.asarray(MASKED), maximum=jnp.asarray(1.0)
            ),
            grid=tuple(map(tuple, self.grid.tolist())),
        )

    # --- observations ----------------------------------------------------------------------
    def _first_person_view(self, state: tp.Any) -> jax.Array:
        """The 4 view rows nearest the agent, one-hot [wall, goal], out-of-sight cells -1."""
        near = import_navix().observations.categorical_first_person(state)[RADIUS:]
        wall_tag = state.entities["wall"].tag[0]
        goal_tag = state.entities["goal"].tag[0]
        layers = jnp.stack((near == wall_tag, near == goal_tag), axis=-1).astype(jnp.float32)
        return field_of_view(layers, jnp.asarray(self._blockers))

    def _full_view(self, state: tp.Any) -> jax.Array:
        """Walls, POBAX's goal rows and the heading, centred on the agent (module doc)."""
        walls = state.grid
        goal = jnp.zeros_like(walls).at[state.entities["goal"].position].set(1)
        height, width = walls.shape
        layers = jnp.pad(
            jnp.stack((walls, goal), axis=-1), ((height - 1, 0), (width - 1, 0), (0, 0))
        )
        player = state.get_player()
        centred = jnp.roll(layers, -jnp.asarray(player.position), axis=(0, 1))
        heading = jnp.broadcast_to(jnp.eye(4)[player.direction], (*centred.shape[:2], 4))
        return jnp.concatenate((centred, heading), axis=-1).astype(jnp.float32)

    # --- gymnax API ------------------------------------------------------------------------
    @property
    def default_params(self) -> environment.EnvParams:
        """The time limit, for the record (the navix env enforces its own, fixed at build)."""
        return environment.EnvParams(max_steps_in_episode=self.max_steps)

    @functools.partial(jax.jit, static_argnames=("self",))
    def reset(
        self, key: jax.Array, params: environment.EnvParams | None = None
    ) -> tuple[jax.Array, tp.Any]:
        """A new episode: (flat observation, navix ``Timestep``)."""
        timestep = self.navix_env.reset(key)
        return timestep.observation.reshape(-1), timestep

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: tp.Any,
        action: int | jax.Array,
        params: environment.EnvParams | None = None,
    ) -> tuple[jax.Array, tp.Any, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """navix's step (auto-reset included): obs, state, reward, terminated, truncated, info.

        navix marks a step that both reaches the goal and hits the time limit as neither; so
        does POBAX, whose ``done`` is navix's ``is_done``.
        """
        timestep = self.navix_env.step(state, jnp.asarray(action, jnp.int32))
        terminated = timestep.is_termination()
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return (
            timestep.observation.reshape(-1),
            timestep,
            timestep.reward.astype(jnp.float32),
            terminated,
            timestep.is_truncation(),
            info,
        )

    @property
    def name(self) -> str:
        """Environment id, as in the registry."""
        return self.env_id

    @property
    def num_actions(self) -> int:
        """Rotate counter-clockwise, rotate clockwise, forward."""
        return NUM_ACTIONS

    @property
    def obs_dim(self) -> int:
        """Length of the flat observation."""
        return int(np.prod(self.obs_shape))

    def action_space(self, params: environment.EnvParams | None = None) -> spaces.Discrete:
        """Three actions."""
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: environment.EnvParams | None = None) -> spaces.Box:
        """Flat view: -1 (wall, or out of sight) .. 1."""
        return spaces.Box(MASKED, 1.0, (self.obs_dim,), jnp.float32)


@functools.cache
def _maze_class() -> type:
    """navix's ``Environment`` with a fixed ASCII maze and POBAX's reset (navix imported here)."""
    from flax import struct

    import_navix()
    from navix import components, grid, states
    from navix.entities import Goal, Player, Wall
    from navix.environments import Environment, Timestep
    from navix.rendering.cache import RenderingCache

    class Maze(Environment):
        """A fixed maze: ``grid`` (-1 walls, 0 free), the player and goal placed at reset."""

        grid: tuple[tuple[int, ...], ...] = struct.field(pytree_node=False, default=())

        def _reset(self, key: jax.Array, cache: tp.Any = None) -> Timestep:
            board = jnp.asarray(self.grid, jnp.int32)
            walls = Wall.create(
                position=jnp.asarray(np.argwhere(np.asarray(self.grid) == -1).astype(np.int32))
            )
            key_pos, key_dir, key_goal = jax.random.split(key, 3)
            position = grid.random_positions(key_pos, board)
            direction = grid.random_directions(key_dir)
            # POBAX's exclusion: indexing with the position vector closes two whole rows
            goal_position = grid.random_positions(key_goal, board.at[position].set(-1))
            player = Player.create(
                position=position, direction=direction, pocket=components.EMPTY_POCKET_ID
            )
            goal = Goal.create(position=goal_position, probability=jnp.asarray(1.0))
            state = states.State(
                key=key,
                grid=board,
                cache=no_rendering if cache is None else cache,
                entities={"player": player[None], "goal": goal[None], "wall": walls},
            )
            return Timestep(
                t=jnp.asarray(0, jnp.int32),
                observation=self.observation_fn(state),
                action=jnp.asarray(-1, jnp.int32),
                reward=jnp.asarray(0.0, jnp.float32),
                step_type=jnp.asarray(0, jnp.int32),
                state=state,
            )

    # nothing here renders RGB frames: an empty cache instead of the maze's tiles (~1 MB / env)
    no_rendering = RenderingCache(patches=jnp.zeros((1, 1, 1, 3), jnp.uint8))
    return Maze


# --- registry --------------------------------------------------------------------------------
def _build(match: re.Match, max_steps_in_episode: int | None = None) -> tuple[NavixMaze, tp.Any]:
    env = NavixMaze(match.group(2), match.group(1) is not None, max_steps_in_episode)
    return env, env.default_params


def _validate(match: re.Match) -> str | None:
    return ANNAS_MISSING if match.group(3) else None


def families() -> list[tp.Any]:
    """The registry family of the mazes (Annas' maze matches it, and is refused: no layout)."""
    from sweepax.envs.registry import Family  # here: the registry imports this module

    return [
        Family(
            pattern=PATTERN,
            template="Navix-DMLab-Maze-[F-]<00|01|02|03>-v0",
            examples=("Navix-DMLab-Maze-01-v0", "Navix-DMLab-Maze-F-01-v0"),
            build=_build,
            validate=_validate,
            guesses=lambda env_id: list(IDS),
        )
    ]
