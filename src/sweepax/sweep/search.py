"""Which configs of a program's vmapped grid run, and in how many tasks: POBAX's search keys.

An ``args`` dict may say how its vmapped grid (the Cartesian product of its vmapped values, one
grid per program) becomes configs:

- ``sweep_type: 'grid'`` (default): every config of the grid;
- ``sweep_type: 'random'`` with ``n_random_hparams: n``: a random sample of n distinct configs,
  drawn with ``random.Random(seed)``, where ``seed`` is the program's first seed (``seed``, as in
  POBAX, where each job samples with its own seed); the same file always plans the same sample;
- ``n_run_bins: k`` with ``run_bin_idx: i`` (or a list of them): the configs, in POBAX's order
  (the product of the vmapped keys sorted by name, the last varying fastest; a random sample
  first), cut into k equal consecutive bins; bin i becomes its own task (POBAX runs bin i as one
  job). Several indices: one task per bin.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import typing as tp

from sweepax.errors import UserError

SWEEP_TYPES = ("grid", "random")
KEYS = ("sweep_type", "n_random_hparams", "n_run_bins", "run_bin_idx")


@dataclasses.dataclass(frozen=True)
class Search:
    """How one ``args`` dict's vmapped grid becomes configs (see the module docstring)."""

    sweep_type: str = "grid"
    n_random: int = 1  # configs sampled per program (sweep_type random)
    n_bins: int | None = None  # None: the configs are not cut into bins
    bins: tuple[int, ...] = (0,)  # the bins planned (n_bins given)

    @property
    def active(self) -> bool:
        """Whether this changes anything: a random sample or bins."""
        return self.sweep_type == "random" or self.n_bins is not None

    def select(
        self, rows: tp.Iterable[dict[str, tp.Any]], seed: int, where: str
    ) -> list[tuple[tp.Iterable[dict[str, tp.Any]], dict[str, tp.Any] | None]]:
        """``rows`` (a program's full vmapped grid, row-major in the file's key order) ->
        ``[(configs, record)]``: one entry per task-to-be, ``record`` the manifest's account of
        the choice (None for a plain grid, whose ``rows`` pass through unread)."""
        if not self.active:
            return [(rows, None)]
        rows = list(rows)
        order = pobax_order(rows)
        record: dict[str, tp.Any] = {"sweep_type": self.sweep_type, "grid_size": len(rows)}
        if self.sweep_type == "random":
            if self.n_random > len(rows):
                raise UserError(
                    f"{where}: key 'n_random_hparams': {self.n_random} is more than the "
                    f"{len(rows)} configs of the grid; sample at most {len(rows)}"
                )
            picked = sorted(random.Random(seed).sample(range(len(order)), self.n_random))
            order = [order[p] for p in picked]  # the sample, kept in POBAX's order
            record.update(n_random_hparams=self.n_random, seed=seed)
        if self.n_bins is None:
            return [([rows[i] for i in order], {**record, "grid_index": order})]
        if not 1 <= self.n_bins < len(order) or len(order) % self.n_bins:
            raise UserError(
                f"{where}: key 'n_run_bins': {self.n_bins} does not cut {len(order)} configs "
                f"into equal bins of at least 2 (as POBAX requires); use a divisor of "
                f"{len(order)} below it"
            )
        size = len(order) // self.n_bins
        out = []
        for b in self.bins:
            index = order[b * size : (b + 1) * size]
            out.append(
                (
                    [rows[i] for i in index],
                    {**record, "n_run_bins": self.n_bins, "run_bin_idx": b, "grid_index": index},
                )
            )
        return out


def pobax_order(rows: tp.Sequence[tp.Mapping[str, tp.Any]]) -> list[int]:
    """Indices of ``rows`` (a row-major product in the file's key order) in POBAX's order: the
    product of the same values with the keys sorted by name, the last key varying fastest."""
    if not rows:
        return []
    keys = list(rows[0])
    values = {k: list(dict.fromkeys(r[k] for r in rows)) for k in keys}
    position = {tuple(r[k] for k in keys): i for i, r in enumerate(rows)}
    names = sorted(keys)
    out = []
    for combo in itertools.product(*(values[k] for k in names)):
        row = dict(zip(names, combo, strict=True))
        out.append(position[tuple(row[k] for k in keys)])
    return out


def _int(value: tp.Any, key: str, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{where}: key {key!r}: {value!r}; give an integer of at least {low}")
    return value


def parse(args: tp.Mapping[str, tp.Any], where: str) -> Search:
    """The search keys of one ``args`` dict (absent: a plain grid); a one-line ``UserError``
    naming the key for a bad value."""
    sweep_type = args.get("sweep_type", "grid")
    if sweep_type not in SWEEP_TYPES:
        raise UserError(f"{where}: key 'sweep_type': {sweep_type!r}; use 'grid' or 'random'")
    if "n_random_hparams" in args and sweep_type != "random":
        raise UserError(
            f"{where}: key 'n_random_hparams' applies only to sweep_type 'random'; add "
            "'sweep_type': 'random' or remove it"
        )
    n_random = _int(args.get("n_random_hparams", 1), "n_random_hparams", where, 1)
    n_bins = args.get("n_run_bins")
    if n_bins is None:
        if "run_bin_idx" in args:
            raise UserError(
                f"{where}: key 'run_bin_idx' needs 'n_run_bins' (how many bins); add it or "
                "remove run_bin_idx"
            )
        return Search(sweep_type, n_random)
    n_bins = _int(n_bins, "n_run_bins", where, 1)
    raw = args.get("run_bin_idx", 0)
    raw = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not raw:
        raise UserError(f"{where}: key 'run_bin_idx': empty list; give at least one bin")
    bins = tuple(dict.fromkeys(_int(b, "run_bin_idx", where, 0) for b in raw))
    if too_big := [b for b in bins if b >= n_bins]:
        raise UserError(
            f"{where}: key 'run_bin_idx': {too_big[0]} is not a bin of n_run_bins={n_bins}; "
            f"use 0 to {n_bins - 1}"
        )
    return Search(sweep_type, n_random, n_bins, bins)
