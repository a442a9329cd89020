"""What a search trades accuracy against: MACs, parameters or latency, one `Cost` each.

A Cost turns an ArchSpec into one number in its unit (MACs, parameters, milliseconds). MACs
and parameters are analytic; latency is measured on a device (cached) or predicted from a
per-block lookup table (nas.latency_table). The Objective (nas.search.objectives) applies
its reward, hard budget or Pareto front to whichever Cost it is given.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .counting import analytic_count
from .errors import NasError

if TYPE_CHECKING:  # torch-free at import: the search's config and reports name costs cheaply
    from .spec import ArchSpec

COSTS = ("macs", "params", "latency")
LATENCY_SOURCES = ("measured", "predicted")
_COUNT_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
_TIME_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3, "µs": 1e-3}  # to milliseconds
TARGET_FORMS = ("a count such as 800k, 1.2M or 116167168 (macs, params) or a time such as 5ms, "
                "0.5s or 800us (latency)")


@dataclass(frozen=True)
class Target:
    """A --target as written: a count (MACs, parameters) or a time in milliseconds.

    Attributes:
        value: the count, or milliseconds.
        time: whether the text carried a time unit (ms, s, us).
    """

    value: float
    time: bool


def parse_target(text: str) -> Target:
    """'800k' -> 800,000 (a count); '5ms', '0.5s', '800us' -> milliseconds.

    Args:
        text: a positive number with an optional unit: k, M, G or B for counts; ms, s or us
            for times.

    Raises:
        NasError naming the accepted forms when the text or its unit cannot be read.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Zµ]*)\s*", str(text))
    unit = match.group(2) if match else ""
    if not match or (unit not in _TIME_UNITS and unit.lower() not in _COUNT_UNITS):
        raise NasError(f"cannot read target {text!r}; write {TARGET_FORMS}")
    is_time = unit in _TIME_UNITS
    value = float(match.group(1)) * (_TIME_UNITS[unit] if is_time else _COUNT_UNITS[unit.lower()])
    if not math.isfinite(value) or value <= 0:
        raise NasError(f"target {text!r} must be positive and finite")
    return Target(value, is_time)


def resolve_target(cost: str, target: Optional[Target], target_macs: Optional[int]
                   ) -> tuple[Optional[int], Optional[float]]:
    """(target_macs, target) for a search config from --cost, --target and --target-macs.

    A MACs search keeps its target in `target_macs` (as before --target existed); a params or
    latency search in `target` (a count, or milliseconds).

    Raises:
        NasError when no target is given, when --target and --target-macs disagree, or when
        the target's unit does not fit the cost (a time for MACs, a count for latency).
    """
    if cost not in COSTS:
        raise NasError(f"unknown cost {cost!r}; choose one of {', '.join(COSTS)}")
    if target is not None and target.time != (cost == "latency"):
        wanted = "a time such as 5ms, 0.5s or 800us" if cost == "latency" else "a count such as 800k or 1.2M"
        raise NasError(f"--cost {cost} takes {wanted} as --target")
    if cost == "macs":
        if target is not None and target_macs is not None and round(target.value) != target_macs:
            raise NasError(f"--target ({round(target.value):,}) and --target-macs ({target_macs:,}) "
                           "disagree; give one of them")
        if target is None and target_macs is None:
            raise NasError("give the cost target: --target (e.g. 800k, or 5ms with --cost latency) "
                           "or --target-macs")
        return (target_macs if target_macs is not None else round(target.value)), None
    if target_macs is not None:
        raise NasError(f"--target-macs sets a MACs target; with --cost {cost} give --target instead")
    if target is None:
        example = "5ms" if cost == "latency" else "300k"
        raise NasError(f"--cost {cost} needs --target (e.g. {example})")
    return None, (round(target.value) if cost == "params" else target.value)


@dataclass(frozen=True)
class LatencySettings:
    """How latency is obtained: device, batch, and measured or predicted from a table.

    Attributes:
        device: cpu or cuda (cuda:N).
        batch: images per timed forward pass.
        source: measured (build and time each candidate) or predicted (sum of table entries).
        table: the lookup table's path (predicted only).
        stat: median or min of the timed repeats (min: robust when other jobs share the cores).
    """

    device: str = "cpu"
    batch: int = 1
    source: str = "measured"
    table: Optional[str] = None
    stat: str = "median"

    def __post_init__(self) -> None:
        if self.source not in LATENCY_SOURCES:
            raise NasError(f"unknown latency source {self.source!r}; choose measured or predicted")
        if self.source == "predicted" and not self.table:
            raise NasError("--latency-source predicted needs --latency-table PATH (build one with "
                           "`nas latency table --space S --out T.json`)")
        if self.source == "measured" and self.table:
            raise NasError("--latency-table is read only with --latency-source predicted")
        if self.stat not in ("median", "min"):
            raise NasError(f"unknown latency statistic {self.stat!r}; choose median or min")


class Cost:
    """A number per network that a search keeps low: its kind, unit and how it is computed."""

    kind = "macs"
    label = "MACs"

    def of(self, spec: "ArchSpec") -> float:
        """The cost of one network."""
        raise NotImplementedError

    def fmt(self, value: float) -> str:
        """A value with its unit, e.g. '1.5 M MACs' or '4.2 ms'."""
        return f"{value / 1e6:.3g} M {self.label}"

    def describe(self) -> str:
        """What the cost is and how it is obtained, for reports."""
        return f"{self.label} (analytic)"


class CountCost(Cost):
    """MACs or parameters, counted analytically from the spec (exact, ~30 µs)."""

    def __init__(self, kind: str) -> None:
        self.kind, self.label = kind, {"macs": "MACs", "params": "params"}[kind]

    def of(self, spec: "ArchSpec") -> float:
        """The analytic MACs or parameter count."""
        count = analytic_count(spec)
        return float(count.macs if self.kind == "macs" else count.params)


class LatencyCost(Cost):
    """Latency in milliseconds: measured on the device (cached per canonical arch and device
    fingerprint) or predicted as the sum of a lookup table's per-block entries."""

    kind = "latency"
    label = "latency"

    def __init__(self, settings: LatencySettings, cache: Optional[Path] = None) -> None:
        from .latency import LatencyMeter  # torch is loaded only when latency is used
        self.settings = settings
        self.meter = LatencyMeter(settings.device, settings.batch, cache, settings.stat)
        self._table = None

    @property
    def table(self):
        """The lookup table (loaded on first use; warns once if measured elsewhere)."""
        if self._table is None:
            from .latency_table import LatencyTable
            self._table = LatencyTable.load(Path(self.settings.table), self.settings.device)
        return self._table

    def of(self, spec: "ArchSpec") -> float:
        """Measured or predicted milliseconds of one forward pass."""
        if self.settings.source == "predicted":
            return self.table.predict(spec)
        return self.meter.measure(spec)

    def fmt(self, value: float) -> str:
        """Milliseconds, e.g. '4.21 ms'."""
        return f"{value:.3g} ms"

    def describe(self) -> str:
        """E.g. 'latency (measured, cpu, batch 1, 2 threads)' or '(predicted from T.json, ...)'."""
        import torch
        s = self.settings
        source = "measured" if s.source == "measured" else f"predicted from {s.table}"
        threads = f", {torch.get_num_threads()} threads" if s.device == "cpu" else ""
        stat = ", min of repeats" if s.stat == "min" else ""
        return f"latency ({source}, {s.device}, batch {s.batch}{threads}{stat})"


def make_cost(kind: str, latency: Optional[LatencySettings] = None, cache: Optional[Path] = None) -> Cost:
    """The Cost called `kind` (macs, params or latency).

    Args:
        kind: one of COSTS.
        latency: how latency is obtained (latency only; default: measured on the CPU, batch 1).
        cache: JSON file caching measured latencies (None: no cache).
    """
    if kind not in COSTS:
        raise NasError(f"unknown cost {kind!r}; choose one of {', '.join(COSTS)}")
    if kind == "latency":
        return LatencyCost(latency or LatencySettings(), cache)
    return CountCost(kind)


MACS = CountCost("macs")
