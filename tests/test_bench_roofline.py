"""The roofline bench's kernel counts, read from a compiled program's HLO text."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import roofline  # noqa: E402

# The shape of ``compiled.as_text()``: a loop of 3 trips (body: 2 kernels, one of them a fusion
# with a tuple result; condition: 1) inside a call, a loop of 5 trips (body: 1 kernel and a
# nested loop of 2 trips of 1 kernel; condition: 1), and 2 kernels of the entry itself. ``Tn``
# stands for the loop's backend_config with its known trip count n.
HLO_TEXT = """\
HloModule jit_run, is_scheduled=true

%cond.a (p.0: (s32[], f32[4])) -> pred[] {
  %p.0 = (s32[], f32[4]{0}) parameter(0)
  %gte.0 = s32[] get-tuple-element(%p.0), index=0
  %constant.0 = s32[] constant(3)
  ROOT %compare.0 = pred[] compare(%gte.0, %constant.0), direction=LT
}

%body.a (p.1: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p.1 = (s32[], f32[4]{0}) parameter(0)
  %gte.1 = f32[4]{0} get-tuple-element(%p.1), index=1
  %gte.2 = s32[] get-tuple-element(%p.1), index=0
  %pair_fusion = (f32[4]{0}, s32[]) fusion(%gte.1, %gte.2), kind=kLoop, calls=%fused.1
  %gte.3 = f32[4]{0} get-tuple-element(%pair_fusion), index=0
  %copy.1 = f32[4]{0} copy(%gte.3)
  %bitcast.1 = f32[4]{0} bitcast(%copy.1)
  ROOT %tuple.1 = (s32[], f32[4]{0}) tuple(%gte.2, %bitcast.1)
}

%while.a_computation (t.0: (s32[], f32[4])) -> (s32[], f32[4]) {
  %t.0 = (s32[], f32[4]{0}) parameter(0)
  ROOT %while.a = (s32[], f32[4]{0}) while(%t.0), condition=%cond.a, body=%body.a, backend_config=T3
}

%cond.b (p.2: (s32[], f32[4])) -> pred[] {
  %p.2 = (s32[], f32[4]{0}) parameter(0)
  %gte.4 = s32[] get-tuple-element(%p.2), index=0
  %constant.1 = s32[] constant(5)
  ROOT %compare.1 = pred[] compare(%gte.4, %constant.1), direction=LT
}

%cond.c (p.3: (s32[], f32[4])) -> pred[] {
  %p.3 = (s32[], f32[4]{0}) parameter(0)
  %gte.5 = s32[] get-tuple-element(%p.3), index=0
  %constant.2 = s32[] constant(2)
  ROOT %compare.2 = pred[] compare(%gte.5, %constant.2), direction=LT
}

%body.c (p.4: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p.4 = (s32[], f32[4]{0}) parameter(0)
  %gte.6 = f32[4]{0} get-tuple-element(%p.4), index=1
  %gte.7 = s32[] get-tuple-element(%p.4), index=0
  %add_fusion = f32[4]{0} fusion(%gte.6), kind=kLoop, calls=%fused.2
  ROOT %tuple.2 = (s32[], f32[4]{0}) tuple(%gte.7, %add_fusion)
}

%body.b (p.5: (s32[], f32[4])) -> (s32[], f32[4]) {
  %p.5 = (s32[], f32[4]{0}) parameter(0)
  %gte.8 = f32[4]{0} get-tuple-element(%p.5), index=1
  %gte.9 = s32[] get-tuple-element(%p.5), index=0
  %mul_fusion = f32[4]{0} fusion(%gte.8), kind=kLoop, calls=%fused.3
  %t.3 = (s32[], f32[4]{0}) tuple(%gte.9, %mul_fusion)
  ROOT %while.c = (s32[], f32[4]{0}) while(%t.3), condition=%cond.c, body=%body.c, backend_config=T2
}

ENTRY %main.1 (x.1: f32[4]) -> f32[4] {
  %x.1 = f32[4]{0} parameter(0)
  %copy.2 = f32[4]{0} copy(%x.1)
  %constant.3 = s32[] constant(0)
  %tuple.4 = (s32[], f32[4]{0}) tuple(%constant.3, %copy.2)
  %call.1 = (s32[], f32[4]{0}) call(%tuple.4), to_apply=%while.a_computation
  %while.b = (s32[], f32[4]{0}) while(%call.1), condition=%cond.b, body=%body.b, backend_config=T5
  %gte.10 = f32[4]{0} get-tuple-element(%while.b), index=1
  ROOT %neg_fusion = f32[4]{0} fusion(%gte.10), kind=kLoop, calls=%fused.4
}
"""
HLO = re.sub(r"=T(\d+)", r'={"known_trip_count":{"n":"\1"}}', HLO_TEXT)


def test_launches_count_each_loop_body_and_condition_per_trip_and_follow_calls():
    # loop a: 3 x (2 + 1) + the exit test 1 = 10; inner loop c: 2 x (1 + 1) + 1 = 5;
    # loop b: 5 x (1 + 5 + 1) + 1 = 36; the entry's copy and negation: 2
    assert roofline.launches(HLO) == 10 + 36 + 2


def test_loop_kernels_are_the_body_of_the_loop_with_that_trip_count():
    assert roofline.loop_kernels(HLO, 3) == 2  # the tuple-result fusion counts
    assert roofline.loop_kernels(HLO, 2) == 1
    assert roofline.loop_kernels(HLO, 7) == 0


def test_launches_of_a_compiled_scan_grow_with_its_trip_count():
    def program(steps: int):
        def body(x, _):
            return jnp.sin(x) * 2.0, x.sum()

        return jax.jit(lambda x: jax.lax.scan(body, x, None, length=steps))

    x = jnp.ones(4)
    short, long = (program(n).lower(x).compile().as_text() for n in (3, 13))
    per_trip = (roofline.launches(long) - roofline.launches(short)) / 10
    assert per_trip == roofline.loop_kernels(long, 13) + 1 >= 2  # body + condition


COND_HLO = """\
HloModule jit_pick, is_scheduled=true

%one (a.0: f32[4]) -> f32[4] {
  %a.0 = f32[4]{0} parameter(0)
  ROOT %neg_fusion.1 = f32[4]{0} fusion(%a.0), kind=kLoop, calls=%fused.5
}

%two (a.1: f32[4]) -> f32[4] {
  %a.1 = f32[4]{0} parameter(0)
  %exp_fusion = f32[4]{0} fusion(%a.1), kind=kLoop, calls=%fused.6
  ROOT %copy.3 = f32[4]{0} copy(%exp_fusion)
}

ENTRY %main.2 (i.1: s32[], x.2: f32[4]) -> f32[4] {
  %i.1 = s32[] parameter(0)
  %x.2 = f32[4]{0} parameter(1)
  ROOT %cond.1 = f32[4]{0} conditional(%i.1, %x.2, %x.2), branch_computations={%one, %two}
}
"""


def test_a_conditional_counts_itself_and_its_costliest_branch():
    assert roofline.launches(COND_HLO) == 1 + 2
