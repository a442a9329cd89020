"""Evaluators: ways to judge a candidate (training, a training-loss sum, zero-cost proxies,
counts), all behind one interface and one registry of names."""
from . import builtin  # noqa: F401  (registers the built-in evaluators in base's registry)
from .base import (EvalScore, Evaluator, EvaluatorError, evaluator_names, gives_accuracy, parse_evaluators,
                   register_evaluator, resolve_evaluator)

__all__ = ["EvalScore", "Evaluator", "EvaluatorError", "evaluator_names", "gives_accuracy", "parse_evaluators",
           "register_evaluator", "resolve_evaluator"]
