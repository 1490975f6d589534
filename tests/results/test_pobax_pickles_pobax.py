"""Our POBAX pickles against POBAX 0.0.1's own parse and best scripts, on one study.

POBAX's wheel ships no scripts; its sdist (``pobax-0.0.1.tar.gz``, fetched once into
``build/pobax-sdist``) has ``scripts/parse_batch_experiments.py`` and
``scripts/best_hyperparams_per_env.py``. They run in POBAX's venv (build/pobax-venv) on the study
written in POBAX's result format (orbax checkpoints, one per env), while sweepax parses the same
numbers from its own stores. The 0.0.1 scripts keep the older layout (one tensor for every env,
env last, one dim per hyperparameter, no ``fpaths``); POBAX's current scripts, which sweepax
follows, keep one entry per env and one config dim. So this compares what both say: per env and
config the per-update and final scores over ``[num_update, num_steps, seeds]`` (POBAX logs every
step of an update, sweepax one mean per update: means over ``num_steps`` agree), the winners,
``dim_ref``'s tail, ``envs`` and ``discounted``. Run with ``nox -s pobax_tests``.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from sweepax.results import pobax_pickles
from sweepax.results.best import run_best
from sweepax.results.parse import parse_study

from .conftest import StoreFactory, default_value

pytestmark = pytest.mark.pobax

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("parse_batch_experiments.py", "best_hyperparams_per_env.py")
ENVS = ("tmaze_5", "tmaze_10")
LRS, LAMBDAS, SEEDS, N_UPDATE = (1e-4, 1e-3), (0.5, 0.9), (0, 1), 3
STUDY = "pk_study"

# Runs in POBAX's venv: one orbax checkpoint per env, as POBAX's ppo saves it (argument_order,
# out.metric of shape (*train's hyperparameters, seed, update, step, env), out.final_eval_metric
# of shape (*..., seed, step, env), args), each cell holding the given numbers.
DRIVER = """
import json, sys
from pathlib import Path
import numpy as np
import orbax.checkpoint
from flax.training import orbax_utils
from pobax.config import PPOHyperparams
from pobax.utils.file_system import get_fn_from_module, get_inner_fn_arguments

job = json.loads(Path(sys.argv[1]).read_text())
train = get_fn_from_module(job["entry"], fn_name="make_train")
order = get_inner_fn_arguments(train, inner_fn_name="train")
values = {k: job["swept"].get(k, getattr(PPOHyperparams(), k)) for k in order if k != "rng"}
shape = tuple(len(v) for v in values.values()) + (job["n_seeds"],)
for env, cells in job["runs"].items():
    per_step = shape + (job["n_update"], job["n_steps"], job["n_envs"])
    eval_steps = shape + (8, job["n_envs"])
    arrays = {name: np.zeros(per_step if "final" not in name else eval_steps, np.float32)
              for name in ("episode_return", "discounted_return", "final_return",
                           "final_discounted_return")}
    for cell in cells:
        idx = tuple(values[k].index(cell[k]) if k in cell else 0 for k in values)
        idx += (cell["seed"],)
        for name, arr in arrays.items():
            value = np.asarray(cell[name], np.float32)
            arr[idx] = value if "final" in name else value[:, None, None]
    tree = {
        "argument_order": order,
        "out": {
            "metric": {
                "returned_episode_returns": arrays["episode_return"],
                "returned_discounted_episode_returns": arrays["discounted_return"],
            },
            "final_eval_metric": {
                "returned_episode": np.ones(eval_steps, bool),
                "returned_episode_returns": arrays["final_return"],
                "returned_discounted_episode_returns": arrays["final_discounted_return"],
            },
        },
        "args": {"env": env, "total_steps": job["total_steps"], "study_name": job["study"]},
    }
    path = (Path(job["out"]) / f"{env}_seed(0)_time(0)_run").resolve()
    save_args = orbax_utils.save_args_from_target(tree)
    orbax.checkpoint.PyTreeCheckpointer().save(path, tree, save_args=save_args)
"""

SWEEP = f"""lrs = {list(LRS)}
lambda0s = {list(LAMBDAS)}
hparams = {{
    "file_name": "runs_{STUDY}.txt",
    "entry": "-m pobax.algos.ppo",
    "args": [{{"env": {list(ENVS)}, "lr": "1e-4 1e-3", "lambda0": "0.5 0.9", "total_steps": 48}}],
}}
"""


def labels(env: str, lr: float, lambda0: float) -> dict:
    return {"env": env, "hidden_size": 32, "lr": lr, "lambda0": lambda0}


def job(out: Path) -> dict:
    """The study's numbers: the synthetic stores' values at every (env, config, seed, update)."""
    runs = {}
    for env in ENVS:
        runs[env] = []
        for lr in LRS:
            for lam in LAMBDAS:
                for seed in SEEDS:
                    at = labels(env, lr, lam)
                    cell = {"lr": lr, "lambda0": lam, "seed": seed}
                    for name in ("episode_return", "discounted_return"):
                        cell[name] = [default_value(name, at, seed, u) for u in range(N_UPDATE)]
                    for name in ("final_return", "final_discounted_return"):
                        cell[name] = default_value(name, at, seed, -1)
                    runs[env].append(cell)
    return {
        "entry": "-m pobax.algos.ppo",
        "swept": {"lr": list(LRS), "lambda0": list(LAMBDAS)},
        "n_seeds": len(SEEDS),
        "n_update": N_UPDATE,
        "n_steps": 4,
        "n_envs": 2,
        "total_steps": 48,
        "study": STUDY,
        "out": str(out),
        "runs": runs,
    }


@pytest.fixture(scope="module")
def theirs(tmp_path_factory, pobax_python, pobax_sdist) -> dict:
    """POBAX's parsed and best pickles (undiscounted and discounted) of the study."""
    root = tmp_path_factory.mktemp("pobax_root")
    scripts, results = root / "scripts", root / "results" / STUDY
    (scripts / "hyperparams").mkdir(parents=True)
    results.mkdir(parents=True)
    with tarfile.open(pobax_sdist) as tar:
        for name in SCRIPTS:
            member = tar.extractfile(f"pobax-0.0.1/scripts/{name}")
            (scripts / name).write_bytes(member.read())
    # the scripts find ROOT_DIR/scripts/hyperparams/<study>.py through `from definitions import`
    (root / "definitions.py").write_text(
        "import os\nROOT_DIR = os.path.dirname(os.path.abspath(__file__))\n"
    )
    (scripts / "hyperparams" / f"{STUDY}.py").write_text(SWEEP)
    (root / "job.json").write_text(json.dumps(job(results)))
    (root / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(root), "JAX_PLATFORMS": "cpu"}

    def run(*argv: str) -> None:
        proc = subprocess.run(
            [pobax_python, *argv], cwd=scripts, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-3000:]

    run(str(root / "driver.py"), str(root / "job.json"))
    out = {}
    for discounted in (False, True):
        flag = ["--discounted"] if discounted else []
        run(SCRIPTS[0], str(results), *flag)
        parsed = results / pobax_pickles.parsed_name(discounted)
        run(SCRIPTS[1], str(parsed))
        best = results / pobax_pickles.best_name(discounted)
        out["parsed", discounted] = pickle.loads(parsed.read_bytes())
        out["best", discounted] = pickle.loads(best.read_bytes())
    return out


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict:
    """sweepax's parsed and best pickles of the same numbers, from its own stores."""
    stores = StoreFactory(tmp_path_factory.mktemp("sweepax") / "results" / STUDY)
    for env in ENVS:
        stores.make(env, env=env, lr=LRS, lambda0=LAMBDAS, seeds=SEEDS, n_update=N_UPDATE)
    console = Console(file=io.StringIO())
    parse_study(stores.study_dir, progress=False, console=console)
    out = {}
    for discounted in (False, True):
        run_best([stores.study_dir], "auc", discounted, stores.study_dir.parent, console=console,
                 progress=False, n_resamples=1000)  # fmt: skip
        names = {"parsed": pobax_pickles.parsed_name, "best": pobax_pickles.best_name}
        for kind, name in names.items():
            path = stores.study_dir / name(discounted)
            out[kind, discounted] = pickle.loads(path.read_bytes())
    return out


def their_config(parsed: dict, swept: dict, i: int) -> tuple:
    """POBAX's index of our config ``i`` along its hyperparameter dims (all but the last three)."""
    names = parsed["dim_ref"][:-3]
    values = parsed["swept_hparams"]
    return tuple(values[n].index(swept[n][i]) if n in swept else 0 for n in names)


@pytest.mark.parametrize("discounted", [False, True])
def test_parsed_scores_agree_with_pobax_parse(theirs, ours, discounted):
    their, our = theirs["parsed", discounted], ours["parsed", discounted]
    assert sorted(their["envs"]) == sorted(our["envs"]) == sorted(ENVS)
    assert their["dim_ref"][-3:] == our["dim_ref"][1:] == ["num_update", "num_steps", "seeds"]
    assert their["discounted"] is our["discounted"] is discounted
    for env in our["envs"]:
        e = their["envs"].index(env)
        swept = our["swept_hyperparams"][env]
        block = our["scores"][env]
        assert len(swept["lr"]) == block["scores"].shape[0] == len(LRS) * len(LAMBDAS)
        for i in range(block["scores"].shape[0]):
            at = their_config(their, swept, i)
            curve = their["scores"][at][..., e]  # (num_update, num_steps, seeds)
            assert curve.shape[0] == block["scores"].shape[1] == N_UPDATE
            assert curve.shape[2] == block["scores"].shape[3] == len(SEEDS)
            ours_mean = block["scores"][i].mean(axis=1)
            np.testing.assert_allclose(ours_mean, curve.mean(axis=1), rtol=1e-6)
            final = their["final_scores"][at][..., e]  # (1, 1, seeds)
            assert final.shape == block["final_scores"][i].shape == (1, 1, len(SEEDS))
            np.testing.assert_allclose(block["final_scores"][i], final, rtol=1e-6)


@pytest.mark.parametrize("discounted", [False, True])
def test_best_agrees_with_pobax_best(theirs, ours, discounted):
    their, our = theirs["best", discounted], ours["best", discounted]
    assert set(our) == set(their) | {"fpaths"}  # POBAX's current best script adds fpaths
    assert their["dim_ref"] == our["dim_ref"] == ["num_update", "num_steps", "seeds"]
    assert sorted(their["envs"]) == sorted(our["envs"]) and their["discounted"] is discounted
    assert our["discounted"] is discounted
    for env in our["envs"]:
        e = their["envs"].index(env)
        for name in ("lr", "lambda0"):
            assert our["hyperparams"][env][name] == pytest.approx(their["hyperparams"][env][name])
        curve = their["scores"][..., e]  # (num_update, num_steps, seeds)
        assert our["scores"][env].shape == (N_UPDATE, 1, len(SEEDS))
        np.testing.assert_allclose(our["scores"][env].mean(axis=1), curve.mean(axis=1), rtol=1e-6)
