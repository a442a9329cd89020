"""Compound scaling (EfficientNet section 3.3): grid-search alpha, beta, gamma at phi = 1,
then emit scaled models for any phi; plus single-dimension scaling for comparison."""
from .coefficients import Coefficients, CoefficientError, admissible_grid
from .emit import ScaledModel, emit_compound, emit_paper, parse_phis

__all__ = ["Coefficients", "CoefficientError", "admissible_grid", "ScaledModel", "emit_compound",
           "emit_paper", "parse_phis"]
