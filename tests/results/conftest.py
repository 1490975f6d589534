"""Synthetic task stores written through the real ``write_task_store`` (real zarr + xarray)."""

from __future__ import annotations

import itertools
import json
import typing as tp
from pathlib import Path

import numpy as np
import pytest

from sweepax.agents.config import TrainMetrics
from sweepax.results.store import write_task_store

PER_UPDATE = tuple(f for f in TrainMetrics._fields if not f.startswith("final_"))
FINAL = tuple(f for f in TrainMetrics._fields if f.startswith("final_"))
STATIC_LABELS = ["env", "memoryless", "double_critic", "hidden_size"]


def default_value(metric: str, labels: dict[str, tp.Any], seed: int, update: int) -> float:
    """A distinct, predictable number per cell: lets tests check values at labelled cells."""
    base = (
        labels["hidden_size"]
        + 1000 * labels["lr"]
        + 10 * labels["lambda0"]
        + 0.01 * seed
        + (5 if labels["env"] == "tmaze_10" else 0)
    )
    if metric.startswith("final_"):
        return base + (100 if "discounted" in metric else 200)
    return base + update + (0.5 if metric == "discounted_return" else 0)


def static_labels(env: str, hidden_size: int, memoryless: bool = False) -> dict[str, tp.Any]:
    """The labelled static hyperparameters of a synthetic task."""
    return {
        "env": env,
        "memoryless": memoryless,
        "double_critic": False,
        "hidden_size": hidden_size,
    }


class StoreFactory:
    """``make(task_id, env=..., hidden_size=..., lr=[...], lambda0=[...], seeds=[...])``."""

    value = staticmethod(default_value)

    def __init__(self, study_dir: Path):
        self.study_dir = study_dir
        self.manifest_tasks: list[dict[str, tp.Any]] = []

    def plan(
        self,
        task_id: str,
        env: str = "tmaze_5",
        hidden_size: int = 32,
        lr: tp.Sequence[float] = (1e-3, 1e-4),
        lambda0: tp.Sequence[float] = (0.5, 0.9),
        seeds: tp.Sequence[int] = (0, 1, 2),
        memoryless: bool = False,
    ) -> dict[str, tp.Any]:
        """Record the task in the manifest (runs/<study>.json format) without running it."""
        configs = [
            {"lr": a, "lambda0": b, "entropy_coeff": 0.01}
            for a, b in itertools.product(lr, lambda0)
        ]
        task = {
            "index": len(self.manifest_tasks),
            "task_id": task_id,
            "static": static_labels(env, hidden_size, memoryless),
            "configs": configs,
            "seeds": list(seeds),
        }
        self.manifest_tasks.append(task)
        return task

    def make(
        self,
        task_id: str,
        env: str = "tmaze_5",
        hidden_size: int = 32,
        lr: tp.Sequence[float] = (1e-3, 1e-4),
        lambda0: tp.Sequence[float] = (0.5, 0.9),
        seeds: tp.Sequence[int] = (0, 1, 2),
        n_update: int = 5,
        value: tp.Callable[..., float] = default_value,
        plan: bool = True,
        steps_per_update: int = 512,
        memoryless: bool = False,
    ) -> Path:
        """Plan (unless ``plan=False``) and write one task store; returns its path."""
        if plan:
            self.plan(task_id, env, hidden_size, lr, lambda0, seeds, memoryless)
        rows = list(itertools.product(lr, lambda0))
        static = {
            **static_labels(env, hidden_size, memoryless),
            "seed": seeds[0],
            "n_seeds": len(seeds),
        }
        metrics = {}
        for name in PER_UPDATE + FINAL:
            shape = (len(rows), len(seeds)) + (() if name in FINAL else (n_update,))
            arr = np.zeros(shape, np.float32)
            for c, (a, b) in enumerate(rows):
                labels = dict(static, lr=a, lambda0=b)
                for k, seed in enumerate(seeds):
                    if name in FINAL:
                        arr[c, k] = value(name, labels, seed, -1)
                    else:
                        arr[c, k] = [value(name, labels, seed, u) for u in range(n_update)]
            metrics[name] = arr
        vmapped = {
            "lr": [a for a, _ in rows],
            "lambda0": [b for _, b in rows],
            "entropy_coeff": [0.01] * len(rows),
        }
        attrs = {
            "study": self.study_dir.name,
            "task_id": task_id,
            "entry": "ppo",
            "static": static,
            "args": {**static, "lr": list(lr), "lambda0": list(lambda0)},
            "spec_path": f"hyperparams/tmaze/{self.study_dir.name}.py",
            "spec_hash": "sha256:0123abcd",
            "provenance": {"git_commit": "deadbeef", "dirty": False, "host": "test"},
            "hparams_static": STATIC_LABELS,
        }
        env_steps = steps_per_update * np.arange(1, n_update + 1)
        return write_task_store(self.study_dir, task_id, metrics, vmapped, seeds, env_steps, attrs)

    def write_manifest(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"study": self.study_dir.name, "tasks": self.manifest_tasks}))
        return path


@pytest.fixture
def stores(tmp_path: Path) -> StoreFactory:
    """A factory of synthetic stores in ``tmp_path/results/tmaze_ppo``."""
    return StoreFactory(tmp_path / "results" / "tmaze_ppo")


class CloseRace:
    """Final returns of a close race: ``A`` scores 10 in every seed, ``B`` 9, 9 and 12.3 (the
    highest mean, 10.1, but only by its third seed); every other config scores 0 (use it as a
    ``StoreFactory.make`` value with seeds 0, 1, 2)."""

    A = (32, 1e-3, 0.5)  # (hidden_size, lr, lambda0)
    B = (32, 1e-4, 0.9)
    T_975_2 = 4.302652729911275  # Student's t quantile 0.975 with 2 degrees of freedom

    @staticmethod
    def value(metric: str, labels: dict[str, tp.Any], seed: int, update: int) -> float:
        key = (labels["hidden_size"], labels["lr"], labels["lambda0"])
        if metric != "final_return":
            return 0.0
        if key == CloseRace.A:
            return 10.0
        if key == CloseRace.B:
            return (9.0, 9.0, 12.3)[seed]
        return 0.0


@pytest.fixture
def close_race() -> type[CloseRace]:
    """The ``CloseRace`` values and constants."""
    return CloseRace
