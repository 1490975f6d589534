"""Planning: lists become tasks, vmapped values stay inside one task, exclusion, max-vmap, ids."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sweepax.errors import UserError
from sweepax.sweep import args as task_args
from sweepax.sweep import load, plan


def make_plan(tmp_path: Path, body: str, max_vmap: int | None = None, name: str = "study.py"):
    path = tmp_path / name
    path.write_text("from sweepax import vmap\n" + textwrap.dedent(body))
    return plan.plan(load.load(path), max_vmap)


TMAZE = """
hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{
        "env": ["tmaze_5", "tmaze_10"],
        "lr": vmap([2.5e-3, 2.5e-4, 2.5e-5, 2.5e-6]),
        "lambda0": "0.1 0.3 0.5 0.7 0.9 0.95",
        "hidden_size": [32, 64],
        "seed": 2024, "n_seeds": 10,
    }],
    "exclude": {"hidden_size": 64, "env": ["tmaze_5"]},
}
"""


def test_lists_are_tasks_vmapped_values_are_configs_and_exclude_drops_matching_rows(tmp_path):
    p = make_plan(tmp_path, TMAZE)
    statics = [(t.static["env"], t.static["hidden_size"]) for t in p.tasks]
    assert statics == [("tmaze_5", 32), ("tmaze_10", 32), ("tmaze_10", 64)]
    for t in p.tasks:
        assert len(t.configs) == 24
        assert t.seeds == list(range(2024, 2034))
    assert p.n_runs == 3 * 24 * 10
    first = p.tasks[0].configs
    assert (first[0]["lr"], first[0]["lambda0"]) == (2.5e-3, 0.1)
    assert (first[1]["lr"], first[1]["lambda0"]) == (2.5e-3, 0.3)  # last key varies fastest
    assert first[0]["entropy_coeff"] == 0.01  # defaults resolved


def test_task_line_is_a_complete_command_that_parses_back_to_the_same_task(tmp_path):
    p = make_plan(tmp_path, TMAZE)
    task = p.tasks[1]
    assert task.command.startswith("python -m sweepax.train ppo --study study ")
    entry = p.study.entry
    ns = task_args.parser(entry).parse_args(task.argv[3:])
    static, rows = task_args.resolve(entry, ns, pytest.fail)
    assert static == task.static and rows == task.configs
    assert task_args.task_id(entry, static, rows) == task.task_id


def test_task_ids_are_stable_across_replanning_and_distinct(tmp_path):
    a = [t.task_id for t in make_plan(tmp_path, TMAZE).tasks]
    b = [t.task_id for t in make_plan(tmp_path, TMAZE, name="other.py").tasks]
    assert a == b
    assert len(set(a)) == len(a)


@pytest.mark.parametrize("max_vmap", [1, 5, 7, 24, 100])
def test_max_vmap_splits_the_grid_and_the_union_of_tasks_is_exactly_the_grid(tmp_path, max_vmap):
    p = make_plan(tmp_path, TMAZE, max_vmap=max_vmap)
    grid = {
        (env, hs, lr, lam)
        for env, hs in [("tmaze_5", 32), ("tmaze_10", 32), ("tmaze_10", 64)]
        for lr, lam in itertools.product(
            [2.5e-3, 2.5e-4, 2.5e-5, 2.5e-6], [0.1, 0.3, 0.5, 0.7, 0.9, 0.95]
        )
    }
    cells = [
        (t.static["env"], t.static["hidden_size"], c["lr"], c["lambda0"])
        for t in p.tasks
        for c in t.configs
    ]
    assert len(cells) == len(set(cells))  # no config runs twice
    assert set(cells) == grid
    assert all(len(t.configs) <= max_vmap for t in p.tasks)
    assert len(p.tasks) == 3 * -(-24 // max_vmap)
    for t in p.tasks:  # every split task's own command reproduces exactly its configs
        entry = p.study.entry
        ns = task_args.parser(entry).parse_args(t.argv[3:])
        assert task_args.resolve(entry, ns, pytest.fail)[1] == t.configs


def test_union_of_arg_dicts_and_list_of_seeds(tmp_path):
    body = """
    hparams = {"args": [
        {"env": "tmaze_5", "seed": [1, 2], "lr": vmap([0.1, 0.2])},
        {"env": "tmaze_5", "memoryless": True, "seed": 1, "n_seeds": 3},
        {"env": "tmaze_5", "seed": 1, "lr": vmap([0.1, 0.2])},  # duplicate of the first task
    ]}
    """
    p = make_plan(tmp_path, body)
    assert [
        (t.static["seed"], t.static["memoryless"], len(t.configs), t.seeds) for t in p.tasks
    ] == [
        (1, False, 2, [1]),
        (2, False, 2, [2]),
        (1, True, 1, [1, 2, 3]),
    ]


def test_exclude_on_a_vmapped_key_keeps_the_rest_of_the_grid_in_zip_form(tmp_path):
    body = """
    hparams = {"args": [{"env": "tmaze_5", "lr": vmap([0.1, 0.2]), "lambda0": vmap([0.5, 0.9])}],
               "exclude": {"lr": 0.2, "lambda0": 0.9}}
    """
    (task,) = make_plan(tmp_path, body).tasks
    assert [(c["lr"], c["lambda0"]) for c in task.configs] == [(0.1, 0.5), (0.1, 0.9), (0.2, 0.5)]
    assert "--grid zip" in task.command


def test_empty_sweep_after_exclusion_is_an_error(tmp_path):
    body = """
    hparams = {"args": [{"env": "tmaze_5", "hidden_size": [32, 64]}], "exclude": {"env": "tmaze_5"}}
    """
    with pytest.raises(UserError, match=r"study.py: key 'exclude': the sweep is empty"):
        make_plan(tmp_path, body)


def test_write_creates_lines_and_manifest(tmp_path):
    p = make_plan(tmp_path, TMAZE, max_vmap=12)
    txt, manifest = plan.write(p, tmp_path / "runs")
    lines = txt.read_text().splitlines()
    data = json.loads(manifest.read_text())
    assert len(lines) == len(data["tasks"]) == 6
    for i, (line, task) in enumerate(zip(lines, data["tasks"], strict=True)):
        assert task["index"] == i and task["command"] == line
        assert task["n_configs"] == 12 and len(task["configs"]) == 12
        # every static value once; the seeds as their list (seed .. seed + n_seeds - 1)
        assert task["static"] == {k: v for k, v in p.tasks[i].static.items() if "seed" not in k}
        assert "seed" not in task["static"] and task["seeds"] == list(range(2024, 2034))
    assert "seed" not in data["hparams_static"] and "hidden_size" in data["hparams_static"]
    assert data["spec_path"].endswith("study.py") and len(data["spec_hash"]) == 64
    assert data["hparams_vmapped"][:2] == ["lr", "lambda0"]


def test_the_five_tmaze_studies_plan(tmp_path):
    root = Path(__file__).parents[2] / "hyperparams" / "tmaze"
    from sweepax.sweep.write_jobs import plan_targets

    plans = {p.study.name: p for p in plan_targets([str(root)], None)}
    assert sorted(plans) == [
        "tmaze_10_ppo",
        "tmaze_10_ppo_LD",
        "tmaze_10_ppo_memoryless",
        "tmaze_10_ppo_perfect_memory_memoryless",
        "tmaze_10_transformer",
    ]
    for name, p in plans.items():
        (task,) = p.tasks
        assert task.static["total_steps"] == 1_000_000 and task.static["hidden_size"] == 32
        assert task.static["num_envs"] == 4 and len(task.seeds) == 10
        lrs = sorted({c["lr"] for c in task.configs})
        assert lrs[-1] == 2.5e-3, name
        assert len(task.configs) == (54 if name == "tmaze_10_ppo_LD" else 24)
    assert plans["tmaze_10_transformer"].study.entry.name == "transformer"
    assert plans["tmaze_10_ppo_perfect_memory_memoryless"].tasks[0].static["perfect_memory"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('"total_steps": 100', "key 'total_steps': 100 is less than one update"),
        ('"n_seeds": 0', "key 'n_seeds': 0 must be at least 1"),
        ('"num_envs": 6, "num_minibatches": 4', "key 'num_minibatches': num_envs=6 must be"),
    ],
)
def test_unusable_static_values_are_refused_at_planning_time(tmp_path, args, message):
    body = '\nhparams = {"args": [{"env": "tmaze_5", ' + args + "}]}\n"
    with pytest.raises(UserError) as err:
        make_plan(tmp_path, body)
    assert str(err.value).startswith(f"{tmp_path / 'study.py'}: {message}")


def test_perfect_memory_on_an_env_without_it_is_refused_at_planning_time(tmp_path):
    body = '\nhparams = {"args": [{"env": ["tmaze_5", "CartPole-P-v0"], "perfect_memory": True}]}\n'
    with pytest.raises(UserError) as err:
        make_plan(tmp_path, body)
    assert str(err.value) == (
        f"{tmp_path / 'study.py'}: args[0]: key 'perfect_memory': env 'CartPole-P-v0': "
        "perfect_memory is only defined for tmaze_<N> and rocksample_<5_5|7_8|11_11|15_15> and "
        "pocman[_aligned]; set it to False"
    )


# --- sizes: refused before allocating, progress, a manifest proportional to the plan -----------

HUGE = """
hparams = {"args": [{"env": "tmaze_5",
                     "lr": vmap([1e-4 * (i + 1) for i in range(100_000)]),
                     "lambda0": vmap([i / 100_000 for i in range(100_000)])}]}
"""


def test_a_grid_of_1e10_configs_is_refused_from_its_axis_sizes_in_a_second(tmp_path):
    path = tmp_path / "study.py"
    path.write_text("from sweepax import vmap\n" + textwrap.dedent(HUGE))
    study = load.load(path)
    t0 = time.perf_counter()
    with pytest.raises(UserError) as err:
        plan.plan(study)
    assert time.perf_counter() - t0 < 1.0
    assert str(err.value) == (
        f"{path}: the sweep expands to 10,000,000,000 configs (args[0]: 100000 lr x 100000 "
        "lambda0), more than --max-configs 100,000; split the study into several sweep files "
        "or raise --max-configs"
    )


def test_write_jobs_refuses_a_huge_grid_in_one_line_with_little_memory_and_writes_nothing(
    tmp_path,
):
    path = tmp_path / "study.py"
    path.write_text("from sweepax import vmap\n" + textwrap.dedent(HUGE))
    # The process's own peak (VmHWM): ru_maxrss of a fresh child starts at its parent's peak,
    # which is pytest's, over a gigabyte late in the suite.
    code = (
        "import sys\n"
        "from sweepax.sweep import write_jobs\n"
        "rc = write_jobs.main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read().splitlines()\n"
        "peak_kib = next(int(ln.split()[1]) for ln in status if ln.startswith('VmHWM'))\n"
        "print(rc, peak_kib // 1024)\n"
    )
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rc, peak_mib = proc.stdout.split()
    assert rc == "2" and int(peak_mib) < 1024, proc.stdout  # planning it would take > 6 GB
    assert proc.stderr.count("\n") == 1 and "10,000,000,000 configs" in proc.stderr
    assert not runs.exists()


def test_max_configs_sets_the_limit_and_tasks_of_envs_that_cannot_vmap_count(tmp_path):
    path = tmp_path / "study.py"
    path.write_text(
        "from sweepax import vmap\nhparams = {'args': [{'env': 'tmaze_5', "
        "'lr': vmap([0.1, 0.2, 0.3]), 'hidden_size': [8, 16]}]}\n"
    )
    study = load.load(path)
    assert len(plan.plan(study, max_configs=6).tasks) == 2
    with pytest.raises(UserError, match=r"expands to 6 configs \(args\[0\]: 3 lr x 2 hidden_siz"):
        plan.plan(study, max_configs=5)
    madrona = tmp_path / "pix.py"
    madrona.write_text(
        'hparams = {"args": [{"env": "ant-pixels", "renderer": "madrona", "n_seeds": 10}]}\n'
    )
    with pytest.raises(UserError, match=r"1 configs in 10 tasks \(args\[0\]: 10 seeds \(cannot"):
        plan.plan(load.load(madrona), max_configs=9)
    with pytest.raises(UserError, match=r"--max-configs 0: must be at least 1"):
        plan.plan(study, max_configs=0)


def test_a_large_plan_reports_progress_and_its_manifest_grows_with_configs_not_repetition(
    tmp_path,
):
    # 10,000 configs: 100 tasks (lr list) of 100 vmapped configs (lambda0)
    body = """
    hparams = {"args": [{"env": "tmaze_5", "lr": [1e-4 * (i + 1) for i in range(100)],
                         "lambda0": vmap([i / 100 for i in range(100)])}]}
    """
    path = tmp_path / "study.py"
    path.write_text("from sweepax import vmap\n" + textwrap.dedent(body))
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.sweep.write_jobs", str(path), "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["planning study: 10,000 of 10,000 configs"]
    text = (runs / "study.json").read_text()
    data = json.loads(text)
    assert len(data["tasks"]) == 100 and sum(t["n_configs"] for t in data["tasks"]) == 10_000
    assert len(text) < 10_000 * 160  # every swept value of a config once, compactly
    assert len(text.splitlines()) < 100 + 40  # one line per task, plus the study's keys


def test_a_manifest_task_states_each_static_value_once(tmp_path):
    body = """
    hparams = {"args": [{"env": "tmaze_5", "lr": [1e-4 * (i + 1) for i in range(10)],
                         "lambda0": [i / 10 for i in range(10)]}]}
    """
    p = make_plan(tmp_path, body)
    text = plan.manifest_text(p)
    assert len(p.tasks) == 100
    assert len(text) / 100 < 800  # command, static values, one config, seeds
    task = json.loads(text)["tasks"][0]
    assert sorted(task) == ["command", "configs", "index", "n_configs", "seeds", "static",
                            "task_id"]  # fmt: skip
    assert text.count('"total_steps":') == 100 and text.count('"lr":') == 100
