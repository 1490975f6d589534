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
