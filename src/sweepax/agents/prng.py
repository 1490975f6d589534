"""JAX's threefry random bits on a CPU, unrolled.

On a CPU, JAX lowers each ``threefry2x32`` hash (every ``split``, ``uniform``, ``categorical``)
as a ``while`` loop over its five groups of rounds, which keeps compiles small. A PPO rollout
draws a few keys per env step, each a small hash inside the step's own loop, and there the
loop's per-iteration cost is most of the hash. ``unroll_threefry_on_cpu`` lowers the hash on CPU
the way JAX lowers it on accelerators, as straight-line code: the same 20 rounds on the same
integers, so the same bits, in less time and less compile time.
"""

from __future__ import annotations


def unroll_threefry_on_cpu() -> bool:
    """Register JAX's unrolled ``threefry2x32`` lowering for the CPU platform (process-wide).

    Returns whether it is registered; False (JAX's default lowering stays) if this JAX
    version keeps the hash elsewhere. Affects programs lowered after the call.
    """
    try:
        from jax._src.interpreters import mlir
        from jax._src.random import threefry2x32
    except ImportError:
        return False
    rule = getattr(threefry2x32, "_threefry2x32_lowering_rule", None)
    primitive = getattr(threefry2x32, "threefry2x32_p", None)
    if rule is None or primitive is None:
        return False
    mlir.register_lowering(primitive, rule, platform="cpu")
    return True


__all__ = ["unroll_threefry_on_cpu"]
