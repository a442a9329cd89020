"""Per-stage refinement for equal-cost matching: one dimension of a net adjusted stage by stage
so its realised MACs land as near a target as that dimension allows.

A uniform width multiplier rounded to multiples of 8 jumps by 20-50 % on 16-40-channel nets;
choosing, per stage, the multiple of 8 just below or just above `channels x multiplier` fills
those gaps. Depth does the same with each stage's repeats (floor or ceil of `repeats x
multiplier`, never below 1), and resolution is matched in 1-px steps.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Sequence

from nas.claims import MATCH_TOLERANCE  # noqa: F401  (an equal-cost comparison: within 2 %)
from nas.counting import analytic_macs
from nas.spec import ArchSpec, HeadSpec

DIVISOR = 8

Choice = tuple[int, ...]


def widths_of(spec: ArchSpec) -> Choice:
    """(stem, every stage's out, head) channel counts; the head is 0 when the net has none."""
    return (spec.stem.channels, *(s.out for s in spec.stages), spec.head.channels)


def with_widths(spec: ArchSpec, widths: Sequence[int]) -> ArchSpec:
    """`spec` with the (stem, stages..., head) channel counts of `widths`."""
    stages = tuple(replace(s, out=int(w)) for s, w in zip(spec.stages, widths[1:-1]))
    return spec.replace(stem=replace(spec.stem, channels=int(widths[0])), stages=stages,
                        head=HeadSpec(int(widths[-1])))


def with_repeats(spec: ArchSpec, repeats: Sequence[int]) -> ArchSpec:
    """`spec` with each stage's repeats replaced by `repeats`."""
    return spec.replace(stages=tuple(replace(s, repeats=int(r)) for s, r in zip(spec.stages, repeats)))


def width_options(spec: ArchSpec, multiplier: float) -> list[tuple[int, ...]]:
    """Per element, the multiples of 8 just below and just above channels x multiplier (a head
    of 0 stays 0)."""
    options = []
    for c in widths_of(spec):
        if c == 0:
            options.append((0,))
            continue
        v = c * multiplier
        low = max(DIVISOR, int(math.floor(v / DIVISOR)) * DIVISOR)
        high = max(DIVISOR, int(math.ceil(v / DIVISOR)) * DIVISOR)
        options.append(tuple(sorted({low, high})))
    return options


def depth_options(spec: ArchSpec, multiplier: float) -> list[tuple[int, ...]]:
    """Per stage, the repeats from one below floor(repeats x multiplier) to one above its ceil
    (at least 1): a block is a large step on a shallow net, so depth needs the wider choice."""
    return [tuple(range(max(1, math.floor(s.repeats * multiplier) - 1), max(1, math.ceil(s.repeats * multiplier)) + 2))
            for s in spec.stages]


def refine(options: Sequence[Sequence[int]], start: Choice, build: Callable[[Choice], ArchSpec],
           target_macs: float, seen: dict[Choice, int]) -> Choice:
    """Greedy descent over per-element choices: from `start`, repeatedly take the one-element
    change that brings the realised MACs nearest `target_macs`, until none helps.

    Args:
        options: the allowed values of each element.
        start: the first choice (one value per element).
        build: choice -> spec.
        target_macs: the MACs to land on.
        seen: choice -> MACs, filled in as choices are counted (shared across calls).
    """
    def macs(choice: Choice) -> int:
        if choice not in seen:
            seen[choice] = analytic_macs(build(choice))
        return seen[choice]

    current = tuple(start)
    gap = abs(macs(current) - target_macs)
    while True:
        moves = [current[:i] + (v,) + current[i + 1:] for i, opts in enumerate(options)
                 for v in opts if v != current[i]]
        if not moves:
            return current
        best = min(moves, key=lambda c: abs(macs(c) - target_macs))
        if abs(macs(best) - target_macs) >= gap:
            return current
        current, gap = best, abs(macs(best) - target_macs)


def nearest_start(options: Sequence[Sequence[int]], exact: Sequence[float]) -> Choice:
    """Per element, the allowed value nearest the unrounded one."""
    return tuple(min(opts, key=lambda v: abs(v - x)) for opts, x in zip(options, exact))
