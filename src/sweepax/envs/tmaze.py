"""Bakker's T-Maze (gymnax 1.0 API): remember a cue from the first cell until the junction.

Source: Bakker, "Reinforcement Learning with Long Short-Term Memory", NeurIPS 2001
(https://papers.nips.cc/paper/1953-reinforcement-learning-with-long-short-term-memory);
reward scheme as in POBAX (github.com/taodav/pobax, ``pobax/envs/jax/tmaze.py``).

Layout (``hallway_length`` = N): corridor cells 0 .. N, junction at cell N + 1. The agent starts at
cell 0, where the goal side (up or down) is shown. Actions: 0 = North (up), 1 = South (down),
2 = East, 3 = West. At the junction, North/South ends the episode with +4.0 if it matches the goal,
else -0.1. Every other step gives 0: East/West move one cell (walls block at both ends), North/South
away from the junction do nothing. Optimal: N + 1 East moves + 1 turn = N + 2 steps, return 4.0;
guessing the side at the junction returns 0.5 * 4.0 - 0.5 * 0.1 = 1.95 in expectation.

Observation (float32, Bakker's 3-bit code):
  cell 0, goal up    [1, 1, 0]
  cell 0, goal down  [0, 1, 1]
  corridor 1 .. N    [1, 0, 1]
  junction N + 1     [0, 1, 0]
With ``perfect_memory=True`` the goal is appended as a one-hot ``[up, down]`` to every observation
(shape (5,)), so a memoryless policy can solve the task.

Time limit: ``EnvParams.max_steps_in_episode`` defaults to 1000. POBAX's T-Maze has no step counter,
so a policy that never turns at the junction runs forever; 1000 matches the length of POBAX's
evaluation rollout and is far above the optimal 12 steps of tmaze_10, so it never binds for a
policy that solves the task.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

NORTH, SOUTH, EAST, WEST = 0, 1, 2, 3
GOAL_UP, GOAL_DOWN = 0, 1  # the goal equals the action that reaches it
REWARD_CORRECT = 4.0
REWARD_WRONG = -0.1


@struct.dataclass
class EnvState(environment.EnvState):
    """T-Maze state: the agent's cell, the goal side and gymnax's step counter."""

    pos: jax.Array  # int32, 0 .. hallway_length + 1
    goal: jax.Array  # int32, GOAL_UP or GOAL_DOWN
    time: jax.Array  # int32, steps taken in this episode


@struct.dataclass
class EnvParams(environment.EnvParams):
    """T-Maze parameters (traced): only the time limit."""

    max_steps_in_episode: int = 1000


class TMaze(environment.Environment[EnvState, EnvParams]):
    """Bakker's T-Maze with a corridor of ``hallway_length`` cells before the junction."""

    def __init__(self, hallway_length: int = 5, perfect_memory: bool = False):
        super().__init__()
        if hallway_length < 1:
            raise ValueError(f"hallway_length must be >= 1, got {hallway_length}")
        self.hallway_length = int(hallway_length)
        self.perfect_memory = bool(perfect_memory)

    @property
    def junction(self) -> int:
        """Index of the junction cell (N + 1)."""
        return self.hallway_length + 1

    @property
    def default_params(self) -> EnvParams:
        """Default parameters: a 1000-step time limit."""
        return EnvParams()

    def step_env(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[Any, Any]]:
        """One transition; ``terminated`` only for North/South at the junction."""
        action = jnp.asarray(action, jnp.int32)
        at_junction = state.pos == self.junction
        turn = (action == NORTH) | (action == SOUTH)
        terminated = at_junction & turn
        reward = jnp.where(
            terminated,
            jnp.where(action == state.goal, REWARD_CORRECT, REWARD_WRONG),
            0.0,
        ).astype(jnp.float32)
        move = jnp.where(action == EAST, 1, jnp.where(action == WEST, -1, 0))
        pos = jnp.clip(state.pos + move, 0, self.junction).astype(jnp.int32)
        state = state.replace(pos=pos, time=state.time + 1)
        obs = self.get_obs(state, params)
        info = {"discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return (
            jax.lax.stop_gradient(obs),
            jax.lax.stop_gradient(state),
            reward,
            terminated,
            info,
        )

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Start at cell 0 with a uniformly random goal side."""
        return self._start(jax.random.bernoulli(key).astype(jnp.int32), params)

    def _start(self, goal: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Observation and state at cell 0 with goal side ``goal``."""
        state = EnvState(pos=jnp.zeros((), jnp.int32), goal=goal, time=jnp.zeros((), jnp.int32))
        return self.get_obs(state, params), state

    def draw_step(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The random draws ``step(key, ...)`` makes, as ``step_drawn`` takes them: the key of
        ``step_env`` and the goal side of the reset. Vmappable over keys, so a rollout draws
        them for all its steps at once, outside its loop."""
        key_step, key_reset = jax.random.split(key)
        return key_step, jax.random.bernoulli(key_reset).astype(jnp.int32)

    def step_drawn(
        self,
        draws: tuple[jax.Array, jax.Array],
        state: EnvState,
        action: int | float | jax.Array,
        params: EnvParams,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[Any, Any]]:
        """``step(key, state, action, params)`` (gymnax's auto-resetting step) with the draws
        of ``draw_step(key)``: the same outputs, bit for bit."""
        key_step, goal = draws
        obs_st, state_st, reward, terminated, info = self.step_env(key_step, state, action, params)
        truncated = self.is_truncated(state_st, params)
        done = terminated | truncated
        obs_re, state_re = self._start(goal, params)
        state = jax.tree.map(lambda x, y: jax.lax.select(done, x, y), state_re, state_st)
        obs = jax.lax.select(done, obs_re, obs_st)
        info = {**info, "terminated": terminated, "truncated": truncated}
        info["final_observation"] = obs_st
        return obs, state, reward, terminated, truncated, info

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> jax.Array:
        """Bakker's 3-bit code (+ goal one-hot with ``perfect_memory``), shape (obs_dim,)."""
        start = jnp.where(
            state.goal == GOAL_UP,
            jnp.array([1.0, 1.0, 0.0]),
            jnp.array([0.0, 1.0, 1.0]),
        )
        obs = jnp.where(
            state.pos == 0,
            start,
            jnp.where(
                state.pos == self.junction,
                jnp.array([0.0, 1.0, 0.0]),
                jnp.array([1.0, 0.0, 1.0]),
            ),
        )
        if self.perfect_memory:
            obs = jnp.concatenate([obs, jax.nn.one_hot(state.goal, 2)])
        return obs.astype(jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Natural termination is decided by the action in ``step_env``; a state alone never is."""
        return jnp.zeros((), bool)

    @property
    def name(self) -> str:
        """Environment id, as in the registry."""
        return f"tmaze_{self.hallway_length}"

    @property
    def num_actions(self) -> int:
        """North, South, East, West."""
        return 4

    @property
    def obs_dim(self) -> int:
        """Length of the observation vector: 3, or 5 with ``perfect_memory``."""
        return 5 if self.perfect_memory else 3

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """Four discrete actions."""
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Binary vector, shape (obs_dim,)."""
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        """Cell, goal side and step counter."""
        return spaces.Dict(
            {
                "pos": spaces.Discrete(self.junction + 1),
                "goal": spaces.Discrete(2),
                "time": spaces.Discrete(params.max_steps_in_episode),
            }
        )
