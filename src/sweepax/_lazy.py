"""Defer plotting imports that gymnax makes at import time but only uses to render.

``gymnax.environments`` imports every env module; Pong, Catch, FourRooms, MetaMaze and PointRobot
import ``matplotlib.pyplot`` (and Pong ``seaborn``, which pulls pandas and scipy.stats) for their
``render`` methods only: seconds of every training task's start-up. ``defer_plotting_imports``
puts a placeholder module in ``sys.modules`` for each; the first attribute looked up on it (a
render call, our own plots) imports the real module and the placeholder takes on its contents.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
import typing as tp

DEFERRED = ("seaborn", "matplotlib.pyplot")


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is needed."""

    def __getattr__(self, attr: str) -> tp.Any:
        # Only called for attributes the placeholder lacks, i.e. before the real import.
        name = self.__name__
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
    """Make ``DEFERRED`` modules lazy unless they are imported already or not installed."""
    for name in DEFERRED:
        if name in sys.modules:
            continue
        spec = _find_spec_without_importing(name)
        if spec is None:
            continue
        placeholder = _Deferred(name)
        placeholder.__spec__ = spec
        sys.modules[name] = placeholder
