"""Every sweep file POBAX 0.0.1 ships (``scripts/hyperparams/**`` of its sdist) plans unchanged,
except the few listed here, each refused in one line that says why."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from sweepax.errors import UserError
from sweepax.sweep import load, plan

# file (under scripts/hyperparams/) -> what its one-line refusal says: each one POBAX 0.0.1
# itself cannot run either
REFUSED = {
    **{
        f"battleship/{name}.py": (
            "env 'battleship_10': perfect_memory is not offered: POBAX 0.0.1 itself cannot run "
            "Battleship with perfect memory"
        )
        for name in (
            "battleship_10_ppo_perfect_memory",
            "battleship_10_ppo_perfect_memory_memoryless",
        )
    },
    "navix/navix_03_transformer.py": (
        "key 'embed_size': 230 must be divisible by num_heads=4 (POBAX 0.0.1 cannot run this "
        "file either: its transformer_xl stops before training on every file"
    ),
}
# files that plan with a note on what their perfect memory draws
NOTED = {
    f"pocman/{name}.py": "pocman: perfect_memory draws POBAX 0.0.1's state grid"
    for name in (
        "best/pocman_ppo_perfect_memory_memoryless_best",
        "pocman_ppo_perfect_memory",
        "pocman_ppo_perfect_memory_memoryless",
    )
}


@pytest.fixture(scope="module")
def pobax_files(pobax_sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pobax_hyperparams")
    with tarfile.open(pobax_sdist) as tar:
        members = [
            m for m in tar.getmembers()
            if "/scripts/hyperparams/" in m.name and m.name.endswith(".py")
        ]  # fmt: skip
        tar.extractall(out, members=members, filter="data")
    return {str(p).split("/scripts/hyperparams/")[1]: p for p in sorted(out.rglob("*.py"))}


@pytest.mark.pobax
def test_every_pobax_sweep_file_plans_or_is_refused_in_one_line(pobax_files):
    planned, refused = [], {}
    for rel, path in pobax_files.items():
        try:
            built = plan.plan(load.load(path), None)
        except UserError as err:
            refused[rel] = str(err)
            continue
        assert built.tasks, rel
        assert built.study.entry.written.startswith("-m pobax.algos."), rel
        if rel in NOTED:
            assert any(note.startswith(NOTED[rel]) for note in built.notes), built.notes
        planned.append(rel)
    assert len(pobax_files) == 224
    assert sorted(refused) == sorted(REFUSED)
    for rel, message in refused.items():
        assert "\n" not in message and REFUSED[rel] in message, (rel, message)
        assert message.startswith(str(pobax_files[rel])), message  # names the file
    families = {rel.split("/")[0] for rel in planned}
    assert {"masked_mujoco", "craftax", "navix", "rocksample", "battleship", "pocman"} <= families
    observable = {
        f"visual_mujoco/{b}/{b}_ppo_observable_madrona.py" for b in ("ant", "halfcheetah")
    }
    assert observable <= set(planned)  # POBAX's state-observation ids
    print(f"{len(planned)} of {len(pobax_files)} POBAX 0.0.1 sweep files plan unchanged")


TRANSFORMER = """
hparams = {{"entry": "{entry}", "args": [{{"env": "tmaze_5", "embed_size": 230}}]}}
"""


@pytest.mark.parametrize("entry", ["-m pobax.algos.transformer_xl", "-m sweepax.train transformer"])
def test_a_transformer_file_refused_says_when_pobax_cannot_run_it_either(tmp_path, entry):
    path = tmp_path / "study.py"
    path.write_text(TRANSFORMER.format(entry=entry))
    with pytest.raises(UserError) as err:
        plan.plan(load.load(path), None)
    refusal = f"{path}: key 'embed_size': 230 must be divisible by num_heads=4"
    if entry.startswith("-m pobax."):  # POBAX 0.0.1's transformer_xl fails on every file
        refusal += (
            " (POBAX 0.0.1 cannot run this file either: its transformer_xl stops before training "
            "on every file with 'TypeError: get_env() missing 1 required positional argument: "
            "'num_envs''); fix the sweep file"
        )
    else:
        refusal += "; fix the sweep file"
    assert str(err.value) == refusal
