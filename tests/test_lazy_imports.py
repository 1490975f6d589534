"""A training task's start-up imports what it uses: gymnax's env zoo and plotting load only when
a task asks for a gymnax env (or a plot), and then behave as a plain import would."""

from __future__ import annotations

import subprocess
import sys

STARTUP = """
import sys
from sweepax import train
from sweepax.agents import ppo
from sweepax.envs import registry
from sweepax.results import store
registry.make("tmaze_10")
zoo = ["gymnax.environments.bsuite", "gymnax.environments.minatar", "gymnax.registration",
       "matplotlib", "seaborn"]
zoo = [m for m in zoo if type(sys.modules.get(m)).__name__ == "module"]  # not a placeholder
print("loaded:", zoo)

import gymnax
from gymnax.environments import Catch, environment
from sweepax.envs import tmaze
env, _ = gymnax.make("Catch-bsuite")
assert type(env) is Catch and isinstance(env, environment.Environment)
assert issubclass(tmaze.TMaze, sys.modules["gymnax.environments"].environment.Environment)
assert isinstance(registry.make("CartPole-v1")[0].inner, environment.Environment)
assert sys.modules["gymnax"].make is gymnax.make and "gymnax.environments.bsuite" in sys.modules
print("gymnax works")
"""


def test_a_tmaze_task_starts_without_gymnax_s_env_zoo_which_still_loads_when_asked():
    proc = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["loaded: []", "gymnax works"]
