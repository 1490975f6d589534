"""POBAX's own sweep files (tests/sweep/pobax_files, verbatim) plan unchanged, meaning what they
meant in POBAX; POBAX's anneal_lr."""

from __future__ import annotations

import shlex
import textwrap
from pathlib import Path

import pytest

from sweepax import entries
from sweepax.errors import UserError
from sweepax.sweep import args as task_args
from sweepax.sweep import load, plan

POBAX_FILES = Path(__file__).parent / "pobax_files"
FILES = sorted(POBAX_FILES.rglob("*.py"))


def make_study(tmp_path: Path, body: str, name: str = "study.py") -> load.Study:
    path = tmp_path / name
    path.write_text("from sweepax import vmap\n" + textwrap.dedent(body))
    return load.load(path)


def test_the_stored_pobax_files_are_the_nine_fetched():
    assert len(FILES) == 9 and (POBAX_FILES / "NOTICE").is_file()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_pobax_file_plans_unchanged_with_pobaxs_defaults(path: Path):
    source = path.read_text()
    built = plan.plan(load.load(path), None)
    entry = built.study.entry
    program = "transformer" if "transformer_xl" in source else "ppo"
    assert entry.name == program and entry.written.startswith("-m pobax.algos.")
    assert built.manifest()["entry_as_written"] == entry.written
    assert built.study.name == path.stem  # study_name = Path(__file__).stem
    assert built.study.platform == "gpu"
    for task in built.tasks:
        # POBAX's defaults the files leave out, ours where POBAX has none
        assert task.static["anneal_lr"] is True
        assert {c["lambda1"] for c in task.configs} <= {0.5, 0.7, 0.95}
        # the file's own values
        assert f"'hidden_size': {task.static['hidden_size']}," in source
        assert f"'num_envs': {task.static['num_envs']}," in source
        assert f"'env': '{task.static['env']}'," in source
        assert f"'n_seeds': {task.static['n_seeds']}," in source
        if program == "transformer":
            assert task.static["embed_size"] == 12  # the file's
            assert (task.static["num_heads"], task.static["memory_window"]) == (4, 128)
        # the task line is self-contained: sweepax.train, with only sweepax's defaults, resolves
        # it to the same values and the same task id
        argv = shlex.split(task.command)[1:]
        assert argv[:3] == ["-m", "sweepax.train", program] and "--anneal_lr" in argv
        program_entry = entries.get(program)
        ns = task_args.parser(program_entry).parse_args(argv[3:])
        static, rows = task_args.resolve(program_entry, ns, lambda msg: pytest.fail(msg))
        assert static == task.static and rows == task.configs
        assert task_args.task_id(program_entry, static, rows) == task.task_id


def test_a_pobax_search_keeps_its_grid_and_seeds(tmp_path: Path):
    built = plan.plan(load.load(POBAX_FILES / "tmaze_10_ppo.py"), None)
    (task,) = built.tasks  # lr and lambda0 are space-joined strings: vmapped in one program
    assert task.static["total_steps"] == 1_000_000 and task.static["hidden_size"] == 32
    assert len(task.configs) == 4 * 6 and task.seeds == list(range(2024, 2034))
    best = plan.plan(load.load(POBAX_FILES / "best" / "tmaze_10_transformer_best.py"), None)
    assert sorted(t.static["seed"] for t in best.tasks) == [2050, 2051, 2052]  # a list: tasks


def test_pobax_defaults_fill_what_a_pobax_file_leaves_out(tmp_path: Path):
    study = make_study(tmp_path, """
    hparams = {"entry": "-m pobax.algos.ppo", "args": [{"env": "tmaze_5"}]}
    """)  # fmt: skip
    (task,) = plan.plan(study, None).tasks
    assert task.static["anneal_lr"] is True and task.static["total_steps"] == 1_500_000
    assert task.static["hidden_size"] == 128 and task.seeds == list(range(2020, 2025))
    assert task.configs[0]["lambda1"] == 0.5


def test_sweepax_entries_keep_their_defaults_and_task_ids(tmp_path: Path):
    study = make_study(tmp_path, """
    hparams = {"entry": "-m sweepax.train ppo", "args": [{"env": ["tmaze_5", "tmaze_10"],
      "lr": vmap([2.5e-3, 2.5e-4]), "hidden_size": 32, "n_seeds": 3}]}
    """)  # fmt: skip
    built = plan.plan(study, None)
    # the ids these tasks had before anneal_lr existed: stored results keep their ids
    assert [t.task_id for t in built.tasks] == ["430daa7537a9", "9539b933dbec"]
    assert all(t.static["anneal_lr"] is False for t in built.tasks)
    assert "--anneal_lr" not in built.tasks[0].argv and "--no-anneal_lr" not in built.tasks[0].argv
    assert "entry_as_written" not in built.manifest()
    annealed = make_study(tmp_path, """
    hparams = {"entry": "-m sweepax.train ppo", "args": [{"env": ["tmaze_5", "tmaze_10"],
      "lr": vmap([2.5e-3, 2.5e-4]), "hidden_size": 32, "n_seeds": 3, "anneal_lr": True}]}
    """, name="annealed.py")  # fmt: skip
    assert not {t.task_id for t in plan.plan(annealed, None).tasks} & {
        t.task_id for t in built.tasks
    }


def test_a_pobax_file_means_what_the_same_values_mean_in_sweepax(tmp_path: Path):
    pobax = make_study(tmp_path, """
    hparams = {"entry": "-m pobax.algos.ppo", "args": [{"env": "tmaze_5", "lr": "0.001 0.01"}]}
    """, name="pobax.py")  # fmt: skip
    ours = make_study(tmp_path, """
    hparams = {"entry": "-m sweepax.train ppo", "args": [{"env": "tmaze_5", "lr": "0.001 0.01",
      "anneal_lr": True, "total_steps": 1500000, "seed": 2020, "n_seeds": 5, "lambda1": 0.5,
      "num_eval_envs": 10}]}
    """, name="ours.py")  # fmt: skip
    (a,) = plan.plan(pobax, None).tasks
    (b,) = plan.plan(ours, None).tasks
    assert a.task_id == b.task_id and a.static == b.static and a.configs == b.configs


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"qkv_features": 64', "key 'qkv_features': POBAX has it but sweepax cannot honour it"),
        ('"window_grad": 64', "key 'window_grad': POBAX has it but sweepax cannot honour it"),
        ('"alpha": "0.5 1"', "key 'alpha': '0.5 1': POBAX has it but sweepax cannot honour it"),
    ],
)
def test_pobax_keys_sweepax_cannot_honour_are_refused_in_one_line(tmp_path, line, message):
    path = tmp_path / "study.py"
    path.write_text(
        'hparams = {"entry": "-m pobax.algos.transformer_xl", '
        f'"args": [{{"env": "tmaze_5", {line}}}]}}\n'
    )
    with pytest.raises(UserError) as err:
        load.load(path)
    text = str(err.value)
    assert len(text.splitlines()) == 1 and text.startswith(f"{path}: args[0]: ") and message in text


def test_pobax_window_mem_is_sweepaxs_memory_window(tmp_path: Path):
    study = make_study(tmp_path, """
    hparams = {"entry": "-m pobax.algos.transformer_xl",
               "args": [{"env": "tmaze_5", "window_mem": [16, 64], "alpha": 1}]}
    """)  # fmt: skip
    assert sorted(t.static["memory_window"] for t in plan.plan(study, None).tasks) == [16, 64]


def test_an_unknown_entry_names_the_pobax_entries_too(tmp_path: Path):
    path = tmp_path / "study.py"
    path.write_text('hparams = {"entry": "-m pobax.algos.dqn", "args": [{"env": "tmaze_5"}]}\n')
    with pytest.raises(UserError, match="is not a sweepax training program; use .*"
                       "'-m pobax.algos.ppo' or '-m pobax.algos.transformer_xl'"):  # fmt: skip
        load.load(path)


def test_anneal_lr_steps_with_lr_in_the_first_update_and_lr_over_n_in_the_last():
    import jax
    import numpy as np
    import optax

    from sweepax.agents import ppo
    from sweepax.agents.config import PPOStatic, PPOSweep

    # one optimizer step per update: an update's parameter change is -step_size * Adam's direction
    tiny = dict(env="tmaze_3", hidden_size=8, num_envs=4, num_steps=8, total_steps=8 * 4 * 4,
                update_epochs=1, num_minibatches=1, eval_steps=8)  # fmt: skip
    plain = ppo.make_trainer(PPOStatic(**tiny))
    annealed = ppo.make_trainer(PPOStatic(**tiny, anneal_lr=True))
    n = annealed.num_updates
    assert n == 4
    sweep = PPOSweep(lr=1e-2)

    def change(trainer: ppo.Trainer, k: int) -> np.ndarray:
        """Parameter change of update k (0-based) from the same start: the optimizer's count set."""
        runner = trainer.init(sweep, np.int32(0))
        runner = runner._replace(opt_state=optax.tree_utils.tree_set(runner.opt_state, count=k))
        after, _ = jax.jit(trainer.update)(runner, sweep, np.arange(1, dtype=np.int32))
        leaves = jax.tree.leaves(jax.tree.map(lambda a, b: a - b, after.params, runner.params))
        return np.concatenate([np.ravel(x) for x in leaves])

    base_first, base_last = change(plain, 0), change(plain, n - 1)
    assert np.abs(base_first).max() > 1e-3  # the update moved the parameters
    np.testing.assert_allclose(change(annealed, 0), base_first, rtol=1e-5, atol=1e-7)
    # atol: a change is (params + change) - params in float32
    np.testing.assert_allclose(change(annealed, n - 1), base_last / n, rtol=1e-4, atol=1e-7)
    assert np.abs(change(annealed, n)).max() == 0.0  # past the run: step size 0
