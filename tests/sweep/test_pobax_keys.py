"""POBAX's remaining sweep-file keys, as planned: num_eval_envs, image_size, normalize_env,
n_run_bins / run_bin_idx, sweep_type 'random' / n_random_hparams, save_runner_state /
save_checkpoints, and the entry as written on every task line."""

from __future__ import annotations

import itertools
import json
import shlex
import textwrap
from pathlib import Path

import pytest

from sweepax.errors import UserError
from sweepax.sweep import load, plan

POBAX_PPO = '"entry": "-m pobax.algos.ppo"'


def make_plan(tmp_path: Path, args: str, entry: str = POBAX_PPO, name: str = "study.py"):
    path = tmp_path / name
    path.write_text(f"hparams = {{{entry}, 'args': [{{{textwrap.dedent(args)}}}]}}\n")
    return plan.plan(load.load(path), None)


def refusal(tmp_path: Path, args: str, entry: str = POBAX_PPO) -> str:
    with pytest.raises(UserError) as err:
        make_plan(tmp_path, args, entry)
    text = str(err.value)
    assert len(text.splitlines()) == 1 and text.startswith(str(tmp_path / "study.py"))
    return text


def grid(task: plan.Task, *keys: str) -> list[tuple]:
    return [tuple(c[k] for k in keys) for c in task.configs]


# num_eval_envs


def test_num_eval_envs_is_pobaxs_ten_unless_the_file_gives_it(tmp_path):
    (default,) = make_plan(tmp_path, "'env': 'tmaze_5'").tasks
    assert default.static["num_eval_envs"] == 10 and "--num_eval_envs" in default.argv
    (given,) = make_plan(tmp_path, "'env': 'tmaze_5', 'num_eval_envs': 16").tasks
    assert given.static["num_eval_envs"] == 16
    assert given.argv[given.argv.index("--num_eval_envs") + 1] == "16"
    assert given.task_id != default.task_id


def test_sweepax_entries_evaluate_on_num_envs_as_before(tmp_path):
    entry = '"entry": "-m sweepax.train ppo"'
    (task,) = make_plan(tmp_path, "'env': 'tmaze_5'", entry).tasks
    assert task.static["num_eval_envs"] == 0  # 0: num_envs
    assert "--num_eval_envs" not in task.argv
    assert "0: num_envs" in refusal(tmp_path, "'env': 'tmaze_5', 'num_eval_envs': -1", entry)


# image_size


def test_image_size_sets_a_pixel_envs_image_and_other_envs_ignore_it(tmp_path):
    tasks = make_plan(
        tmp_path, "'env': ['hopper-pixels', 'ant-pixels-32', 'tmaze_5'], 'image_size': 32"
    ).tasks
    assert [t.static["env"] for t in tasks] == ["hopper-pixels-32", "ant-pixels-32", "tmaze_5"]
    assert "--image_size" not in tasks[0].argv  # the env id carries it


def test_image_size_is_refused_where_it_cannot_apply(tmp_path):
    text = refusal(tmp_path, "'env': 'hopper-pixels-48', 'image_size': 32")
    assert "key 'image_size': 32 differs from the size of env 'hopper-pixels-48'" in text
    assert "give one size in pixels" in refusal(
        tmp_path, "'env': 'hopper-pixels', 'image_size': [32, 64]"
    )
    tiny = refusal(tmp_path, "'env': 'hopper-pixels', 'image_size': 4")
    assert "image size must be 8..512" in tiny


# normalize_env


def test_normalize_env_false_is_pobaxs_default_and_true_is_refused(tmp_path):
    (task,) = make_plan(tmp_path, "'env': 'tmaze_5', 'normalize_env': False").tasks
    (plain,) = make_plan(tmp_path, "'env': 'tmaze_5'").tasks
    assert task.task_id == plain.task_id
    text = refusal(tmp_path, "'env': 'tmaze_5', 'normalize_env': True")
    assert "key 'normalize_env': True" in text and "no reward normalisation" in text


# n_run_bins / run_bin_idx


def pobax_bins(values: dict[str, list[float]], n_bins: int) -> list[list[dict[str, float]]]:
    """POBAX's bins: the product of the listed values over the keys sorted by name, cut into
    ``n_bins`` equal consecutive bins (pobax/utils/sweep.py)."""
    keys = sorted(values)
    rows = [dict(zip(keys, c, strict=True)) for c in itertools.product(*(values[k] for k in keys))]
    size = len(rows) // n_bins
    return [rows[i * size : (i + 1) * size] for i in range(n_bins)]


BINNED = "'env': 'tmaze_5', 'lr': '0.1 0.2 0.3 0.4', 'lambda0': '0.5 0.9', 'n_run_bins': 4"


def test_each_run_bin_is_a_task_of_the_configs_pobaxs_bin_runs(tmp_path):
    built = make_plan(tmp_path, BINNED + ", 'run_bin_idx': [0, 1, 2, 3]")
    want = pobax_bins({"lr": [0.1, 0.2, 0.3, 0.4], "lambda0": [0.5, 0.9]}, 4)
    assert len(built.tasks) == 4
    for b, (task, configs) in enumerate(zip(built.tasks, want, strict=True)):
        assert grid(task, "lambda0", "lr") == [(c["lambda0"], c["lr"]) for c in configs]
        assert task.search["n_run_bins"] == 4 and task.search["run_bin_idx"] == b
    # one bin alone: the same task (same id), as POBAX runs bin 2 alone
    (alone,) = make_plan(tmp_path, BINNED + ", 'run_bin_idx': 2", name="alone.py").tasks
    assert alone.task_id == built.tasks[2].task_id and alone.configs == built.tasks[2].configs
    # POBAX's default bin is 0
    (first,) = make_plan(tmp_path, BINNED, name="first.py").tasks
    assert first.configs == built.tasks[0].configs
    again = make_plan(tmp_path, BINNED + ", 'run_bin_idx': [0, 1, 2, 3]", name="again.py")
    assert [t.task_id for t in again.tasks] == [t.task_id for t in built.tasks]


def test_bins_split_every_program_and_max_vmap_splits_a_bin(tmp_path):
    args = BINNED.replace("'tmaze_5'", "['tmaze_5', 'tmaze_10']") + ", 'run_bin_idx': [1, 3]"
    built = make_plan(tmp_path, args)
    assert [(t.static["env"], t.search["run_bin_idx"]) for t in built.tasks] == [
        ("tmaze_5", 1), ("tmaze_5", 3), ("tmaze_10", 1), ("tmaze_10", 3)
    ]  # fmt: skip
    path = tmp_path / "study.py"
    split = plan.plan(load.load(path), max_vmap=1)
    assert len(split.tasks) == 8 and all(len(t.configs) == 1 for t in split.tasks)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (", 'n_run_bins': 3", "key 'n_run_bins': 3 does not cut 8 configs into equal bins"),
        (", 'n_run_bins': 8", "key 'n_run_bins': 8 does not cut 8 configs"),
        (", 'n_run_bins': 4, 'run_bin_idx': 4", "key 'run_bin_idx': 4 is not a bin"),
        (", 'run_bin_idx': 1", "key 'run_bin_idx' needs 'n_run_bins'"),
        (", 'n_run_bins': 0", "key 'n_run_bins': 0; give an integer of at least 1"),
    ],
)
def test_bad_bins_are_refused_in_one_line(tmp_path, extra, message):
    args = "'env': 'tmaze_5', 'lr': '0.1 0.2 0.3 0.4', 'lambda0': '0.5 0.9'" + extra
    assert message in refusal(tmp_path, args)


# sweep_type 'random'

RANDOM = (
    "'env': 'tmaze_5', 'lr': '0.1 0.2 0.3 0.4 0.5 0.6', 'lambda0': '0.1 0.5 0.9', "
    "'entropy_coeff': '0.0 0.01', 'sweep_type': 'random', 'n_random_hparams': 5"
)


def test_a_random_search_samples_distinct_configs_of_the_grid_and_records_them(tmp_path):
    built = make_plan(tmp_path, RANDOM)
    (task,) = built.tasks
    full = set(
        itertools.product([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.1, 0.5, 0.9], [0.0, 0.01])
    )  # fmt: skip
    sample = grid(task, "lr", "lambda0", "entropy_coeff")
    assert len(sample) == len(set(sample)) == 5 and set(sample) <= full
    record = task.search
    assert record["sweep_type"] == "random" and record["seed"] == 2020  # the program's seed
    assert record["n_random_hparams"] == 5 and record["grid_size"] == 36
    rows = list(itertools.product([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.1, 0.5, 0.9], [0.0, 0.01]))
    assert [rows[i] for i in record["grid_index"]] == sample  # the file's key order, row-major
    manifest = json.loads(plan.manifest_text(built))
    assert manifest["tasks"][0]["search"] == record
    # deterministic: the same file plans the same sample and task id
    again = make_plan(tmp_path, RANDOM, name="again.py")
    assert again.tasks[0].task_id == task.task_id and again.tasks[0].configs == task.configs
    # seeded by the program's seed: another seed, another sample (of the same size)
    other = make_plan(tmp_path, RANDOM + ", 'seed': 7", name="other.py").tasks[0]
    assert other.search["seed"] == 7 and len(other.configs) == 5
    assert grid(other, "lr", "lambda0", "entropy_coeff") != sample


def test_a_random_sample_can_be_cut_into_run_bins(tmp_path):
    (whole,) = make_plan(tmp_path, RANDOM.replace("5", "6")).tasks
    binned = make_plan(
        tmp_path, RANDOM.replace("5", "6") + ", 'n_run_bins': 3, 'run_bin_idx': [0, 1, 2]",
        name="binned.py",
    ).tasks  # fmt: skip
    assert len(binned) == 3 and all(len(t.configs) == 2 for t in binned)
    assert [c for t in binned for c in t.configs] == whole.configs


def test_bad_random_searches_are_refused_in_one_line(tmp_path):
    assert "key 'n_random_hparams': 40 is more than the 36 configs" in refusal(
        tmp_path, RANDOM.replace("'n_random_hparams': 5", "'n_random_hparams': 40")
    )
    assert "key 'sweep_type': 'bayes'; use 'grid' or 'random'" in refusal(
        tmp_path, "'env': 'tmaze_5', 'sweep_type': 'bayes'"
    )
    assert "key 'n_random_hparams' applies only to sweep_type 'random'" in refusal(
        tmp_path, "'env': 'tmaze_5', 'n_random_hparams': 3"
    )


# save_runner_state / save_checkpoints / save_params


@pytest.mark.parametrize("key", ["save_runner_state", "save_checkpoints"])
def test_pobaxs_save_keys_keep_the_final_parameters_without_changing_task_ids(tmp_path, key):
    (saved,) = make_plan(tmp_path, f"'env': 'tmaze_5', '{key}': True").tasks
    (plain,) = make_plan(tmp_path, "'env': 'tmaze_5'", name="plain.py").tasks
    assert "--save_params" in saved.argv and "--save_params" not in plain.argv
    assert saved.task_id == plain.task_id  # the same run; its store keeps more
    both = "'env': 'tmaze_5', 'save_runner_state': False, 'save_checkpoints': True"
    assert "--save_params" in make_plan(tmp_path, both, name="both.py").tasks[0].argv


def test_save_params_is_a_study_wide_flag_of_sweepax_entries_too(tmp_path):
    entry = '"entry": "-m sweepax.train ppo"'
    (task,) = make_plan(tmp_path, "'env': 'tmaze_5', 'save_params': True", entry).tasks
    assert "--save_params" in task.argv
    assert "key 'save_params': 'yes'; use True or False" in refusal(
        tmp_path, "'env': 'tmaze_5', 'save_params': 'yes'", entry
    )


# the entry as written


def test_pobax_task_lines_carry_the_entry_as_written_and_sweepax_lines_do_not(tmp_path):
    (pobax,) = make_plan(tmp_path, "'env': 'tmaze_5'").tasks
    argv = shlex.split(pobax.command)
    assert argv[argv.index("--entry_as_written") + 1] == "-m pobax.algos.ppo"
    entry = '"entry": "-m sweepax.train ppo"'
    (ours,) = make_plan(tmp_path, "'env': 'tmaze_5'", entry, name="ours.py").tasks
    assert "--entry_as_written" not in ours.argv
