"""Defer imports that gymnax makes at import time but a training task may never use.

``gymnax.environments`` imports every env module; Pong, Catch, FourRooms, MetaMaze and PointRobot
import ``matplotlib.pyplot`` (and Pong ``seaborn``, which pulls pandas and scipy.stats) for their
``render`` methods only: seconds of every training task's start-up. ``defer_plotting_imports``
puts a placeholder module in ``sys.modules`` for each; the first attribute looked up on it (a
render call, our own plots) imports the real module and the placeholder takes on its contents.

The packages ``gymnax`` and ``gymnax.environments`` get such a placeholder too: the T-Maze, POBAX's
envs and the other envs of sweepax import only ``gymnax.environments.environment`` and
``.spaces``, which then load alone, without the rest of gymnax's env zoo (a fifth of a second of
every task's start-up); anything else looked up on them (``gymnax.make``, a gymnax env class)
runs the package's own ``__init__`` first, as a plain import would have.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import typing as tp

DEFERRED = ("seaborn", "matplotlib.pyplot")
DEFERRED_PACKAGES = ("gymnax", "gymnax.environments")  # parents first


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is needed; a package's submodules
    are imported alone."""

    def __getattr__(self, attr: str) -> tp.Any:
        # Only called for attributes the placeholder lacks, i.e. before the real import.
        name = self.__name__
        path = self.__dict__.get("__path__")
        may_be_submodule = path and not attr.startswith("__")
        if may_be_submodule and importlib.machinery.PathFinder.find_spec(attr, path) is not None:
            return importlib.import_module(f"{name}.{attr}")  # sets it on the placeholder
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def _find_spec_without_importing(name: str) -> importlib.machinery.ModuleSpec | None:
    """``find_spec`` that does not import the parent package of a dotted ``name``."""
    parent, _, child = name.rpartition(".")
    if not parent:
        return importlib.util.find_spec(name)
    parent_spec = _find_spec_without_importing(parent)
    if parent_spec is None or not parent_spec.submodule_search_locations:
        return None
    spec = importlib.machinery.PathFinder.find_spec(child, parent_spec.submodule_search_locations)
    if spec is not None:
        spec.name = name
    return spec


def defer_plotting_imports() -> None:
    """Make ``DEFERRED`` modules and ``DEFERRED_PACKAGES`` lazy unless they are imported already
    or not installed."""
    for name in (*DEFERRED, *DEFERRED_PACKAGES):
        if name in sys.modules:
            continue
        spec = _find_spec_without_importing(name)
        if spec is None:
            continue
        placeholder = _Deferred(name)
        placeholder.__spec__ = spec
        if name in DEFERRED_PACKAGES and spec.submodule_search_locations is not None:
            placeholder.__path__ = list(spec.submodule_search_locations)
            placeholder.__file__ = spec.origin
            placeholder.__package__ = name
            placeholder.__loader__ = spec.loader
        sys.modules[name] = placeholder
