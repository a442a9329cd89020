"""Search objectives: the MnasNet/EfficientNet reward, a hard budget, or a true Pareto front."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import NasError

MODES = ("reward", "hard", "pareto")
_UNITS = {"": 1, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "B": 10 ** 9}


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
    return int(round(value))


@dataclass(frozen=True)
class Objective:
    """reward: ACC * (MACs/T)^w, w = `w` at or below T and `w_above` (default `w`) above.
    hard: w = 0 at or below T; candidates above T are rejected before training.
    pareto: maximise accuracy and minimise MACs as two objectives.

    Attributes:
        mode: reward, hard or pareto.
        target: the MACs target T (positive).
        w: the reward's exponent (MnasNet's -0.07).
        w_above: the exponent above T; None: the same as `w`.
    """

    mode: str
    target: int
    w: float = -0.07
    w_above: Optional[float] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise NasError(f"unknown objective {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.target < 1:
            raise NasError("the MACs target must be positive")

    @property
    def directions(self) -> list[str]:
        """Optuna study directions: maximise accuracy, plus minimise MACs for pareto."""
        return ["maximize", "minimize"] if self.mode == "pareto" else ["maximize"]

    def rejects(self, macs: int) -> bool:
        """Whether a candidate is refused untrained: only over the target of a hard budget.

        Args:
            macs: the candidate's MACs.
        """
        return self.mode == "hard" and macs > self.target

    def reward(self, accuracy: float, macs: int) -> float:
        """The scalar reward (also used to pick one model off a Pareto front).

        Args:
            accuracy: the candidate's validation accuracy.
            macs: the candidate's MACs.
        """
        if self.mode == "hard":
            return accuracy if macs <= self.target else 0.0
        w = self.w if macs <= self.target or self.w_above is None else self.w_above
        return accuracy * (macs / self.target) ** w

    def describe(self) -> str:
        """One line saying what the search optimises, for logs and reports."""
        if self.mode == "hard":
            return f"hard budget: accuracy at MACs <= {self.target:,}, larger candidates rejected untrained"
        if self.mode == "pareto":
            return "Pareto: maximise accuracy, minimise MACs"
        above = f", w = {self.w_above} above T" if self.w_above is not None else ""
        return f"reward ACC * (MACs / {self.target:,})^w with w = {self.w}{above}"
