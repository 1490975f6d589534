"""POBAX's masked classic-control ids keep exactly the observation dims POBAX 0.0.1 keeps.

Reads ``masked_gymnax_env_map`` from POBAX itself (build/pobax-venv, in a subprocess) and compares
every classic-control id of it with sweepax's registry. Run with ``nox -s pobax_tests``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sweepax.envs import make
from sweepax.envs.gymnax_envs import MASKED
from sweepax.errors import UserError

pytestmark = pytest.mark.pobax

ROOT = Path(__file__).resolve().parents[3]
READ_MAP = """
import json, gymnax
from pobax.envs import masked_gymnax_env_map as m
out = {}
for env_id, spec in m.items():
    try:
        gymnax.make(spec["env_str"])
        runs = True
    except Exception:
        runs = False
    out[env_id] = {**spec, "gymnax": runs}
print(json.dumps(out))
"""
CLASSIC = ("CartPole", "Pendulum", "LunarLander")


@pytest.fixture(scope="module")
def pobax_map(pobax_python: str) -> dict[str, dict]:
    """POBAX's masked ids: {id: {env_str, mask_dims, gymnax: whether gymnax can make env_str}}."""
    out = subprocess.run(
        [pobax_python, "-c", READ_MAP],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT / "build",
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_pobax_classic_control_id_keeps_pobax_s_dims(pobax_map: dict[str, dict]) -> None:
    classic = {k: v for k, v in pobax_map.items() if k.split("-")[0] in CLASSIC}
    runnable = {k: v for k, v in classic.items() if v["gymnax"]}
    assert sorted(runnable) == sorted(
        f"{name}-{v}-v0" for name in ("CartPole", "Pendulum") for v in "FPV"
    )
    for env_id, spec in runnable.items():
        env, _ = make(env_id)
        name, variant = env_id.split("-")[:2]
        assert env.kept_indices == tuple(spec["mask_dims"]) == MASKED[name].kept[variant], env_id
        assert env.inner.name == MASKED[name].base_id == spec["env_str"], env_id
    print(f"{len(runnable)} masked classic-control ids keep POBAX's dims")


def test_pobax_lunar_lander_ids_cannot_run_in_pobax_and_are_refused_here(
    pobax_map: dict[str, dict],
) -> None:
    lunar = {k: v for k, v in pobax_map.items() if k.startswith("LunarLander")}
    assert sorted(lunar) == ["LunarLander-F-v0", "LunarLander-P-v0", "LunarLander-V-v0"]
    assert not any(v["gymnax"] for v in lunar.values())  # gymnax has no LunarLander-v2
    for env_id in lunar:
        with pytest.raises(UserError, match="unknown env"):
            make(env_id)
