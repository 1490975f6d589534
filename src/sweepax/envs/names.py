"""Names of the MuJoCo bodies and renderers, for code that must not import ``mujoco``.

The registry (and so the planner) matches env ids against these names; ``mjx_envs`` and
``pixels`` build their bodies from them, so the names exist once.
"""

from __future__ import annotations

import re

# Locomotion bodies on MJX, as gymnasium names them: ids ``<Body>-v5`` and ``<Body>-v5-<F|P|V>``.
MJX_BODIES: tuple[str, ...] = ("Hopper", "Walker2d", "HalfCheetah", "Ant")

# Pixel id prefix -> its MJX body: ids ``<prefix>-pixels`` and ``<prefix>-pixels-<N>``.
PIXEL_BODIES: dict[str, str] = {body.lower(): body for body in MJX_BODIES}

# Pixel env ids: ``<prefix>-pixels`` or ``<prefix>-pixels-<N>``; groups: prefix, N (or None).
PIXEL_ID: re.Pattern[str] = re.compile("(" + "|".join(PIXEL_BODIES) + r")-pixels(?:-(\d+))?")

# Renderers of image envs: "jax" (MJX ray casting), "warp" (MJX's Warp batch renderer), both
# vmappable, or "madrona" (cannot vmap).
RENDERERS: tuple[str, ...] = ("jax", "warp", "madrona")
