"""Training recipes: everything that decides what a training run computes.

Recipes are YAML files validated like specs. Named presets live in nas/recipes/:
`smoke` (seconds, for tests), `proxy` (a few epochs, for search and scaling) and
`full` (final numbers).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from .errors import NasError
from .yamlfile import named_file, read_yaml

RECIPE_DIR = Path(__file__).with_name("recipes")
OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("onecycle", "cosine", "exponential", "constant")
AUGMENTS = ("none", "crop-flip", "randaugment", "trivialaugment")
PRECISIONS = ("auto", "fp32", "bf16")
TRAIN_SPLITS = ("train", "train+val")


class RecipeError(NasError):
    """A recipe is invalid."""


@dataclass(frozen=True)
class Recipe:
    """Everything that decides what a training run computes (epochs, optimizer, schedule,
    regularisers, augmentation, precision, seed, data subset, precise BN); validated on creation."""
    name: str = "custom"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"          # sgd = SGD with Nesterov momentum
    lr: float = 0.1                 # peak learning rate at this batch size
    momentum: float = 0.9
    weight_decay: float = 5e-5      # not applied to BatchNorm and biases
    schedule: str = "onecycle"
    warmup_epochs: float = 0.0      # onecycle: 0 means 25 % of training
    decay_epochs: float = 2.4       # exponential: lr *= decay_rate every decay_epochs
    decay_rate: float = 0.97
    label_smoothing: float = 0.1
    drop_path: Optional[float] = None  # None: the spec's stochastic-depth rate
    dropout: Optional[float] = None    # None: the spec's dropout
    bn_momentum: Optional[float] = None  # None: the spec's; short runs need faster BN statistics
    ema_decay: float = 0.0             # weight EMA; 0 = off
    augment: str = "crop-flip"
    precision: str = "auto"            # auto: bf16 autocast on GPU, fp32 on CPU
    seed: int = 0
    train_fraction: float = 1.0        # a fixed random subset of the training split
    train_split: str = "train"         # train+val only for final runs that report test accuracy
    eval_every: int = 1
    # Precise BN: before every evaluation, recompute the BatchNorm running statistics over
    # this many training images (0 = off). Short runs leave momentum-0.01 statistics near
    # their initial values; this makes every recipe evaluate what it trained.
    precise_bn: int = 512

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.epochs, int) and self.epochs >= 1, f"epochs {self.epochs!r} must be an integer >= 1"),
            (isinstance(self.batch_size, int) and self.batch_size >= 1, f"batch_size {self.batch_size!r} must be an integer >= 1"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}"),
            (self.augment in AUGMENTS, f"unknown augment {self.augment!r}; choose one of {', '.join(AUGMENTS)}"),
            (self.precision in PRECISIONS, f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}"),
            (self.train_split in TRAIN_SPLITS, f"train_split {self.train_split!r} must be one of {', '.join(TRAIN_SPLITS)}"),
            (_num(self.lr) and self.lr > 0, f"lr {self.lr!r} must be a positive number"),
            (_num(self.momentum) and 0 <= self.momentum < 1, f"momentum {self.momentum!r} must be in [0, 1)"),
            (_num(self.weight_decay) and self.weight_decay >= 0, f"weight_decay {self.weight_decay!r} must be >= 0"),
            (_num(self.warmup_epochs) and 0 <= self.warmup_epochs < self.epochs, f"warmup_epochs {self.warmup_epochs!r} must be in [0, epochs)"),
            (_num(self.decay_epochs) and self.decay_epochs > 0, f"decay_epochs {self.decay_epochs!r} must be positive"),
            (_num(self.decay_rate) and 0 < self.decay_rate <= 1, f"decay_rate {self.decay_rate!r} must be in (0, 1]"),
            (_num(self.label_smoothing) and 0 <= self.label_smoothing < 1, f"label_smoothing {self.label_smoothing!r} must be in [0, 1)"),
            (self.drop_path is None or _num(self.drop_path) and 0 <= self.drop_path < 1, f"drop_path {self.drop_path!r} must be empty or in [0, 1)"),
            (self.dropout is None or _num(self.dropout) and 0 <= self.dropout < 1, f"dropout {self.dropout!r} must be empty or in [0, 1)"),
            (self.bn_momentum is None or _num(self.bn_momentum) and 0 < self.bn_momentum <= 1, f"bn_momentum {self.bn_momentum!r} must be empty or in (0, 1]"),
            (_num(self.ema_decay) and 0 <= self.ema_decay < 1, f"ema_decay {self.ema_decay!r} must be in [0, 1)"),
            (isinstance(self.seed, int), f"seed {self.seed!r} must be an integer"),
            (_num(self.train_fraction) and 0 < self.train_fraction <= 1, f"train_fraction {self.train_fraction!r} must be in (0, 1]"),
            (isinstance(self.eval_every, int) and self.eval_every >= 1, f"eval_every {self.eval_every!r} must be an integer >= 1"),
            (isinstance(self.precise_bn, int) and self.precise_bn >= 0, f"precise_bn {self.precise_bn!r} must be an integer >= 0 (images; 0 = off)"),
        ]
        for ok, message in checks:
            if not ok:
                raise RecipeError(f"recipe {self.name!r}: {message}")

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The YAML form (what run folders save as recipe.yaml)."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "recipe") -> "Recipe":
        """A recipe from a mapping; unknown keys are refused, naming the allowed ones."""
        if not isinstance(data, Mapping):
            raise RecipeError(f"{where}: a recipe must be a mapping")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise RecipeError(f"{where}: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        """A recipe from a YAML file (numbers such as 5e-5 read as floats)."""
        path = Path(path)
        return cls.from_dict(read_yaml(path, "recipe file", RecipeError), str(path))


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def recipe_names() -> list[str]:
    """Names of the shipped recipes (nas/recipes/*.yaml)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def resolve_recipe(name_or_path: str) -> Recipe:
    """A recipe YAML path, or the name of a shipped recipe (smoke, demo, proxy, proxy-fast, full)."""
    return Recipe.load(named_file(name_or_path, RECIPE_DIR, "recipe", RecipeError))
