"""Environments (gymnax 1.0 API) and the id registry: ``make("tmaze_10") -> (env, params)``."""

from sweepax.envs.registry import check, known_envs, make
from sweepax.envs.tmaze import TMaze

__all__ = ["TMaze", "check", "known_envs", "make"]
