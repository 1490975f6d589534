"""Sweep files: each bad input is one line naming the file, the key and the fix; nothing written."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sweepax.errors import UserError
from sweepax.sweep import load

GOOD = """
from sweepax import vmap
hparams = {
    "entry": "-m sweepax.train ppo",
    "args": [{ARGS}],
}
"""


def sweep_file(
    tmp_path: Path, args: str = '"env": "tmaze_5"', text: str | None = None, name="s.py"
):
    path = tmp_path / name
    path.write_text(
        textwrap.dedent(text if text is not None else GOOD.replace("{ARGS}", "{" + args + "}"))
    )
    return path


def error_of(path: Path) -> str:
    with pytest.raises(UserError) as err:
        load.load(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_load_classifies_list_vmap_and_joined_string(tmp_path):
    path = sweep_file(
        tmp_path,
        '"env": "tmaze_5", "lr": vmap([1e-3, 1e-4]), "lambda0": "0.1 0.5 0.9", '
        '"hidden_size": [32, 64], "seed": [1, 2], "vf_coeff": 1',
    )
    study = load.load(path)
    axes = {a.key: a for a in study.arg_sets[0]}
    assert axes["lr"] == load.Axis("lr", (1e-3, 1e-4), vmapped=True)
    assert axes["lambda0"] == load.Axis("lambda0", (0.1, 0.5, 0.9), vmapped=True)
    assert axes["hidden_size"] == load.Axis("hidden_size", (32, 64), vmapped=False)
    assert axes["seed"].vmapped is False and axes["seed"].values == (1, 2)
    assert axes["vf_coeff"].values == (1.0,) and isinstance(axes["vf_coeff"].values[0], float)
    assert study.name == "s"
    assert study.entry.name == "ppo"


def test_study_name_and_file_name_keys_of_the_original_files_are_accepted(tmp_path):
    text = """
    hparams = {
        "file_name": "runs_old.txt",
        "entry": "-m sweepax.train ppo",
        "args": [{"env": "tmaze_5", "study_name": "renamed", "steps_log_freq": 4,
                  "update_log_freq": 5, "platform": "gpu"}],
    }
    """
    study = load.load(sweep_file(tmp_path, text=text))
    assert study.name == "renamed"
    assert study.platform == "gpu"


def test_unknown_key_names_file_key_and_suggests_fix(tmp_path):
    msg = error_of(sweep_file(tmp_path, '"env": "tmaze_5", "hiden_size": 32'))
    assert "'hiden_size'" in msg and "did you mean 'hidden_size'" in msg


def test_vmapping_a_static_hyperparameter_is_refused_with_the_list_fix(tmp_path):
    msg = error_of(sweep_file(tmp_path, '"env": "tmaze_5", "hidden_size": vmap([32, 64])'))
    assert "'hidden_size' is static" in msg and "[32, 64]" in msg
    msg = error_of(sweep_file(tmp_path, '"env": "tmaze_5", "hidden_size": "32 64"'))
    assert "'hidden_size' is static" in msg and "Python list" in msg


def test_typo_in_env_is_refused_with_suggestion(tmp_path):
    msg = error_of(sweep_file(tmp_path, '"env": "tmaze10"'))
    assert "'env'" in msg and "tmaze_10" in msg


def test_wrong_type_is_refused(tmp_path):
    msg = error_of(sweep_file(tmp_path, '"env": "tmaze_5", "num_envs": 4.5'))
    assert "'num_envs'" in msg and "expected int" in msg
    msg = error_of(sweep_file(tmp_path, '"env": "tmaze_5", "lr": "0.1 fast"'))
    assert "'lr'" in msg and "'fast'" in msg


def test_file_without_hparams_is_refused(tmp_path):
    msg = error_of(sweep_file(tmp_path, text="x = 1\n"))
    assert "defines no `hparams`" in msg


def test_syntax_error_names_the_line(tmp_path):
    msg = error_of(sweep_file(tmp_path, text="hparams = {\n  'args': [\n"))
    assert "syntax error" in msg and f"{tmp_path / 's.py'}:" in msg


def test_wrong_entry_is_refused(tmp_path):
    text = 'hparams = {"entry": "-m pobax.algos.ppo_rnn", "args": [{"env": "tmaze_5"}]}'
    msg = error_of(sweep_file(tmp_path, text=text))
    assert "'entry'" in msg and "-m sweepax.train ppo" in msg


def test_unknown_exclude_key_is_refused(tmp_path):
    text = 'hparams = {"args": [{"env": "tmaze_5"}], "exclude": {"hidden": 64}}'
    msg = error_of(sweep_file(tmp_path, text=text))
    assert "exclude" in msg and "'hidden'" in msg


def test_write_jobs_cli_reports_one_line_exits_2_and_writes_nothing(tmp_path):
    good = sweep_file(tmp_path, '"env": "tmaze_5"', name="good.py")
    bad = sweep_file(tmp_path, '"env": "tmaze_5", "hidden_size": vmap([32, 64])', name="bad.py")
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweepax.sweep.write_jobs",
            str(good),
            str(bad),
            "--runs-dir",
            str(runs),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {bad}")
    assert not runs.exists()  # the good study is not written either: all or nothing


def plan_error(path: Path) -> str:
    """The one-line error of loading and planning ``path`` (names the file)."""
    from sweepax.sweep import plan

    with pytest.raises(UserError) as err:
        plan.plan(load.load(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ('"lr": vmap([1e-3, -1e-3])', "key 'lr': -0.001 must be greater than 0 (Adam"),
        ('"lr": float("nan")', "key 'lr': nan is not a finite number"),
        ('"vf_coeff": [0.5, float("inf")]', "key 'vf_coeff': inf is not a finite number"),
        ('"lambda0": "0.5 1.5"', "key 'lambda0': 1.5 must be between 0 and 1"),
        ('"lambda1": -0.5', "key 'lambda1': -0.5 must be between 0 and 1"),
        ('"ld_weight": vmap([0.5, 1.5])', "key 'ld_weight': 1.5 must be between 0 and 1"),
        ('"gamma": [0.99, 0.0]', "key 'gamma': 0.0 must be greater than 0 and at most 1"),
        ('"entropy_coeff": -0.01', "key 'entropy_coeff': -0.01 must be at least 0"),
        ('"clip_eps": 0', "key 'clip_eps': 0.0 must be greater than 0"),
        ('"max_grad_norm": vmap([0.5, 0.0])', "key 'max_grad_norm': 0.0 must be greater than 0"),
        (
            '"renderer": "opengl"',
            "key 'renderer': 'opengl' must be one of 'jax', 'warp', 'madrona'",
        ),
    ],
)
def test_values_outside_their_declared_range_are_refused_when_planning(tmp_path, args, message):
    msg = plan_error(sweep_file(tmp_path, '"env": "tmaze_5", ' + args))
    assert message in msg and msg.endswith("fix the sweep file")


def test_an_exclude_rule_that_matches_nothing_is_refused_with_the_values_that_exist(tmp_path):
    text = """
    hparams = {"args": [{"env": ["tmaze_5", "tmaze_10"], "hidden_size": [32, 64]}],
               "exclude": [{"env": "tmaze_10", "hidden_size": 64}, {"env": "tmaze_50"}]}
    """
    msg = plan_error(sweep_file(tmp_path, text=text))
    assert msg.endswith(
        "key 'exclude': rule {'env': 'tmaze_50'} matches no config of the sweep (its values: "
        "env: 'tmaze_10', 'tmaze_5'); fix the values or remove the rule"
    )
    # each value exists but the combination does not: still nothing dropped
    text = """
    hparams = {"args": [{"env": "tmaze_5", "hidden_size": 32}, {"env": "tmaze_10", "hidden_size": 64}],
               "exclude": {"env": "tmaze_5", "hidden_size": 64}}
    """  # noqa: E501
    msg = plan_error(sweep_file(tmp_path, text=text))
    assert "rule {'env': 'tmaze_5', 'hidden_size': 64} matches no config" in msg
    assert "(its values: env: 'tmaze_10', 'tmaze_5'; hidden_size: 32, 64)" in msg


@pytest.mark.parametrize("name", ["two\nlines", "a b", "x/y", ".hidden", "..", "semi;colon", 7])
def test_a_study_name_that_breaks_lines_folders_or_job_names_is_refused(tmp_path, name):
    text = f'hparams = {{"study_name": {name!r}, "args": [{{"env": "tmaze_5"}}]}}'
    msg = error_of(sweep_file(tmp_path, text=text))
    assert f"key 'study_name': {name!r} is not a usable study name: use letters, digits" in msg
    text = f'hparams = {{"args": [{{"env": "tmaze_5", "study_name": {name!r}}}]}}'
    assert "is not a usable study name" in error_of(sweep_file(tmp_path, text=text))


def test_a_file_stem_that_is_no_study_name_asks_for_study_name(tmp_path):
    msg = error_of(sweep_file(tmp_path, name="my study.py"))
    assert msg.endswith("(not starting with '.'); set 'study_name'")
    text = 'hparams = {"study_name": "my_study-v1.2+x", "args": [{"env": "tmaze_5"}]}'
    assert load.load(sweep_file(tmp_path, text=text, name="my study.py")).name == "my_study-v1.2+x"


@pytest.mark.parametrize("call", ["sys.exit()", "sys.exit(0)", "raise SystemExit(3)"])
def test_a_sweep_file_that_exits_is_refused_and_nothing_is_planned(tmp_path, call):
    text = f'import sys\nhparams = {{"args": [{{"env": "tmaze_5"}}]}}\n{call}\n'
    runs = tmp_path / "runs"
    path = sweep_file(tmp_path, text=text)
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.sweep.write_jobs", str(path), "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {path}: the file called sys.exit(")
    assert proc.stderr.strip().endswith("a sweep file only defines `hparams`: remove the exit")
    assert not runs.exists()
