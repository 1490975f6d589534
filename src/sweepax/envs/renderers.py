"""Whether an image env's renderer can run here, told in one line before anything is built.

Renderers (``names.RENDERERS``): ``jax`` (MJX ray casting, in the lock, runs anywhere),
``warp`` (MJX's Warp batch renderer, warp-lang in the lock, CPU or NVIDIA GPU, vmappable) and
``madrona`` (the Madrona-MJX batch renderer: not on PyPI, unmaintained upstream, and its JAX
bridge needs jax < 0.6). A ``madrona`` study still plans anywhere, one task per config and seed
(``registry.vmappable``), because its tasks may run where Madrona-MJX is installed; a task that
starts where it is not stops here, before mujoco is imported or anything compiles.

Nothing here imports ``mujoco``, ``jax`` or ``madrona_mjx`` (Madrona-MJX is located, not
imported: its bridge fails to import under the jax this project locks).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

from sweepax.envs import names
from sweepax.errors import UserError

MADRONA_MODULE = "madrona_mjx"
WARP_MODULE = "warp"  # warp-lang: MJX's Warp implementation and batch renderer
# What a Madrona task uses instead, as a sweep file writes it.
MADRONA_INSTEAD = (
    'renderer: "warp" (MJX\'s Warp batch renderer, CPU or NVIDIA GPU, vmappable) or "jax" (MJX '
    "ray casting, runs anywhere, vmappable)"
)


def installed(module: str) -> bool:
    """Whether ``module`` can be found here (an entry in ``sys.modules`` counts), unimported."""
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def jax_version() -> str:
    """The installed jax's version, read from its metadata (jax is not imported)."""
    try:
        return importlib.metadata.version("jax")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def madrona_missing(env_id: str) -> str:
    """The one-line reason a ``madrona`` task cannot run where Madrona-MJX is not installed."""
    return (
        f"env {env_id!r}: renderer 'madrona' needs Madrona-MJX ({MADRONA_MODULE}), which is not "
        f"installed here (it is unmaintained upstream and its JAX bridge needs jax < 0.6; this "
        f"is jax {jax_version()}): use {MADRONA_INSTEAD}"
    )


def check(env_id: str, renderer: str) -> None:
    """Raise ``UserError`` (one line: why, and the renderer to use) unless ``renderer`` is known
    and can run here; ``env_id`` is an image env's id, named in the message."""
    if renderer not in names.RENDERERS:
        raise UserError(
            f"env {env_id!r}: renderer {renderer!r}: known renderers are "
            f"{', '.join(names.RENDERERS)}"
        )
    if renderer == "madrona" and not installed(MADRONA_MODULE):
        raise UserError(madrona_missing(env_id))
    if renderer == "warp" and not installed(WARP_MODULE):
        raise UserError(
            f"env {env_id!r}: renderer 'warp' needs warp-lang ({WARP_MODULE}), which is not "
            f'installed here: install the lock (requirements.lock) or use renderer: "jax"'
        )
