"""Environments (gymnax 1.0 API) and the id registry: ``make("tmaze_10") -> (env, params)``.

Ids: ``tmaze_<N>``, every gymnax id but MNISTBandit-bsuite (``CartPole-v1``, ``MemoryChain-bsuite``,
``Breakout-MinAtar``, ...), masked classic control ``<CartPole|Pendulum>-<F|P|V>-v0``, and MuJoCo
locomotion on MJX ``<Hopper|Walker2d|HalfCheetah|Ant>-v5`` / ``-v5-<F|P|V>`` (``mjx_envs``), POBAX's
masked MuJoCo on brax ``<Hopper|Walker|HalfCheetah|Ant>-<F|P|V>-v0`` (``brax_masked``), and more
(``registry``).
"""

from sweepax.envs.gymnax_envs import GymnaxEnv
from sweepax.envs.registry import check, known_envs, make
from sweepax.envs.tmaze import TMaze

__all__ = ["GymnaxEnv", "TMaze", "check", "known_envs", "make"]
