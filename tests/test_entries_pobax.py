"""A POBAX entry's task, trained for real: evaluation on num_eval_envs envs, the final parameters
kept in the store, the entry as written and the discount's source in its attributes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sweepax.errors import UserError
from sweepax.results import store

CHAIN = ["--env", "simple_chain", "--total_steps", "1024", "--num_steps", "32", "--num_envs", "4",
         "--hidden_size", "8", "--eval_steps", "10"]  # fmt: skip


def test_a_pobax_task_evaluates_on_its_eval_envs_and_keeps_its_parameters(tmp_path: Path):
    argv = ["ppo", "--study", "chain", "--entry_as_written", "-m pobax.algos.ppo", *CHAIN,
            "--num_eval_envs", "6", "--lr", "0.001", "0.01", "--n_seeds", "2",
            "--save_params"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "sweepax.train", *argv], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "results" / "chain").glob("*.zarr")

    # every simple_chain episode is 10 steps with reward 1 at its end: a 10-step evaluation ends
    # exactly one episode in each of the 6 evaluation envs
    ds = xr.open_zarr(path)
    assert (ds["final_episodes"].values == 6).all()
    np.testing.assert_allclose(ds["final_return"].values, 1.0)
    np.testing.assert_allclose(ds["final_discounted_return"].values, 0.99**9, rtol=1e-6)
    # the parameters are a group of their own: the metrics (what parse reads) are unchanged
    assert "final_params" not in ds and all("params" not in name for name in ds.data_vars)

    attrs = store.read_attrs(path)
    assert attrs["entry"] == "ppo" and attrs["entry_as_written"] == "-m pobax.algos.ppo"
    assert attrs["gamma_used"] == 0.99 and attrs["gamma_source"] == "sweep"
    assert attrs["static"]["num_eval_envs"] == 6

    params = xr.open_zarr(path, group=store.PARAMS_GROUP)
    assert list(params["lr"].values) == [0.001, 0.01]
    assert list(params["seed"].values) == [2024, 2025]
    assert len(params.data_vars) >= 4
    for name, var in params.data_vars.items():
        assert name.startswith("params.") and var.dims[:2] == ("config", "seed")
        assert var.dims[2:] == tuple(f"{name}.{d}" for d in range(var.ndim - 2))
        assert np.isfinite(var.values).all()
    kernel = next(v for n, v in params.data_vars.items() if n.endswith("kernel")).values
    assert not np.array_equal(kernel[0], kernel[1])  # another lr trained other parameters
    state = store.store_state(path, full=True)  # the group's files are in the checksums
    assert state.verified and any("final_params/" in f for f in attrs["files"])


def test_an_env_with_its_own_discount_overrides_the_sweeps_gamma():
    from sweepax.agents import ppo
    from sweepax.agents.config import PPOStatic

    tiny = dict(hidden_size=8, num_envs=4, num_steps=8, total_steps=64, gamma=0.99)
    assert ppo.make_trainer(PPOStatic(env="tmaze5", **tiny))[-2:] == (0.9, "env")  # its .POMDP
    assert ppo.make_trainer(PPOStatic(env="battleship_3", **tiny))[-2:] == (1.0, "env")
    assert ppo.make_trainer(PPOStatic(env="tmaze_5", **tiny))[-2:] == (0.99, "sweep")


def test_an_entry_as_written_that_runs_another_program_is_refused():
    from sweepax import train

    with pytest.raises(UserError, match="runs sweepax's 'transformer', not 'ppo'"):
        train.parse_task(["ppo", "--entry_as_written", "-m pobax.algos.transformer_xl"])
    with pytest.raises(UserError, match="is not a sweepax training program"):
        train.parse_task(["ppo", "--entry_as_written", "-m pobax.algos.dqn"])
