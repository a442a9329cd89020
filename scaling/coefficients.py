"""Compound-scaling coefficients and the admissible grid alpha * beta^2 * gamma^2 ~ 2."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from nas.errors import NasError

TARGET_FACTOR = 2.0  # the paper's: each phi step doubles the MACs


class CoefficientError(NasError):
    """Invalid scaling coefficients."""


@dataclass(frozen=True)
class Coefficients:
    """Compound-scaling coefficients: depth grows as alpha^phi, width as beta^phi and
    resolution as gamma^phi.

    Attributes:
        alpha: depth coefficient (>= 1).
        beta: width coefficient (>= 1).
        gamma: resolution coefficient (>= 1).

    Raises:
        CoefficientError when a value is not a number >= 1.
    """

    alpha: float  # depth
    beta: float   # width
    gamma: float  # resolution

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 1:
                raise CoefficientError(f"{name} = {value!r} must be a number >= 1 (the paper's "
                                       "constraint alpha, beta, gamma >= 1)")

    @property
    def factor(self) -> float:
        """MACs growth per unit phi, by the formula: alpha * beta^2 * gamma^2."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2

    def check(self, tolerance: float, strict: bool) -> None:
        """Refuse coefficients whose factor alpha * beta^2 * gamma^2 is not within `tolerance` of 2.

        Args:
            tolerance: the largest accepted |factor − 2|.
            strict: check at all; without it any factor passes.
        """
        if strict and abs(self.factor - TARGET_FACTOR) > tolerance:
            raise CoefficientError(
                f"alpha*beta^2*gamma^2 = {self.factor:.4f} is outside 2 +- {tolerance}; pick coefficients "
                "closer to 2, widen --tolerance, or drop --strict")

    def as_tuple(self) -> tuple[float, float, float]:
        """(alpha, beta, gamma)."""
        return self.alpha, self.beta, self.gamma

    @classmethod
    def parse(cls, text: str) -> "Coefficients":
        """Coefficients from text such as '1.2,1.1,1.15' (alpha, beta, gamma).

        Args:
            text: the --coefficients value: three comma-separated numbers.
        """
        parts = [p for p in text.replace(" ", "").split(",") if p]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3:
            raise CoefficientError(f"cannot read coefficients {text!r}; write alpha,beta,gamma such as "
                                   "1.2,1.1,1.15")
        return cls(*values)

    @classmethod
    def load(cls, path: str | Path) -> "Coefficients":
        """Coefficients from a YAML file with alpha, beta and gamma keys.

        Args:
            path: the YAML file.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
            return cls(float(data["alpha"]), float(data["beta"]), float(data["gamma"]))
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise CoefficientError(f"cannot read coefficients from {path}: expected alpha, beta and "
                                   f"gamma keys ({exc})") from exc


def _axis(low: float, high: float, step: float) -> np.ndarray:
    return np.round(np.arange(low, high + step / 2, step), 6)


def admissible_grid(step: float = 0.05, tolerance: float = 0.1, alpha_max: float = 2.0,
                    beta_max: float = 1.5, gamma_max: float = 1.5,
                    closest: Optional[int] = None) -> list[Coefficients]:
    """All (alpha, beta, gamma) >= 1 on the step grid with |alpha*beta^2*gamma^2 - 2| <= tolerance,
    ordered by distance to 2 (then alpha, beta, gamma); optionally only the `closest` K.

    Args:
        step: grid spacing of each axis, starting at 1.0.
        tolerance: the largest accepted |factor − 2|.
        alpha_max: upper end of the alpha axis.
        beta_max: upper end of the beta axis.
        gamma_max: upper end of the gamma axis.
        closest: keep only this many points nearest 2 (None or 0: all).

    Raises:
        CoefficientError for a non-positive step, a negative tolerance or an empty grid.
    """
    if step <= 0 or tolerance < 0:
        raise CoefficientError("--step must be positive and --tolerance non-negative")
    points = []
    for a in _axis(1.0, alpha_max, step):
        for b in _axis(1.0, beta_max, step):
            for g in _axis(1.0, gamma_max, step):
                if abs(a * b * b * g * g - TARGET_FACTOR) <= tolerance + 1e-12:
                    points.append(Coefficients(float(a), float(b), float(g)))
    points.sort(key=lambda c: (abs(c.factor - TARGET_FACTOR), c.as_tuple()))
    if not points:
        raise CoefficientError(f"no grid point has alpha*beta^2*gamma^2 within {tolerance} of 2 at step "
                               f"{step}; widen --tolerance or the ranges")
    return points[:closest] if closest else points
