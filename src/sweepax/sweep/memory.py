"""Grids sized by memory: ``--max-vmap auto`` fits a task's device memory against its configs.

For each program of a study (one static setting), ``fit`` lowers and compiles the update program
a task runs (``SweepFn.update``: one chunk of updates, every config x seed vmapped) at
``FIT_CONFIGS`` configs x the task's seeds, reads XLA's ``memory_analysis()`` of each and fits
``bytes = intercept + slope * configs`` by least squares. A program's footprint is

    argument + output - alias + temp
      + (chunks - 1) x (output - alias)

``argument`` (runner state, swept values, update indices), ``output`` (runner state and the
chunk's metrics), ``alias`` (the runner state, donated: its output reuses the argument's buffers),
``temp`` (XLA's scratch); the last line is the metrics of the earlier chunks, which stay on the
device until the run ends. Memory depends on ``num_updates`` only through the chunk (metrics of
``ceil(num_updates / 20)`` updates), so the fit compiles the task's own update program; its
compile time does not grow with the number of updates (the updates are a ``lax.scan``). The
evaluation program (one rollout, no gradients) is not compiled: it is smaller than an update.

``split`` then caps each program's configs so that every task's estimate is at most
``MARGIN`` x the budget, and splits the program's configs into the fewest such tasks, of equal
size (within one). JAX is imported only here, and only when ``auto`` is asked.

The programs are compiled for the planning machine's default device: plan on the kind of device
the tasks will run on (a GPU's programs and buffers differ from the CPU's). Compiles go through
the tasks' persistent compilation cache, so planning a study again mostly traces.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import typing as tp

from sweepax.errors import UserError

AUTO = "auto"
MARGIN = 0.8  # a task's estimate may use this share of the budget (the rest: XLA's runtime, ...)
DEFAULT_DEVICE_MEMORY = 16 << 30  # when the device does not say (the CPU): 16 GiB
FIT_CONFIGS = (1, 2, 4)  # the grid sizes compiled for the fit (configs; seeds: the task's)
FIELDS = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
          "temp_size_in_bytes")  # fmt: skip
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS |= {f"{p}b": n for p, n in list(_UNITS.items()) if p not in ("", "b")}
_UNITS |= {f"{p}ib": 1 << (10 * (i + 1)) for i, p in enumerate("kmgt")}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-z]*)\s*$")


def parse_size(text: str, where: str = "--device-memory") -> int:
    """``80GiB``, ``512MiB``, ``1.5GB``, ``123456`` (bytes) -> bytes; ``UserError`` otherwise."""
    m = _SIZE.match(str(text).lower())
    if not m or m.group(2) not in _UNITS or float(m.group(1)) * _UNITS[m.group(2)] < 1:
        raise UserError(
            f"{where} {text!r}: not a memory size; give a number with a unit, e.g. 80GiB, "
            "512MiB or 16GB"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def max_vmap_arg(text: str) -> int | str:
    """``--max-vmap``'s value: ``auto`` or a whole number of configs (at least 1)."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        n = int(text)
    except ValueError:
        raise UserError(
            f"--max-vmap {text!r}: give a number of configs per task, or 'auto' to size tasks "
            "by device memory"
        ) from None
    if n < 1:
        raise UserError(f"--max-vmap {n}: must be at least 1")
    return n


def mib(n: float) -> str:
    """Bytes as ``12.3 MiB``."""
    return f"{n / (1 << 20):.1f} MiB"


def device_memory() -> tuple[int, str]:
    """``(bytes, source)``: the first local device's memory limit, else the default figure."""
    import jax

    device = jax.local_devices()[0]
    stats = device.memory_stats() or {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{device.device_kind} bytes_limit"
    return DEFAULT_DEVICE_MEMORY, f"default ({device.platform} reports no memory limit)"


@dataclasses.dataclass(frozen=True)
class Fit:
    """Device bytes of one program's task: ``intercept + slope * configs`` (its seeds fixed)."""

    seeds: int
    chunks: int  # update calls per run: the earlier chunks' metrics stay on the device
    measured: dict[int, int]  # configs -> footprint compiled
    analysis: dict[int, dict[str, int]]  # configs -> memory_analysis() fields (FIELDS)
    intercept: float
    slope: float

    def bytes(self, configs: int) -> int:
        """The estimated footprint of a task of ``configs`` configs."""
        return math.ceil(self.intercept + self.slope * configs)

    def max_configs(self, budget: float) -> int:
        """The most configs whose estimate is at most ``budget`` (0 if not even one)."""
        if self.bytes(1) > budget:
            return 0
        if self.slope <= 0:
            return 1 << 30
        n = max(1, math.floor((budget - self.intercept) / self.slope))
        while self.bytes(n) > budget:
            n -= 1
        return n

    def record(self) -> dict[str, tp.Any]:
        """What the manifest keeps of it."""
        return {
            "seeds": self.seeds,
            "chunks": self.chunks,
            "intercept_bytes": round(self.intercept),
            "bytes_per_config": round(self.slope),
            "measured_bytes": {str(c): b for c, b in self.measured.items()},
        }


def footprint(analysis: tp.Mapping[str, int], chunks: int) -> int:
    """Device bytes of a run from its update program's memory analysis (module docstring)."""
    arg, out, alias, temp = (analysis[f] for f in FIELDS)
    return arg + out - alias + temp + (chunks - 1) * (out - alias)


def update_analysis(entry_name: str, static: tp.Mapping[str, tp.Any], configs: int) -> dict:
    """Compile the update program of ``configs`` configs x ``static``'s seeds; its memory fields
    (``FIELDS``) and its number of chunks (``chunks``)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sweepax import entries

    entry = entries.get(entry_name)
    fn = entry.make_sweep_fn(entry.static_cls(**static))
    sweep = entry.sweep_cls(
        **{f.name: jax.ShapeDtypeStruct((configs,), jnp.float32) for f in entry.sweep_fields}
    )
    seeds = jax.ShapeDtypeStruct((static["n_seeds"],), jnp.int32)
    runner = fn.init.lower(sweep, seeds).out_info
    compiled = fn.update.lower(runner, sweep, np.arange(fn.chunk, dtype=np.int32)).compile()
    analysis = compiled.memory_analysis()
    return {
        **{f: int(getattr(analysis, f)) for f in FIELDS},
        "chunks": -(-fn.num_updates // fn.chunk),
    }


@functools.cache
def _use_compilation_cache() -> None:
    """The tasks' persistent compilation cache: planning a study again loads its programs.

    One CPU device: a task spreads its runs over one CPU device per core, all in the same host
    memory, so the memory of the whole grid on one device is what a task needs."""
    from sweepax import train

    train.set_up_jax(None, cpu_devices=False)


@functools.lru_cache(maxsize=64)
def _fit(entry_name: str, static_json: str) -> Fit:
    static = json.loads(static_json)
    _use_compilation_cache()
    analysis = {c: update_analysis(entry_name, static, c) for c in FIT_CONFIGS}
    chunks = analysis[FIT_CONFIGS[0]]["chunks"]
    for a in analysis.values():
        a.pop("chunks")
    measured = {c: footprint(a, chunks) for c, a in analysis.items()}
    xs, ys = list(measured), list(measured.values())
    x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - x_mean) ** 2 for x in xs
    )
    return Fit(static["n_seeds"], chunks, measured, analysis, y_mean - slope * x_mean, slope)


def fit(entry_name: str, static: tp.Mapping[str, tp.Any]) -> Fit:
    """The fit of one program (compiled once per process and static setting; the first seed's
    value does not change the program)."""
    return _fit(entry_name, json.dumps({**static, "seed": 0}, sort_keys=True))


@dataclasses.dataclass
class Sizer:
    """Caps a study's programs by memory: ``budget`` bytes of device memory, ``MARGIN`` of it."""

    entry_name: str
    where: str  # the sweep file, for messages
    budget: int
    source: str  # where the budget came from (--device-memory, the device, the default)
    margin: float = MARGIN
    fits: list[tuple[dict[str, tp.Any], Fit]] = dataclasses.field(default_factory=list)

    @property
    def usable(self) -> float:
        """Bytes a task may use."""
        return self.margin * self.budget

    def split(self, static: tp.Mapping[str, tp.Any], n: int) -> tuple[list[int], Fit]:
        """Sizes of the fewest equal tasks holding ``n`` configs of ``static``'s program."""
        f = fit(self.entry_name, static)
        key = {k: v for k, v in static.items() if k != "seed"}
        if not any(s == key for s, _ in self.fits):
            self.fits.append((key, f))
        cap = f.max_configs(self.usable)
        if cap < 1:
            raise UserError(
                f"{self.where}: --device-memory {mib(self.budget)}: one config x {f.seeds} seeds "
                f"of {static.get('env', 'this program')} needs about {mib(f.bytes(1))}, more than "
                f"{self.margin:g} of the budget; give a larger --device-memory or fewer seeds "
                "(n_seeds), or a smaller num_envs"
            )
        tasks = -(-n // cap)
        return [n // tasks + (i < n % tasks) for i in range(tasks)], f

    def record(self) -> dict[str, tp.Any]:
        """The study's record in the manifest: budget, margin, fields, one fit per program."""
        return {
            "device_memory_bytes": self.budget,
            "device_memory_source": self.source,
            "margin": self.margin,
            "budget_bytes": math.floor(self.usable),
            "estimate": "argument + output - alias + temp + (chunks - 1) x (output - alias) "
            "of the update program's memory_analysis()",
            "fit_configs": list(FIT_CONFIGS),
            "fits": [{"static": s, **f.record()} for s, f in self.fits],
        }


def sizer(entry_name: str, where: str, device_bytes: int | None) -> Sizer:
    """A ``Sizer`` for ``device_bytes`` (``--device-memory``), else the device's own memory."""
    if device_bytes is not None:
        if device_bytes < 1:
            raise UserError(f"--device-memory {device_bytes}: must be a positive size")
        return Sizer(entry_name, where, device_bytes, "--device-memory")
    return Sizer(entry_name, where, *device_memory())
