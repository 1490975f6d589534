"""POBAX's RockSample (gymnax 1.0 API): ``rocksample_5_5``, ``_7_8``, ``_11_11``, ``_15_15``.

Source: Smith & Simmons, "Heuristic Search Value Iteration for POMDPs", UAI 2004; the variant and
its numbers are POBAX 0.0.1's (github.com/taodav/pobax, ``pobax/envs/jax/rocksample.py`` and
``pobax/envs/configs/rocksample_<size>_<rocks>_config.json``): a ``size`` x ``size`` grid with
``rocks`` rocks, each good or bad; the exit is the last column.

Layout: rock cells (row, column) are drawn without replacement from the cells off the exit column,
once per env, from a key; ``layout_seed`` selects the key POBAX's PPO passes with
``--seed <layout_seed>`` (``layout_key``), so the same seed gives the same rocks. Episode start:
every rock good with probability 1/2, the agent on a uniform cell off the exit column.

Actions: 0 North (row - 1), 1 East, 2 South, 3 West (walls block), 4 Sample, 5 .. 4 + k check rock
``a - 5``. Sample on a rock gives +10 if it is good, -10 if bad, and the rock becomes bad; elsewhere
0. Entering the exit column gives +10 and ends the episode. Checking reports the rock's quality
correctly with probability (1 + 2 ** (-d / 20)) / 2, ``d`` the Euclidean distance to it.

Observation (float32, ``2 * size + k``): one-hot row, one-hot column, then per rock +1 (seen
good) / -1 (seen bad) for the rock checked by this step's action, 0 elsewhere. With
``perfect_memory`` (POBAX's ``PerfectMemoryWrapper``) the rock entries remember, within the
episode, each rock's last check, and a rock sampled reads -1 (it is bad from then on). POBAX's
wrapper carries that memory over into the next episode, whose rocks are drawn afresh; here it
starts empty with each episode (the one difference from POBAX, within an episode they agree).

Keys are used as POBAX uses them (reset: morality key, then position key; a step's check uses the
step's key), so the same keys give the same episodes. Time limit: ``max_steps_in_episode`` (default
1000, the value POBAX declares; POBAX's step never truncates it). POBAX's discount for these envs
is the agent's (``env.gamma`` is None; the config files' ``gamma`` is never read). POBAX's
``get_env`` also wraps RockSample in a running reward normaliser (``NormalizeVecReward``, over the
batch of envs, with the agent's gamma): ``normalize_reward`` asks sweepax's PPO to do the same
(``agents.ppo.RewardStats``); returns are reported unscaled, as POBAX logs them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

SAMPLE = 4
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)  # N, E, S, W as (row, column)


@dataclasses.dataclass(frozen=True)
class Config:
    """One of POBAX's RockSample configs."""

    size: int
    rocks: int
    good_rock_reward: float = 10.0
    bad_rock_reward: float = -10.0
    exit_reward: float = 10.0
    half_efficiency_distance: float = 20.0


CONFIGS = {
    "rocksample_5_5": Config(5, 5),
    "rocksample_7_8": Config(7, 8),
    "rocksample_11_11": Config(11, 11),
    "rocksample_15_15": Config(15, 15),
}
PATTERN = "|".join(re.escape(i) for i in CONFIGS)


def layout_key(seed: int) -> jax.Array:
    """The key POBAX's PPO (``make_train``) gives ``get_env`` for ``--seed seed``."""
    make_train_key, _ = jax.random.split(jax.random.PRNGKey(seed))
    env_key, _ = jax.random.split(make_train_key)
    return env_key


def _cells_off_exit(size: int) -> jax.Array:
    """Cells (row, column) with column < size - 1, in POBAX's order (column-major)."""
    rows = jnp.arange(size)
    cols = jnp.arange(size - 1)
    return jnp.stack(jnp.meshgrid(rows, cols), axis=-1).reshape(-1, 2)


def rock_cells(config: Config, key: jax.Array) -> np.ndarray:
    """``rocks`` distinct cells off the exit column, (rocks, 2) int32."""
    cells = _cells_off_exit(config.size)
    chosen = jax.random.choice(key, cells.shape[0], (config.rocks,), replace=False)
    return np.asarray(cells[chosen], np.int32)


@struct.dataclass
class EnvState(environment.EnvState):
    """Agent cell, rock qualities (1 good, 0 bad) and gymnax's step counter."""

    position: jax.Array  # (2,) int32, (row, column)
    rock_morality: jax.Array  # (k,) int32
    memory: jax.Array  # (k,) float32, perfect memory: each rock's last seen quality (+-1) or 0
    time: jax.Array  # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Only the time limit."""

    max_steps_in_episode: int = 1000


class RockSample(environment.Environment[EnvState, EnvParams]):
    """RockSample on a fixed rock layout."""

    gamma = None  # POBAX trains it with the agent's gamma
    normalize_reward = True  # POBAX's agent learns from rewards scaled by the return's std

    def __init__(
        self, env_id: str, config: Config, rocks: np.ndarray, perfect_memory: bool = False
    ):
        super().__init__()
        self._name = env_id
        self.perfect_memory = bool(perfect_memory)
        self.config = config
        self.size, self.k = config.size, config.rocks
        self.rock_positions = np.asarray(rocks, np.int32)

    @classmethod
    def from_id(cls, env_id: str, layout_seed: int = 0, perfect_memory: bool = False) -> RockSample:
        """``rocksample_<size>_<rocks>`` with the rocks of POBAX's PPO at ``--seed layout_seed``."""
        config = CONFIGS[env_id]
        rocks = rock_cells(config, layout_key(layout_seed))
        return cls(env_id, config, rocks, perfect_memory=perfect_memory)

    @property
    def default_params(self) -> EnvParams:
        """A 1000-step time limit."""
        return EnvParams()

    def _check(self, key: jax.Array, state: EnvState, action: jax.Array) -> jax.Array:
        """Per-rock observation: +-1 for the rock checked by ``action`` (noisy), else 0."""
        rock = jnp.clip(action - 5, 0, self.k - 1)
        offset = state.position - jnp.asarray(self.rock_positions)[rock]
        dist = jnp.linalg.norm(offset.astype(jnp.float32), ord=2)
        correct = (1 + jnp.power(2.0, -dist / self.config.half_efficiency_distance)) * 0.5
        truth = state.rock_morality[rock]
        seen = jax.random.choice(
            key, jnp.stack([truth, 1 - truth]), (1,), p=jnp.stack([correct, 1 - correct])
        )[0]
        one = jnp.zeros(self.k, jnp.float32).at[rock].set(jnp.where(seen == 1, 1.0, -1.0))
        return jnp.where(action > SAMPLE, one, jnp.zeros(self.k, jnp.float32))

    def _observe(self, key: jax.Array, state: EnvState, action: jax.Array) -> jax.Array:
        return jnp.concatenate(
            [
                jax.nn.one_hot(state.position[0], self.size, dtype=jnp.float32),
                jax.nn.one_hot(state.position[1], self.size, dtype=jnp.float32),
                self._check(key, state, action),
            ]
        )

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """Sample, move or check; +10 and ``terminated`` on entering the exit column."""
        action = jnp.asarray(action, jnp.int32)
        cfg = self.config
        # SAMPLE: the rock under the agent (if any) pays by its quality and turns bad
        here = jnp.all(jnp.asarray(self.rock_positions) == state.position, axis=-1)
        here = here & (action == SAMPLE)
        payoff = jnp.where(state.rock_morality == 1, cfg.good_rock_reward, cfg.bad_rock_reward)
        reward = jnp.sum(jnp.where(here, payoff, 0.0))
        morality = jnp.where(here, 0, state.rock_morality).astype(jnp.int32)
        # MOVE
        step = jnp.asarray(MOVES)[jnp.clip(action, 0, 3)]
        moved = jnp.clip(state.position + step, 0, self.size - 1)
        position = jnp.where(action < SAMPLE, moved, state.position).astype(jnp.int32)
        terminated = position[1] == self.size - 1
        reward = (reward + jnp.where(terminated, cfg.exit_reward, 0.0)).astype(jnp.float32)
        obs = self._observe(key, state.replace(position=position, rock_morality=morality), action)
        memory = state.memory
        if self.perfect_memory:
            obs, memory = self._remember(obs, memory, position, action)
        state = EnvState(
            position=position, rock_morality=morality, memory=memory, time=state.time + 1
        )
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return obs, state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Rocks good w.p. 1/2 each; the agent on a uniform cell off the exit column."""
        key_morality, key_position = jax.random.split(key)
        morality = jax.random.bernoulli(key_morality, shape=(self.k,)).astype(jnp.int32)
        cells = _cells_off_exit(self.size)
        cell = jax.random.choice(key_position, cells.shape[0], (1,), replace=True)[0]
        state = EnvState(
            position=cells[cell].astype(jnp.int32),
            rock_morality=morality,
            memory=jnp.zeros((self.k,), jnp.float32),
            time=jnp.zeros((), jnp.int32),
        )
        return self._observe(key, state, jnp.int32(0)), state

    def _remember(
        self, obs: jax.Array, memory: jax.Array, position: jax.Array, action: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Perfect memory: a sampled rock reads -1 (it is bad now), others keep their last check."""
        seen = obs[2 * self.size :]
        here = jnp.all(jnp.asarray(self.rock_positions) == position, axis=-1)
        seen = jnp.where((action == SAMPLE) & here, -1.0, seen)
        memory = jnp.where(seen != 0, seen, memory)
        return obs.at[2 * self.size :].set(memory), memory

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """In the exit column."""
        return state.position[1] == self.size - 1

    @property
    def name(self) -> str:
        """Environment id (POBAX's)."""
        return self._name

    @property
    def num_actions(self) -> int:
        """4 moves, sample, one check per rock."""
        return self.k + 5

    @property
    def obs_dim(self) -> int:
        """Row one-hot, column one-hot, one entry per rock."""
        return 2 * self.size + self.k

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """4 moves, sample, one check per rock."""
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Shape (2 * size + k,), entries in [-1, 1]."""
        return spaces.Box(-1.0, 1.0, (self.obs_dim,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Cell, rock qualities and step counter."""
        return spaces.Dict(
            {
                "position": spaces.Box(0, self.size - 1, (2,), jnp.int32),
                "rock_morality": spaces.Box(0, 1, (self.k,), jnp.int32),
                "memory": spaces.Box(-1.0, 1.0, (self.k,), jnp.float32),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
