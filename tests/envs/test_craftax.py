"""POBAX's Craftax ids: registered, their layout and time limit, POBAX's pixel cut, and
``action_concat`` refused (planned off under POBAX's entry, whose own Craftax files set it).

Nothing here compiles a Craftax step (about a minute each): stepping is checked against POBAX in
test_craftax_agreement.py (``nox -s pobax_tests``) and a tiny training run in
test_craftax_training.py (``nox -s craftax_tests``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from sweepax.envs import make, registry
from sweepax.envs.craftax_envs import IDS, pobax_pixels
from sweepax.errors import UserError
from sweepax.sweep import load, plan

POBAX_FILES = Path(__file__).parent / "craftax_pobax_files"


def _study(tmp_path: Path, body: str) -> load.Study:
    path = tmp_path / "study.py"
    path.write_text("from sweepax import vmap\n" + textwrap.dedent(body))
    return load.load(path)


def test_pobax_craftax_ids_are_registered_and_vmappable():
    assert IDS == ("craftax", "craftax_pixels", "craftax_classic", "craftax_classic_pixels")
    for env_id in IDS:
        registry.check(env_id)
        assert registry.vmappable(env_id)
    with pytest.raises(UserError, match="did you mean 'craftax_pixels'"):
        registry.check("craftax-pixels")  # as POBAX's README spells it


def test_craftax_classic_symbolic_layout_and_time_limit():
    env, params = make("craftax_classic")
    assert (env.obs_dim, env.num_actions, env.obs_shape) == (1345, 17, None)
    assert env.observation_space(params).shape == (1345,)
    assert params.max_timesteps == 10_000  # craftax's own limit, as in POBAX
    assert not hasattr(env, "gamma")  # no discount of its own: the sweep's gamma applies
    _, short = make("craftax_classic", max_steps_in_episode=50)
    assert short.max_timesteps == 50
    with pytest.raises(UserError, match="max_steps_in_episode must be >= 1"):
        make("craftax_classic", max_steps_in_episode=0)


def test_pobax_pixels_keep_the_top_27_rows_unnormalised():
    image = jnp.asarray(np.random.default_rng(0).uniform(size=(63, 63, 3)), jnp.float32)
    cut = pobax_pixels(image)
    assert cut.shape == (27, 63, 3)
    np.testing.assert_array_equal(np.asarray(cut), np.asarray(image * 255.0)[:27])


def test_action_concat_is_refused_for_craftax_in_one_line(tmp_path: Path):
    study = _study(tmp_path, """
    hparams = {"entry": "-m sweepax.train ppo",
               "args": [{"env": ["tmaze_5", "craftax_classic"], "action_concat": True}]}
    """)  # fmt: skip
    with pytest.raises(UserError) as err:
        plan.plan(study, None)
    message = str(err.value)
    assert "\n" not in message and str(study.path) in message
    assert "key 'action_concat'" in message and "'craftax_classic'" in message
    assert message.endswith("set it to False")
    with pytest.raises(UserError, match="action_concat is not allowed"):
        registry.check("craftax_pixels", action_concat=True)
    registry.check("tmaze_5", action_concat=True)


def test_under_pobaxs_entry_action_concat_is_planned_off_for_craftax_only(tmp_path: Path):
    study = _study(tmp_path, """
    hparams = {"entry": "-m pobax.algos.ppo",
               "args": [{"env": ["tmaze_5", "craftax"], "action_concat": True}]}
    """)  # fmt: skip
    built = plan.plan(study, None)
    concat = {t.static["env"]: t.static["action_concat"] for t in built.tasks}
    assert concat == {"tmaze_5": True, "craftax": False}
    assert built.notes == ["craftax: action_concat planned False (POBAX ignores it for this env)"]
    craftax_task = next(t for t in built.tasks if t.static["env"] == "craftax")
    assert "--no-action_concat" in craftax_task.command


@pytest.mark.parametrize(
    "path", sorted(POBAX_FILES.rglob("*.py")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_pobaxs_own_craftax_files_plan_unchanged(path: Path):
    source = path.read_text()
    built = plan.plan(load.load(path), None)
    assert built.study.name == path.stem
    lrs = 1 if "best" in path.parts else 4
    seeds = 10 if "best" in path.parts else 1
    assert len(built.tasks) == lrs * (1 if "best" in path.parts else 5) * seeds
    for task in built.tasks:
        assert task.static["env"] == "craftax_pixels"
        assert task.static["action_concat"] is False  # POBAX ignores it for Craftax
        assert (task.static["hidden_size"], task.static["num_envs"]) == (512, 256)
        assert task.static["total_steps"] == 500_000_000 and task.static["n_seeds"] == 3
        assert f"'num_steps': {task.static['num_steps']}," in source
    assert any("action_concat planned False" in n for n in built.notes)
    assert (POBAX_FILES / "NOTICE").is_file()


def test_a_read_only_craftax_install_without_textures_is_refused_in_one_line(monkeypatch):
    import craftax.craftax_env

    from sweepax.envs import craftax_envs

    def read_only(name: str, auto_reset: bool) -> None:
        raise PermissionError(13, "Permission denied", "/opt/venv/craftax/texture_cache.pbz2")

    monkeypatch.setattr(craftax.craftax_env, "make_craftax_env_from_name", read_only)
    craftax_envs._craftax_env.cache_clear()
    try:
        with pytest.raises(UserError) as err:
            make("craftax_pixels")
    finally:
        craftax_envs._craftax_env.cache_clear()
    message = str(err.value)
    assert "\n" not in message and "/opt/venv/craftax/texture_cache.pbz2" in message
    assert "make('craftax_pixels')" in message
