"""Grid search of (alpha, beta, gamma) at phi = 1, ranked at equal *realised* MACs.

Each candidate grows the base by depth alpha, width beta and resolution gamma with the
real rounding rules. A point is kept only when the grown net's realised MACs ratio is
within the tolerance of 2 (the nominal alpha*beta^2*gamma^2 is still reported), and
points that round to the same network are one point, so every ranked point costs the
same. The points are enqueued as fixed trials of a resumable study (the shared study
core); each trains `seeds` seeds on the validation split, and the winner is called
resolved from the runner-up only when their paired seed interval excludes 0.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
from optuna.trial import TrialState

from nas.counting import analytic_count
from nas.data import load_dataset
from nas.preflight import decode_resolution
from nas.presets import resolve_spec
from nas.recipe import resolve_recipe
from nas.rounding import resolution_multiple, round_resolution, scale_spec
from nas.spec import ArchSpec
from nas.study import ProgressLine, Status, StudyPlan, locked, open_study, quiet_interrupt, run_workers, set_attrs
from nas.study.queue import enqueue_missing, queue_worker, queued_unit
from nas.settings import DataSettings, StudySettings
from nas.study.storage import STUDY_KEY, default_study_name
from nas.train import Runtime, TrainError, train
from nas.train.runtime import resolve_device

from .coefficients import TARGET_FACTOR, CoefficientError, Coefficients, admissible_grid

POINT_KEY = "grid_point"  # the user attribute naming a trial's grid point


@dataclass(frozen=True)
class GridConfig(StudySettings, DataSettings):
    """Every setting of one grid; the fields are also the `nas scale grid` options.

    `tolerance` bounds |realised MACs ratio - 2|; `nominal_window` bounds the nominal
    |alpha*beta^2*gamma^2 - 2| of the candidates considered before rounding.
    """

    base: str
    dataset: str
    out: str
    step: float = 0.05
    tolerance: float = 0.06  # 3 % of 2x
    nominal_window: float = 0.3
    closest: Optional[int] = None
    alpha_max: float = 2.0
    beta_max: float = 1.5
    gamma_max: float = 1.5
    recipe: str = "proxy"
    seeds: int = 1
    study_name: Optional[str] = None
    resolution_multiple: int = 0    # 0: by the base resolution (2 / 4 / 8 px)

    RESUMABLE = ("workers", "device", "data_dir", "timeout", "download", "heartbeat")

    def __post_init__(self) -> None:
        if self.closest is not None and self.closest < 1:
            raise CoefficientError(f"--closest {self.closest} must be at least 1 (leave it out for all points)")
        if self.seeds < 1 or self.workers < 1:
            raise CoefficientError("--grid-seeds and --workers must be at least 1")
        if self.tolerance <= 0 or self.nominal_window < 0:
            raise CoefficientError("--tolerance must be positive and --nominal-window non-negative")

    @property
    def name(self) -> str:
        """The study's name in its storage (default: see `default_study_name`, + '-grid')."""
        return self.study_name or default_study_name(Path(self.out), self.storage, "grid.yaml", "-grid")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what is pinned in grid.yaml)."""
        return dataclasses.asdict(self)

    def plan(self, base: ArchSpec) -> StudyPlan:
        """Where the grid's study lives and what is pinned (the base network included)."""
        settings = {**self.to_dict(), "base_network": base.canonical_string(), STUDY_KEY: self.name}
        return StudyPlan(Path(self.out), self.name, self.storage, settings, (*self.RESUMABLE, STUDY_KEY),
                         "grid.yaml", "grid", self.heartbeat)


@dataclass(frozen=True)
class GridPoint:
    """One network of the grid: the coefficients that first produced it and its cost."""

    coefficients: Coefficients
    spec: ArchSpec
    macs: int
    params: int
    realised_ratio: float
    aliases: tuple[str, ...] = ()   # other coefficients that round to the same network


def grow(base: ArchSpec, c: Coefficients, multiple: int = 0) -> ArchSpec:
    """The base at phi = 1 under coefficients c, with the real rounding rules."""
    step = resolution_multiple(base.resolution, multiple)
    return scale_spec(base, depth=c.alpha, width=c.beta,
                      resolution=round_resolution(base.resolution * c.gamma, step),
                      name=f"{base.name}-a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}")


def plan_points(base: ArchSpec, config: GridConfig) -> list[GridPoint]:
    """Distinct networks whose realised MACs ratio is within the tolerance of 2, closest first."""
    base_macs = analytic_count(base).macs
    candidates = admissible_grid(config.step, config.nominal_window, config.alpha_max,
                                 config.beta_max, config.gamma_max)
    by_key: dict[str, GridPoint] = {}
    for c in candidates:
        spec = grow(base, c, config.resolution_multiple)
        count = analytic_count(spec)
        ratio = count.macs / base_macs
        if abs(ratio - TARGET_FACTOR) > config.tolerance:
            continue
        key = spec.canonical_string()
        if key in by_key:
            first = by_key[key]
            by_key[key] = dataclasses.replace(first, aliases=first.aliases + (f"{c.alpha:g}/{c.beta:g}/{c.gamma:g}",))
        else:
            by_key[key] = GridPoint(c, spec, count.macs, count.params, ratio)
    points = sorted(by_key.values(), key=lambda p: (abs(p.realised_ratio - TARGET_FACTOR),
                                                    p.coefficients.as_tuple()))
    if not points:
        raise CoefficientError(
            f"no grid point of {base.name} realises {TARGET_FACTOR:g}x MACs within {config.tolerance} "
            f"(nominal window {config.nominal_window}, step {config.step}); widen --tolerance or "
            "--nominal-window, or use a finer --resolution-multiple")
    return points[:config.closest] if config.closest else points


class GridRunner:
    """The objective: trains one enqueued grid point for `seeds` seeds."""

    def __init__(self, config: GridConfig, base: ArchSpec, points: list[GridPoint],
                 log: Callable[[str], None], trainer: Optional[Callable[..., Any]] = None) -> None:
        self.config, self.points, self.log = config, points, log
        self.trainer = trainer or train  # looked up now: a test's fake replaces the module's `train`
        # decoded at the largest point's input: a point grown in resolution sees real detail
        self.dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                                    resolution=decode_resolution([base, *(p.spec for p in points)]),
                                    val_fraction=config.val_fraction, download=config.download)
        self.recipe = resolve_recipe(config.recipe)
        self.runtime = Runtime(device=str(resolve_device(config.device)), quiet=True)
        self.progress = ProgressLine(len(points), log, prefix="grid point ")

    def __call__(self, trial: optuna.Trial) -> float:
        start = time.perf_counter()
        point = self.points[queued_unit(trial, POINT_KEY, "point", len(self.points))]
        c = point.coefficients
        set_attrs(trial, alpha=c.alpha, beta=c.beta, gamma=c.gamma, factor=c.factor,
                  resolution=point.spec.resolution, macs=point.macs, params=point.params,
                  realised_ratio=point.realised_ratio, key=point.spec.canonical_string(),
                  aliases=" ".join(point.aliases), val_images=len(self.dataset.val))
        accs, status = self._train_seeds(trial, point.spec)
        finite = [a for a in accs if a is not None]  # a diverged seed is dropped, as in every paired test
        mean = sum(finite) / len(finite) if finite else 0.0
        std = (sum((a - mean) ** 2 for a in finite) / (len(finite) - 1)) ** 0.5 if len(finite) > 1 else None
        set_attrs(trial, val_accs=accs, val_acc=mean, val_std=std, status=status,
                  seconds=time.perf_counter() - start)
        done = sum(1 for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                   if POINT_KEY in t.user_attrs) + 1
        self.progress.say(done, f"alpha {c.alpha:.2f} beta {c.beta:.2f} gamma {c.gamma:.2f} ({c.factor:.3f} "
                                f"nominal, {point.realised_ratio:.3f} realised, {point.spec.resolution}px)  "
                                f"val {mean * 100:5.2f}% over {len(finite)} seed(s)", time.perf_counter() - start)
        return mean

    def _train_seeds(self, trial: optuna.Trial, spec: ArchSpec) -> tuple[list[Optional[float]], Status]:
        """Validation accuracy per seed; None for a diverged seed (the point is then "diverged",
        and the seed drops out of its paired comparisons). Each seed's per-image validation
        outcomes go to the trial's val_outcomes (for the paired winner-vs-runner-up interval)."""
        spec = spec.replace(num_classes=self.dataset.num_classes)
        accs, outcomes, status = [], [], Status.TRAINED
        for k in range(self.config.seeds):
            try:
                result = self.trainer(spec, self.dataset, self.recipe.replace(seed=self.config.seed + k),
                               runtime=self.runtime)
            except TrainError as exc:
                set_attrs(trial, status=Status.FAILED, error=str(exc))
                raise
            if result.status != "completed" or result.val_acc is None:
                status = Status.DIVERGED
            accs.append(result.val_acc if result.val_acc is not None and result.status == "completed" else None)
            outcomes.append(result.val_outcomes)
        set_attrs(trial, val_outcomes=outcomes)
        return accs, status


def _worker(config: GridConfig, worker: int, log: Callable[[str], None] = print,
            trainer: Optional[Callable[..., Any]] = None) -> None:
    base = _base(config)
    points = plan_points(base, config)
    queue_worker(config.plan(base), worker, config.seed, lambda: GridRunner(config, base, points, log, trainer),
                 (TrainError,), config.timeout)


def _worker_process(config_dict: dict, worker: int, trainer: Optional[Callable[..., Any]] = None) -> None:
    with quiet_interrupt():
        _worker(GridConfig(**config_dict), worker, trainer=trainer)


def _base(config: GridConfig) -> ArchSpec:
    return resolve_spec(config.base)


def run_grid(config: GridConfig, log: Callable[[str], None] = print,
             trainer: Optional[Callable[..., Any]] = None) -> optuna.Study:
    """Plan the points, open (or resume) the study, train what is left.

    Args:
        config: the grid's settings.
        log: where progress lines go.
        trainer: `nas.train.train` (None) or a stand-in with its signature; spawned workers get
            it pickled, so it must be importable.
    """
    base = _base(config)
    points = plan_points(base, config)
    plan = config.plan(base)
    with locked(plan):
        study = open_study(plan, ["maximize"], log)
        remaining = enqueue_missing(study, POINT_KEY, len(points), lambda i: {"point": i})
        done = len(points) - remaining
        log(f"{'resuming ' if done else ''}grid {config.name}: {len(points)} distinct networks within "
            f"{config.tolerance} of {TARGET_FACTOR:g}x realised MACs on base {base.name} "
            f"({done} done), {config.seeds} seed(s) each")
        if remaining:
            worker = _worker_process if trainer is None else functools.partial(_worker_process, trainer=trainer)
            run_workers(worker, config.to_dict(), config.workers, lambda: _worker(config, 0, log, trainer))
    return study
