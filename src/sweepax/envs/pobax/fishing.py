"""POBAX's Fishing (ocean navigation, gymnax 1.0 API): ``fishing_0`` .. ``fishing_8``.

Source: POBAX 0.0.1 (github.com/taodav/pobax, ``pobax/envs/jax/fishing.py``), with its nine maps
``pobax/envs/configs/ocean_nav/fishing_<i>_config.json`` copied unchanged into ``fishing/``
(Apache-2.0, ``fishing/NOTICE.md``). A boat on a ``size`` x ``size`` sea with obstacles, fishing
spots and currents; positions are (row, column), directions 0 up, 1 right, 2 down, 3 left.

Step: the boat moves one cell in the action's direction unless it sits in a current flowing
against that direction, or the move leaves the map or enters an obstacle (then it stays; on kelp
it also stays with probability ``kelp_prob``). Then a current on the boat's new cell pushes it one
cell along its direction (blocked the same way). Each current cell keeps its direction or, with
probability ``l * exp(-l)`` for ``l = 1 / change_rate`` (1 where ``change_rate`` is 0), takes one
of its group's directions uniformly; each empty fishing spot refills with probability
``l * exp(-l)`` (never where ``change_rate`` is 0). A spot on the boat's cell is emptied.
Reward: +1 per spot emptied, plus ``current_bump_reward`` (negative) when the boat ends in a
current that pushes it into an edge or an obstacle. Nothing ends an episode but the time limit
``max_steps_in_episode`` (default 1000, POBAX's), reported as ``truncated``. At reset every spot
is full, each current cell draws one of its group's directions, and the boat starts on one of the
map's starts.

Observation: the 5 x 5 window around the boat (outside the map reads as open sea), 6 channels:
obstacle, the four current directions (one-hot), full fishing spot; cells hidden behind an
opaque obstacle (not glass) seen from the boat read as obstacle and show nothing else (POBAX's
occlusion: the outer ring's cells behind the inner ring's). Flattened to float32 (150,);
``obs_shape`` (5, 5, 6) tells the agent it is an image (as POBAX's agent treats it).

Keys are used as POBAX uses them, so the same keys give the same episodes. As in POBAX,
``slip_prob`` in a map (``fishing_8``) is ignored (POBAX tests ``hasattr`` on the parsed JSON
dict, which is always False). POBAX's own step cannot run (it passes a traced direction as a
static argument of its jitted ``move``); the agreement test runs POBAX's code without those
``jax.jit`` decorators.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

MAPS = Path(__file__).with_name("fishing")
IDS = tuple(f"fishing_{i}" for i in range(9))
PATTERN = "|".join(re.escape(i) for i in IDS)
DIRECTIONS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)  # up, right, down, left
WINDOW = 5


def _change_prob(change_rate: float, never: float) -> float:
    """POBAX's per-step change probability ``l * exp(-l)``, ``l = 1 / change_rate``."""
    if change_rate <= 0:
        return never
    lam = 1.0 / change_rate
    return float(np.float32(lam) * np.float32(jnp.exp(jnp.float32(-lam))))  # float32, as POBAX


@struct.dataclass
class EnvState(environment.EnvState):
    """Current directions, boat position, full fishing spots and gymnax's step counter."""

    currents: jax.Array  # (n_currents,) int32 direction per current cell
    position: jax.Array  # (2,) int32
    spots: jax.Array  # (n_spots,) float32, 1 full
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


def occlusion(obstacle: jax.Array, glass: jax.Array) -> jax.Array:
    """(5, 5) bool: the outer ring's cells hidden from the centre by opaque inner-ring cells."""
    opaque = obstacle * (1 - glass)
    hidden = jnp.zeros_like(opaque)
    for turn in range(4):  # each side, seen as the top row
        inner = jnp.rot90(opaque, turn)[1]
        shade = jnp.stack([inner[1], inner[1] * inner[2], inner[2], inner[2] * inner[3], inner[3]])
        side = jnp.zeros_like(opaque).at[0].set(shade)
        hidden = jnp.maximum(hidden, jnp.rot90(side, -turn))
    return hidden.astype(bool)


class Fishing(environment.Environment[EnvState, EnvParams]):
    """One of POBAX's ocean-navigation maps."""

    gamma = None  # POBAX trains it with the agent's gamma
    obs_shape = (WINDOW, WINDOW, 6)  # the agent's CNN reads the flat observation as this image

    def __init__(self, env_id: str, config: dict[str, Any]):
        super().__init__()
        self._name = env_id
        self.size = int(config["size"])
        self.kelp_prob = float(config["kelp_prob"])
        self.bump_reward = float(config["current_bump_reward"])
        self.kelp = np.asarray(config["kelp_map"], np.int32)
        self.glass = np.asarray(config["glass_map"], np.int32)
        self.obstacle = np.asarray(config["obstacle_map"], np.int32)
        self.starts = np.asarray(config["starts"], np.int32)
        cells, probs = [], []
        for group in config["currents"]:
            change = _change_prob(group["change_rate"], never=1.0)
            p = np.zeros(5, np.float32)
            p[0] = 1 - change
            p[1 + np.asarray(group["directions"])] = change / len(group["directions"])
            cells += group["mapping"]
            probs += [p] * len(group["mapping"])
        self.current_cells = np.asarray(cells, np.int32)
        self.current_probs = np.asarray(probs, np.float32)  # keep, then per direction
        turns = jnp.asarray(self.current_probs[:, 1:])
        self.current_start_probs = np.asarray(turns / turns.sum(-1, keepdims=True))
        self.spot_cells = np.asarray([r["position"] for r in config["rewards"]], np.int32)
        self.refill_probs = np.asarray(
            [_change_prob(r["change_rate"], never=0.0) for r in config["rewards"]], np.float32
        )

    @classmethod
    def from_id(cls, env_id: str) -> Fishing:
        """``fishing_<i>`` with POBAX's map ``fishing_<i>_config.json``."""
        return cls(env_id, json.loads((MAPS / f"{env_id}_config.json").read_text()))

    @property
    def default_params(self) -> EnvParams:
        """POBAX's 1000-step episodes."""
        return EnvParams()

    @staticmethod
    def _choose(keys: jax.Array, n: int, probs: jax.Array) -> jax.Array:
        """One draw per row of ``probs`` (POBAX's draws), shape (rows,)."""
        return jax.vmap(lambda k, p: jax.random.choice(k, n, p=p))(keys, probs)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Full spots, random current directions, the boat on a start."""
        key_currents, key_start, _ = jax.random.split(key, 3)
        probs = jnp.asarray(self.current_start_probs)
        currents = self._choose(jax.random.split(key_currents, len(probs)), 4, probs)
        start = jax.random.choice(key_start, len(self.starts))
        state = EnvState(
            currents=currents.astype(jnp.int32),
            position=jnp.asarray(self.starts)[start],
            spots=jnp.ones(len(self.spot_cells), jnp.float32),
            time=jnp.int32(0),
        )
        return self._observe(state), state

    def _move(self, position: jax.Array, direction: jax.Array, stay: jax.Array) -> jax.Array:
        """One cell in ``direction`` unless ``stay``, the edge or an obstacle stops it."""
        step = jnp.where(stay, 0, 1) * jnp.asarray(DIRECTIONS)[direction]
        moved = jnp.clip(position + step, 0, self.size - 1)
        return jnp.where(jnp.asarray(self.obstacle)[moved[0], moved[1]] > 0, position, moved)

    def _current_here(
        self, currents: jax.Array, position: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """(in a current?, its direction) at ``position``."""
        here = jnp.all(jnp.asarray(self.current_cells) == position, axis=-1)
        return jnp.any(here), jnp.dot(here, currents).astype(jnp.int32)

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """Swim, drift, currents and spots change, fish."""
        action = jnp.asarray(action, jnp.int32)
        key_transition, _ = jax.random.split(key)
        key_move, key = jax.random.split(key_transition)
        _, key = jax.random.split(key)  # POBAX draws keys for the drift it never uses
        key_currents, key_spots = jax.random.split(key)
        position = self._swim(key_move, state, action)
        drifting, flow = self._current_here(state.currents, position)
        position = jnp.where(drifting, self._move(position, flow, jnp.bool_(False)), position)
        next_state = self._tick(key_currents, key_spots, state, position)
        reward = jnp.sum((state.spots == 1) & (next_state.spots == 0)) + self._bump(next_state)
        info = {"discount": jnp.float32(1.0)}
        obs = self._observe(next_state)
        return obs, next_state, reward.astype(jnp.float32), jnp.bool_(False), info

    def _swim(self, key: jax.Array, state: EnvState, action: jax.Array) -> jax.Array:
        """The boat's cell after its own move: not against its current; kelp may hold it."""
        in_current, flow = self._current_here(state.currents, state.position)
        against = in_current & (jnp.abs(flow - action) == 2)
        key_kelp, _ = jax.random.split(key)
        on_kelp = jnp.asarray(self.kelp)[state.position[0], state.position[1]] != 0
        held = (self.kelp_prob > 0) & on_kelp & (jax.random.uniform(key_kelp) <= self.kelp_prob)
        return jnp.where(against, state.position, self._move(state.position, action, held))

    def _tick(
        self, key_currents: jax.Array, key_spots: jax.Array, state: EnvState, position: jax.Array
    ) -> EnvState:
        """Currents turn, empty spots refill, the spot at ``position`` is fished."""
        probs = jnp.asarray(self.current_probs)
        change = self._choose(jax.random.split(key_currents, len(probs)), 5, probs)
        currents = jnp.where(change == 0, state.currents, change - 1).astype(jnp.int32)
        refill = jnp.stack([1 - jnp.asarray(self.refill_probs), jnp.asarray(self.refill_probs)], -1)
        refilled = self._choose(jax.random.split(key_spots, len(refill)), 2, refill)
        fished = jnp.all(jnp.asarray(self.spot_cells) == position, axis=-1)
        spots = jnp.maximum(jnp.maximum(refilled, state.spots) - fished, 0).astype(jnp.float32)
        return EnvState(currents=currents, position=position, spots=spots, time=state.time + 1)

    def _bump(self, state: EnvState) -> jax.Array:
        """``current_bump_reward`` if the boat's current pushes it into an edge or obstacle."""
        in_current, flow = self._current_here(state.currents, state.position)
        pushed = self._move(state.position, flow, jnp.bool_(False))
        stuck = jnp.all(pushed == state.position)
        return jnp.where(in_current & stuck, self.bump_reward, 0.0)

    def _sea(self, state: EnvState) -> jax.Array:
        """The whole map, (size, size, 6): obstacle, current one-hots, full spots."""
        cells = jnp.asarray(self.current_cells)
        currents = (
            jnp.zeros((self.size, self.size, 4))
            .at[cells[:, 0], cells[:, 1], state.currents]
            .set(1.0)
        )
        spots = jnp.asarray(self.spot_cells)
        full = jnp.zeros((self.size, self.size)).at[spots[:, 0], spots[:, 1]].set(state.spots)
        obstacle = jnp.asarray(self.obstacle, jnp.float32)
        return jnp.concatenate([obstacle[..., None], currents, full[..., None]], axis=-1)

    def _observe(self, state: EnvState) -> jax.Array:
        half = WINDOW // 2
        sea = jnp.pad(self._sea(state), ((half, half), (half, half), (0, 0)))
        glass = jnp.pad(jnp.asarray(self.glass), half)
        row, col = state.position[0], state.position[1]
        window = jax.lax.dynamic_slice(sea, (row, col, 0), (WINDOW, WINDOW, 6))
        glass = jax.lax.dynamic_slice(glass, (row, col), (WINDOW, WINDOW))
        hidden = occlusion(window[..., 0], glass)[..., None]
        seen = jnp.where(hidden, 0.0, window)
        seen = seen.at[..., 0].set(jnp.where(hidden[..., 0], 1.0, window[..., 0]))
        return seen.reshape(-1).astype(jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Never: episodes end at the time limit."""
        return jnp.bool_(False)

    @property
    def name(self) -> str:
        """Environment id (POBAX's)."""
        return self._name

    @property
    def num_actions(self) -> int:
        """Up, right, down, left."""
        return 4

    @property
    def obs_dim(self) -> int:
        """5 x 5 cells x 6 channels."""
        return WINDOW * WINDOW * 6

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """Up, right, down, left."""
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Shape (150,): the (5, 5, 6) window flattened, entries 0 or 1."""
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Current directions, position, spots and step counter."""
        return spaces.Dict(
            {
                "currents": spaces.Box(0, 3, (len(self.current_cells),), jnp.int32),
                "position": spaces.Box(0, self.size - 1, (2,), jnp.int32),
                "spots": spaces.Box(0.0, 1.0, (len(self.spot_cells),), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
