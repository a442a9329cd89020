"""Single-dimension scaling (the paper's Figure 3 / Table 3): depth, width or resolution only,
each solved for the multiplier whose realised MACs land nearest a target ratio."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace
from typing import Iterator

import numpy as np

from nas.counting import analytic_macs
from nas.rounding import scale_spec
from nas.spec import ArchSpec

from .coefficients import CoefficientError
from .matching import (MATCH_TOLERANCE, depth_options, nearest_start, refine, width_options,
                       widths_of, with_repeats, with_widths)

DIMENSIONS = ("depth", "width", "resolution")


@dataclass(frozen=True)
class SingleScaled:
    """One target of single-dimension scaling and the net chosen for it.

    Attributes:
        dimension: depth, width or resolution.
        target_ratio: the MACs ratio to the base that was asked for.
        multiplier: the dimension's multiplier of the chosen net (for resolution: new / base).
        realised_ratio: the chosen net's MACs over the base's.
        below: the nearest achievable ratio at or below the target (0.0 when none).
        above: the nearest achievable ratio at or above the target (inf when none).
        spec: the chosen net.
    """

    dimension: str
    target_ratio: float
    multiplier: float
    realised_ratio: float
    below: float   # nearest achievable ratio at or below the target
    above: float   # nearest achievable ratio at or above the target
    spec: ArchSpec

    @property
    def error_pct(self) -> float:
        """How far the realised ratio misses the target, in percent of the target."""
        return (self.realised_ratio / self.target_ratio - 1) * 100

    @property
    def matched(self) -> bool:
        """True when the realised MACs are within MATCH_TOLERANCE (2 %) of the target: an
        equal-cost comparison may use this net; otherwise it is "unequal cost"."""
        return abs(self.realised_ratio / self.target_ratio - 1) <= MATCH_TOLERANCE


def parse_targets(text: str) -> list[float]:
    """'2x,4x,0.5x' -> [2.0, 4.0, 0.5].

    Args:
        text: the --targets value: positive MACs ratios, comma-separated, 'x' optional.
    """
    try:
        values = [float(t.strip().rstrip("xX")) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise CoefficientError(f"cannot read --targets {text!r}; write MACs ratios such as 2x,4x,0.5x")
    return values


def _candidates(base: ArchSpec, dimension: str, max_ratio: float) -> Iterator[tuple[float, ArchSpec]]:
    """Every distinct realisation of one dimension over a fine uniform-multiplier sweep
    (resolution: every pixel size)."""
    if dimension == "resolution":
        top = int(base.resolution * np.sqrt(max_ratio) * 1.3) + 8
        for r in range(8, top + 1):
            yield r / base.resolution, base.replace(resolution=r)
        return
    if dimension == "depth":
        grid = np.arange(0.05, max_ratio * 1.5 + 0.1, 0.01)
    else:
        grid = np.arange(0.05, np.sqrt(max_ratio) * 1.5 + 0.1, 0.005)
    seen = set()
    for m in grid:
        spec = scale_spec(base, **{dimension: float(round(m, 4))})
        key = spec.canonical_string()
        if key not in seen:
            seen.add(key)
            yield float(round(m, 4)), spec


def _resolutions_near(base: ArchSpec, target: float, base_macs: int) -> list:
    """(multiplier, spec, ratio) of every pixel size within ±15 % of base x sqrt(target)
    (MACs grow with the square of the input size)."""
    centre = base.resolution * np.sqrt(target)
    low, high = max(8, int(centre * 0.85)), int(centre * 1.15) + 2
    return [(r / base.resolution, spec, analytic_macs(spec) / base_macs)
            for r in range(low, high + 1) for spec in [base.replace(resolution=r)]]


def _per_stage(base: ArchSpec, dimension: str, m: float, target_macs: float,
               seen: dict) -> tuple[int, ArchSpec]:
    """(MACs, spec) after choosing each stage's rounding (width) or repeats (depth) around the
    uniform multiplier m to land nearest `target_macs`."""
    if dimension == "width":
        options, exact = width_options(base, m), [c * m for c in widths_of(base)]
        build = lambda choice: with_widths(base, choice)  # noqa: E731
    else:
        options, exact = depth_options(base, m), [s.repeats * m for s in base.stages]
        build = lambda choice: with_repeats(base, choice)  # noqa: E731
    choice = refine(options, nearest_start(options, exact), build, target_macs, seen)
    return seen[choice], build(choice)


def _solve(base: ArchSpec, dimension: str, options: list, target: float, base_macs: int) -> tuple:
    """(multiplier, spec, realised ratio, every ratio tried) nearest one target ratio."""
    ranked = sorted(options, key=lambda o: abs(o[2] - target))
    tried = [r for _, _, r in options]
    best = ranked[0]
    if dimension != "resolution":
        seen: dict = {}
        for m, _, _ in ranked[:3]:  # refine from the three nearest uniform multipliers
            macs, spec = _per_stage(base, dimension, m, target * base_macs, seen)
            if abs(macs / base_macs - target) < abs(best[2] - target):
                best = (m, spec, macs / base_macs)
        tried += [macs / base_macs for macs in seen.values()]
    return (*best, np.array(tried))


def scale_single(base: ArchSpec, dimension: str, targets: list[float]) -> list[SingleScaled]:
    """Per target MACs ratio, the one-dimension net whose realised MACs land closest to it.

    Depth and width are first swept in fine uniform-multiplier steps; from the three
    multipliers landing nearest, each stage's width rounding (the multiple of 8 below or
    above) or repeats (floor or ceil) is then chosen greedily to land nearer still
    (`scaling.matching`). Resolution is swept in 1-px steps. Each result records the
    achievable neighbours of its target among everything tried; `matched` says whether it
    is within MATCH_TOLERANCE (2 %).

    Args:
        base: the net to grow (or shrink).
        dimension: depth, width or resolution.
        targets: MACs ratios to the base (e.g. 2.0, 4.0, 0.5).

    Returns:
        one SingleScaled per target, in order, named <base>-<dimension><target>x; `multiplier`
        is the uniform multiplier the chosen net was refined from (for resolution: new / base).
    """
    if dimension not in DIMENSIONS:
        raise CoefficientError(f"unknown dimension {dimension!r}; choose one of {', '.join(DIMENSIONS)}")
    base_macs = analytic_macs(base)
    power = 2 if dimension == "width" else 1  # MACs grow about as m^2 (width) or m (depth)
    low, high = (min(targets) * 0.4) ** (1 / power), (max(targets) * 2.5) ** (1 / power)
    sweep = [] if dimension == "resolution" else [
        (m, spec, analytic_macs(spec) / base_macs) for m, spec in _candidates(base, dimension, max(targets))
        if low <= m <= high]
    results = []
    for target in targets:
        options = _resolutions_near(base, target, base_macs) if dimension == "resolution" else sweep
        m, spec, realised, ratios = _solve(base, dimension, options, target, base_macs)
        below = ratios[ratios <= target].max(initial=0.0)
        above = ratios[ratios >= target].min(initial=np.inf)
        name = f"{base.name}-{dimension}{target:g}x"
        results.append(SingleScaled(dimension, target, m, realised, float(below), float(above),
                                    spec.replace(name=name)))
    return results


def match_to_macs(spec: ArchSpec, target_macs: int, dimension: str = "width") -> SingleScaled:
    """`spec` grown or shrunk along one dimension to the achievable MACs nearest `target_macs`
    (equal-cost comparisons: `nas compare --match-macs`).

    Args:
        spec: any spec or preset (already fitted to the data set's classes).
        target_macs: the MACs to land on.
        dimension: width (default), resolution or depth.
    """
    ratio = target_macs / analytic_macs(spec)
    result = scale_single(spec, dimension, [ratio])[0]
    return dataclasses_replace(result, spec=result.spec.replace(name=f"{spec.name}@{_short(target_macs)}"))


def _short(macs: int) -> str:
    return f"{macs / 1e6:.3g}M" if macs >= 1e5 else f"{macs / 1e3:.3g}k"
