"""Evaluators that train: `train:RECIPE` (the search's proxy accuracy) and `sotl:RECIPE`.

Both run the shared trainer once per (network, recipe, seed, data set, split); when both
are asked for the same candidate (a fidelity table lists them side by side) the second
reads the first's run instead of training again, and reports the run's cost as its own.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..data import Dataset
from ..recipe import Recipe, resolve_recipe
from ..spec import ArchSpec
from ..train import Runtime, TrainResult, train
from .base import EvalScore, EvaluatorError, fit_to

_RUNS: "OrderedDict[tuple, tuple[TrainResult, float]]" = OrderedDict()
_KEEP = 64  # runs remembered in this process


def _trained(spec: ArchSpec, dataset: Dataset, recipe: Recipe, split: str, seed: int,
             device: str) -> tuple[TrainResult, float, bool]:
    """(result, seconds, cached) of training `spec` with `recipe` under `seed`."""
    key = (spec.canonical_string(), recipe.replace(seed=seed), _data_key(dataset), split == "test", device)
    if key in _RUNS:
        return (*_RUNS[key], True)
    start = time.perf_counter()
    result = train(spec, dataset, recipe.replace(seed=seed), runtime=Runtime(device=device, quiet=True),
                   evaluate_test=split == "test")
    _RUNS[key] = (result, time.perf_counter() - start)
    while len(_RUNS) > _KEEP:
        _RUNS.popitem(last=False)
    return (*_RUNS[key], False)


def _data_key(dataset: Dataset) -> tuple:
    """What makes two loaded data sets the same data (an object's id may be reused once it is
    freed, so it cannot name the data a remembered run was trained on)."""
    return (dataset.name, dataset.source, dataset.val_fraction, tuple(dataset.train.images.shape),
            len(dataset.val), len(dataset.test))


def _check_split(split: str) -> None:
    if split not in ("val", "test"):
        raise EvaluatorError(f"a training evaluator reports val or test accuracy, not {split!r}")


@dataclass(frozen=True)
class _TrainingEvaluator:
    """What `train:` and `sotl:` share: a name, the recipe they train with and the device."""

    name: str
    recipe: Recipe
    device: str = "cpu"

    def _run(self, spec: ArchSpec, dataset: Dataset, split: str, seed: int) -> tuple[TrainResult, float, bool]:
        _check_split(split)
        return _trained(fit_to(spec, dataset), dataset, self.recipe, split, seed, self.device)


class TrainEvaluator(_TrainingEvaluator):
    """`train:RECIPE`: the accuracy on `split` after training with the recipe (the toolkit's
    proxy until now; a diverged run scores 0, as in a search)."""

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """Train `spec` from `seed` and return its `split` accuracy."""
        result, seconds, cached = self._run(spec, dataset, split, seed)
        acc = result.test_acc if split == "test" else result.val_acc
        value = acc if result.status == "completed" and acc is not None else 0.0
        return EvalScore(float(value), seconds, {"status": result.status, "epochs": result.epochs_run,
                                                 "cached": cached})


class SotlEvaluator(_TrainingEvaluator):
    """`sotl:RECIPE`: minus the sum over epochs of the epoch-mean training loss recorded during
    the recipe's run (train mode, augmented), i.e. −TSE of Ru, Lyle, Schut, Fil, van der Wilk
    and Gal, "Speedy Performance Estimation for Neural Architecture Search", NeurIPS 2021
    (SoTL in the arXiv version). Negated so that higher is better; -inf if the run diverged."""

    def score(self, spec: ArchSpec, dataset: Dataset, split: str = "val", seed: int = 0) -> EvalScore:
        """Train `spec` from `seed` and return −Σ_epochs training loss."""
        result, seconds, cached = self._run(spec, dataset, split, seed)
        losses = [float(h["train_loss"]) for h in result.history]
        total = sum(losses)
        value = -total if result.status == "completed" and math.isfinite(total) else -math.inf
        return EvalScore(value, seconds, {"train_losses": losses, "cached": cached})


def train_factory(arg: str, device: str) -> TrainEvaluator:
    """`train:RECIPE`."""
    return TrainEvaluator(f"train:{arg}", resolve_recipe(arg), device)


def sotl_factory(arg: str, device: str) -> SotlEvaluator:
    """`sotl:RECIPE`."""
    return SotlEvaluator(f"sotl:{arg}", resolve_recipe(arg), device)
