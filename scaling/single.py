"""Single-dimension scaling (the paper's Figure 3 / Table 3): depth, width or resolution only,
each solved for the multiplier whose realised MACs land nearest a target ratio."""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace
from typing import Iterator

import numpy as np

from nas.counting import analytic_macs
from nas.rounding import resolution_multiple, scale_spec
from nas.spec import ArchSpec

from .coefficients import CoefficientError

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
    """Every distinct realisation of one dimension over a fine multiplier sweep."""
    if dimension == "resolution":
        step = resolution_multiple(base.resolution)  # the grid's and emission's rounding rule
        top = int(base.resolution * np.sqrt(max_ratio) * 1.3) + 2 * step
        for r in range(max(8, step), top + 1, step):
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


def scale_single(base: ArchSpec, dimension: str, targets: list[float]) -> list[SingleScaled]:
    """Per target MACs ratio, the one-dimension net whose realised MACs land closest to it.

    Depth and width are swept in fine multiplier steps and resolution in steps of its
    rounding multiple; rounding makes only some ratios achievable, so each result
    records the achievable neighbours of its target.

    Args:
        base: the net to grow (or shrink).
        dimension: depth, width or resolution.
        targets: MACs ratios to the base (e.g. 2.0, 4.0, 0.5).

    Returns:
        one SingleScaled per target, in order, named <base>-<dimension><target>x.
    """
    if dimension not in DIMENSIONS:
        raise CoefficientError(f"unknown dimension {dimension!r}; choose one of {', '.join(DIMENSIONS)}")
    base_macs = analytic_macs(base)
    options = [(m, spec, analytic_macs(spec) / base_macs)
               for m, spec in _candidates(base, dimension, max(targets))]
    ratios = np.array([r for _, _, r in options])
    results = []
    for target in targets:
        i = int(np.argmin(np.abs(ratios - target)))
        below = ratios[ratios <= target].max(initial=0.0)
        above = ratios[ratios >= target].min(initial=np.inf)
        m, spec, realised = options[i]
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
