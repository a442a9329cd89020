"""Search objectives over a cost (MACs, params or latency): the MnasNet/EfficientNet reward, a
hard budget, or a true Pareto front."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

from ..costs import MACS, Cost
from ..errors import NasError

MODES = ("reward", "hard", "pareto")
_UNITS = {"": 1, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "B": 10 ** 9}
MAX_MACS = 1e15  # far above any buildable net; bounds the solvers' searches


def parse_macs(text: str) -> int:
    """'400M' -> 400_000_000; also '1.2G', '25k', '116167168'.

    Args:
        text: a number with an optional k, M, G or B suffix (case-insensitive).
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGbB]?)\s*", str(text))
    if not match:
        raise NasError(f"cannot read MACs {text!r}; write e.g. 400M, 1.2G or 116167168")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not math.isfinite(value):
        raise NasError(f"MACs target {text!r} must be finite")
    if value < 1:
        raise NasError(f"MACs target {text!r} must be positive")
    if value > MAX_MACS:
        raise NasError(f"MACs target {text!r} is beyond {MAX_MACS:.0e} (EfficientNet-B7 has 3.7e10); "
                       "no net that large can be built here")
    return int(round(value))


@dataclass(frozen=True)
class Objective:
    """reward: ACC * (C/T)^w for the cost C (MACs, params or latency), w = `w` at or below T
    and `w_above` (default `w`) above.
    hard: w = 0 at or below T; candidates above T are rejected before training.
    pareto: maximise accuracy and minimise the cost as two objectives.

    Attributes:
        mode: reward, hard or pareto.
        target: the cost target T (positive), in the cost's unit (MACs, params, ms).
        w: the reward's exponent (MnasNet's -0.07).
        w_above: the exponent above T; None: the same as `w`.
        cost: what C is and how it is obtained (default: analytic MACs).
    """

    mode: str
    target: float
    w: float = -0.07
    w_above: Optional[float] = None
    cost: Cost = MACS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise NasError(f"unknown objective {self.mode!r}; choose one of {', '.join(MODES)}")
        if not self.target > 0:
            raise NasError(f"the {self.cost.label} target must be positive")

    @property
    def directions(self) -> list[str]:
        """Optuna study directions: maximise accuracy, plus minimise the cost for pareto."""
        return ["maximize", "minimize"] if self.mode == "pareto" else ["maximize"]

    def rejects(self, cost: float) -> bool:
        """Whether a candidate is refused untrained: only over the target of a hard budget.

        Args:
            cost: the candidate's cost (MACs, params or ms).
        """
        return self.mode == "hard" and cost > self.target

    def reward(self, accuracy: float, cost: float) -> float:
        """The scalar reward (also used to pick one model off a Pareto front).

        Args:
            accuracy: the candidate's validation accuracy.
            cost: the candidate's cost (MACs, params or ms).
        """
        if self.mode == "hard":
            return accuracy if cost <= self.target else 0.0
        w = self.w if cost <= self.target or self.w_above is None else self.w_above
        return accuracy * (cost / self.target) ** w

    def describe(self) -> str:
        """One line saying what the search optimises, for logs and reports."""
        label, target = self.cost.label, self._target_text()
        how = "" if self.cost.kind == "macs" else f"; cost: {self.cost.describe()}"
        if self.mode == "hard":
            return f"hard budget: accuracy at {label} <= {target}, larger candidates rejected untrained{how}"
        if self.mode == "pareto":
            return f"Pareto: maximise accuracy, minimise {label}{how}"
        above = f", w = {self.w_above} above T" if self.w_above is not None else ""
        return f"reward ACC * ({label} / {target})^w with w = {self.w}{above}{how}"

    def _target_text(self) -> str:
        return f"{self.target:,}" if self.cost.kind == "macs" else self.cost.fmt(self.target)
