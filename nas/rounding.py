"""Pure scaling primitives with the reference (TF EfficientNet) rounding rules."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

from .spec import ArchSpec, HeadSpec


def round_width(channels: int, multiplier: float = 1.0, divisor: int = 8) -> int:
    """Scale a channel count and round it to a multiple of `divisor`.

    max(divisor, int(v + divisor/2) // divisor * divisor), plus one divisor if
    that fell below 90 % of v. A multiplier of exactly 1 leaves the count as is.
    """
    if multiplier == 1.0:
        return int(channels)
    value = channels * multiplier
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def round_depth(repeats: int, multiplier: float = 1.0) -> int:
    """Scale a stage's block count, rounding up (ceil), never below one."""
    if multiplier == 1.0:
        return int(repeats)
    return max(1, int(math.ceil(repeats * multiplier)))


def round_resolution(resolution: float, multiple: int = 8) -> int:
    """Nearest multiple of `multiple` (at least one multiple)."""
    return max(multiple, int(round(resolution / multiple)) * multiple)


def resolution_multiple(base_resolution: int, multiple: int = 0) -> int:
    """The pixel multiple scaled resolutions round to: `multiple` when given (> 0), else one
    that keeps gamma ~ 1.1 expressible: 8 from 64 px up (the paper's), 4 from 32 px, 2 below.
    (With 8, gamma = 1.1 rounds a 16- or 32-px base back to itself, so "2x" points realise
    1.6-2.5x instead.)"""
    if multiple > 0:
        return multiple
    return 8 if base_resolution >= 64 else 4 if base_resolution >= 32 else 2


def scale_spec(spec: ArchSpec, *, depth: float = 1.0, width: float = 1.0,
               resolution: Optional[int] = None, dropout: Optional[float] = None,
               head_width: Optional[float] = None, name: Optional[str] = None,
               divisor: int = 8) -> ArchSpec:
    """Return `spec` grown (or shrunk) by depth and width multipliers.

    Stem and stage widths round with `round_width`; repeats with `round_depth`;
    the head with round_width(head * head_width), head_width defaulting to
    `width` (MobileNetV2 uses max(1, width) there: pass it).
    """
    if depth <= 0 or width <= 0:
        raise ValueError(f"depth and width multipliers must be positive, got {depth}, {width}")
    stages = tuple(replace(s, repeats=round_depth(s.repeats, depth),
                           out=round_width(s.out, width, divisor)) for s in spec.stages)
    head_multiplier = width if head_width is None else head_width
    head = HeadSpec(round_width(spec.head.channels, head_multiplier, divisor)
                    if spec.head.channels else 0)
    stem = replace(spec.stem, channels=round_width(spec.stem.channels, width, divisor))
    return spec.replace(
        name=name or spec.name,
        stem=stem, stages=stages, head=head,
        resolution=spec.resolution if resolution is None else int(resolution),
        dropout=spec.dropout if dropout is None else dropout,
    )
