"""`nas bench build`: train a stratified sample of a space with one long recipe, as a
resumable, distributable study (the shared study core: run-folder lock, pinned settings,
journal or PostgreSQL storage, workers, re-queue of killed trials).

Every planned (candidate, seed) run is one enqueued fixed trial; its record (canonical
arch, MACs, params, latency at batch 1 and 256, per-epoch training loss and validation
accuracy, final validation and test accuracy, wall time, img/s) is stored on the trial,
so bench.csv can be rebuilt from the study alone.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
from optuna.trial import TrialState

from ..builder import build
from ..data import Dataset, load_dataset
from ..data.fit import check_data_resolution
from ..latency import measure_latency_ms
from ..recipe import resolve_recipe
from ..search.space import SearchSpace, load_space
from ..study import (ProgressLine, Status, StudyPlan, locked, open_study, quiet_interrupt,
                     run_workers, set_attrs)
from ..study.queue import enqueue_missing, queue_worker, queued_unit
from ..settings import DataSettings, StudySettings
from ..train import Runtime, TrainError, train
from ..train.runtime import resolve_device
from .sample import BenchCandidate, BenchError, plan_candidates, planned_runs

RUN_KEY = "bench_run"
LATENCY_BATCHES = (1, 256)


@dataclass(frozen=True)
class BenchConfig(StudySettings, DataSettings):
    """Every setting of one benchmark; the fields are also the `nas bench build` options.

    Only the keys in RESUMABLE may differ when a benchmark is re-run into the same --out.
    """

    space: str
    dataset: str
    recipe: str
    candidates: int
    out: str
    seeds: int = 1
    seed_candidates: Optional[int] = None  # how many candidates get `seeds` seeds (None: all)
    strata: int = 4
    macs_low: Optional[int] = None         # the band (None: the space's whole MACs range)
    macs_high: Optional[int] = None
    study_name: Optional[str] = None
    data_resolution: Optional[int] = None

    # `out` may change: a benchmark folder moved (say, built in runs/ and kept under results/)
    # resumes where it now is; its study is named after the folder's name, which stays
    RESUMABLE = ("out", "workers", "device", "data_dir", "timeout", "download", "heartbeat")

    def __post_init__(self) -> None:
        if min(self.candidates, self.seeds, self.strata, self.workers) < 1:
            raise BenchError("--candidates, --seeds, --strata and --workers must be at least 1")
        if (self.macs_low is None) != (self.macs_high is None) or (
                self.macs_low is not None and not 0 < self.macs_low < self.macs_high):
            raise BenchError(f"--macs-range {self.macs_low},{self.macs_high} must be LOW,HIGH with "
                             "0 < LOW < HIGH, e.g. 0.4M,3M")

    @property
    def name(self) -> str:
        """The study's name in its storage (default: the --out folder name + '-bench')."""
        return self.study_name or f"{Path(self.out).resolve().name}-bench"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what is pinned in bench.yaml)."""
        return dataclasses.asdict(self)

    def plan(self) -> StudyPlan:
        """Where the benchmark's study lives and what is pinned."""
        return StudyPlan(Path(self.out), self.name, self.storage, self.to_dict(), self.RESUMABLE,
                         "bench.yaml", "benchmark", self.heartbeat)

    def load_data(self, space: SearchSpace) -> Dataset:
        """The data set, decoded at the space's input size (or --data-resolution)."""
        return load_dataset(self.dataset, data_dir=self.data_dir, val_fraction=self.val_fraction,
                            resolution=self.data_resolution or space.base.resolution,
                            download=self.download)

    def candidates_of(self, space: SearchSpace, num_classes: int) -> list[BenchCandidate]:
        """The planned candidates (the same on every worker and every resumed run)."""
        band = ((self.macs_low, self.macs_high) if self.macs_low is not None
                else space.macs_range(num_classes))
        multi = self.candidates + len(space.baselines) if self.seed_candidates is None else self.seed_candidates
        return plan_candidates(space, num_classes, self.candidates, band, self.strata, self.seeds, multi,
                               self.seed)


class BenchRunner:
    """The objective: trains one enqueued (candidate, seed) run and records it on the trial."""

    def __init__(self, config: BenchConfig, log: Callable[[str], None],
                 trainer: Optional[Callable[..., Any]] = None) -> None:
        self.trainer = trainer or train  # looked up now: a test's fake replaces the module's `train`
        space = load_space(config.space)
        self.dataset = config.load_data(space)
        self.candidates = config.candidates_of(space, self.dataset.num_classes)
        self.runs = planned_runs(self.candidates)
        self.config, self.log = config, log
        self.recipe = resolve_recipe(config.recipe)
        self.device = resolve_device(config.device)
        self.runtime = Runtime(device=str(self.device), quiet=True)
        self.progress = ProgressLine(len(self.runs), log, prefix="bench run ")

    def __call__(self, trial: optuna.Trial) -> float:
        index, k = self.runs[queued_unit(trial, RUN_KEY, "run", len(self.runs))]
        start = time.perf_counter()
        cand = self.candidates[index]
        set_attrs(trial, candidate=cand.name, kind=cand.kind, stratum=cand.stratum, seed=self.config.seed + k,
                  arch=cand.spec.canonical_string(), spec=json.dumps(cand.spec.to_dict()), macs=cand.macs,
                  params=cand.params, device=str(self.device), **self._latencies(cand))
        try:
            result = self.trainer(cand.spec, self.dataset, self.recipe.replace(seed=self.config.seed + k),
                           runtime=self.runtime, evaluate_test=True)
        except TrainError as exc:
            set_attrs(trial, status=Status.FAILED, error=str(exc))
            self.log(f"bench run {cand.name} seed {k}: failed: {exc}")
            raise
        done = result.status == "completed" and result.val_acc is not None
        set_attrs(trial, status=Status.TRAINED if done else Status.DIVERGED,
                  train_losses=[h["train_loss"] for h in result.history],
                  val_accs=[h["val_acc"] for h in result.history], val_acc=result.val_acc if done else 0.0,
                  test_acc=result.test_acc, wall_seconds=time.perf_counter() - start,
                  images_per_s=result.images_per_s)
        finished = len(trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) + 1
        acc = f"val {result.val_acc * 100:5.2f}%" if done else result.status
        self.progress.say(finished, f"{cand.name:<16s} seed {k} {cand.macs / 1e6:6.2f} M MACs  {acc}",
                          time.perf_counter() - start)
        return float(result.val_acc) if done else 0.0

    def _latencies(self, cand: BenchCandidate) -> dict[str, float]:
        model = build(cand.spec).to(self.device)
        return {f"latency_b{b}_ms": measure_latency_ms(model, cand.spec.resolution, self.device, batch=b,
                                                       repeats=10 if b == 1 else 3, warmup=3 if b == 1 else 1)
                for b in LATENCY_BATCHES}


def _worker(config: BenchConfig, worker: int, log: Callable[[str], None] = print,
            trainer: Optional[Callable[..., Any]] = None) -> None:
    queue_worker(config.plan(), worker, config.seed, lambda: BenchRunner(config, log, trainer), (TrainError,),
                 config.timeout)


def _worker_process(config_dict: dict, worker: int, trainer: Optional[Callable[..., Any]] = None) -> None:
    with quiet_interrupt():
        _worker(BenchConfig(**config_dict), worker, trainer=trainer)


def check_bench(config: BenchConfig) -> None:
    """The refusals before the lock: a --data-resolution below the space's input."""
    space = load_space(config.space)
    check_data_resolution(config.data_resolution, space.base.resolution, f"space {space.name}")


def run_bench(config: BenchConfig, log: Callable[[str], None] = print,
              trainer: Optional[Callable[..., Any]] = None) -> optuna.Study:
    """Plan the candidates, open (or resume) the study, train every run not yet done.

    Args:
        config: the benchmark's settings.
        log: where progress lines go.
        trainer: `nas.train.train` (None) or a stand-in with its signature (importable: spawned
            workers get it pickled).
    """
    check_bench(config)
    space = load_space(config.space)
    dataset = config.load_data(space)  # fills the decode cache before workers start
    candidates = config.candidates_of(space, dataset.num_classes)
    runs = planned_runs(candidates)
    plan = config.plan()
    with locked(plan):
        study = open_study(plan, ["maximize"], log)
        waiting = enqueue_missing(study, RUN_KEY, len(runs), lambda i: {"run": i})
        log(f"{'resuming ' if waiting < len(runs) else ''}benchmark {config.name}: {len(candidates)} "
            f"networks of space {space.name} ({len(space.baselines)} references), {len(runs)} runs "
            f"with recipe {config.recipe}; {len(runs) - waiting} done or running, {waiting} to train")
        if waiting:
            worker = _worker_process if trainer is None else functools.partial(_worker_process, trainer=trainer)
            run_workers(worker, config.to_dict(), config.workers, lambda: _worker(config, 0, log, trainer))
    return study
