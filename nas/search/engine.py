"""The search engine: Optuna samplers over a space, the shared trainer as the proxy.

Each trial: sample choices -> spec -> analytic count -> (reject | reuse a duplicate |
proxy-train on the validation split) -> report. Everything a view needs is stored
as trial attributes, so outputs can be rebuilt from the study alone.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
import torch
from optuna.trial import TrialState

from ..builder import build
from ..counting import analytic_count
from ..data import load_dataset
from ..latency import measure_latency_ms
from ..progress import fmt_seconds
from ..recipe import resolve_recipe
from ..train import Runtime, TrainError, train
from ..train.runtime import resolve_device
from .objectives import Objective
from .space import SearchSpace, load_space
from .rundir import RunLock, SearchError, pin_settings, spawn_workers
from .storage import is_file_storage, make_storage, requeue_interrupted

SAMPLERS = ("tpe", "nsga2", "random")
PRUNERS = ("median", "halving", "none")
TRAINED = ("trained", "pruned", "diverged")  # statuses that spent training compute
NON_TRAINING_CAP = 20  # stop after this many rejected/duplicate samples per wanted trial

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own trial lines say more


@dataclass(frozen=True)
class SearchConfig:
    space: str
    dataset: str
    target_macs: int
    out: str
    objective: str = "reward"
    w: float = -0.07
    w_above: Optional[float] = None
    trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    recipe: str = "proxy"
    storage: Optional[str] = None
    study_name: Optional[str] = None
    workers: int = 1
    device: str = "auto"
    data_dir: Optional[str] = None
    data_resolution: Optional[int] = None
    val_fraction: float = 0.1
    latency_batch: int = 1
    timeout: Optional[float] = None  # seconds after which no new trial starts

    # settings that may change between runs of the same search (the rest may not)
    RESUMABLE = ("trials", "workers", "device", "storage", "data_dir", "timeout")

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise SearchError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise SearchError(f"unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}")
        if self.trials < 1 or self.workers < 1:
            raise SearchError("--trials and --workers must be at least 1")

    def objective_fn(self) -> Objective:
        return Objective(self.objective, self.target_macs, self.w, self.w_above)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def name(self) -> str:
        return self.study_name or Path(self.out).resolve().name


def trained_count(study: optuna.Study) -> tuple[int, int]:
    """(trials that trained a candidate, trials that did not: rejected or duplicate)."""
    trained = other = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if t.user_attrs.get("status") in TRAINED:
            trained += 1
        else:
            other += 1
    return trained, other


def make_sampler(name: str, seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)


def make_pruner(name: str, multi_objective: bool, epochs: int) -> optuna.pruners.BasePruner:
    """Early stopping on the per-epoch reward (steps are epochs, from 1). Epoch-1 accuracy of
    a one-cycle proxy is mostly warm-up noise, so nothing is stopped before half the run."""
    if multi_objective or name == "none":
        return optuna.pruners.NopPruner()  # Optuna cannot prune multi-objective trials
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 2))
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(2, math.ceil(epochs / 2)))


class TrialRunner:
    """The Optuna objective: one candidate per call."""

    def __init__(self, config: SearchConfig, space: SearchSpace, worker: int,
                 log: Callable[[str], None]) -> None:
        self.config, self.space, self.worker, self.log = config, space, worker, log
        self.objective = config.objective_fn()
        self.dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                                    resolution=config.data_resolution or space.base.resolution,
                                    val_fraction=config.val_fraction)
        self.recipe = resolve_recipe(config.recipe).replace(seed=config.seed)
        train_images = int(len(self.dataset.split(self.recipe.train_split)) * self.recipe.train_fraction)
        batch = min(self.recipe.batch_size, train_images)
        self.images_per_epoch = train_images // batch * batch  # the trainer drops the last partial batch
        n_gpus = torch.cuda.device_count()
        device = config.device
        if device == "auto" and n_gpus > 1:
            device = f"cuda:{worker % n_gpus}"  # one worker per GPU
        self.device = resolve_device(device)
        self.runtime = Runtime(device=str(self.device), quiet=True)
        self.started = time.perf_counter()

    def __call__(self, trial: optuna.Trial) -> Any:
        start = time.perf_counter()
        params = self.space.suggest(trial)
        spec = self.space.to_spec(params, num_classes=self.dataset.num_classes,
                                  name=f"{self.space.name}-t{trial.number}")
        count = analytic_count(spec)
        arch = spec.arch_string()
        for key, value in (("arch", arch), ("macs", count.macs), ("params", count.params),
                           ("worker", self.worker), ("device", str(self.device))):
            trial.set_user_attr(key, value)
        if self.objective.mode == "hard":
            trial.set_constraint("macs_over_target", float(count.macs - self.objective.target))
        if self.objective.rejects(count.macs):
            trial.set_user_attr("status", "rejected")
            trial.set_user_attr("seconds", time.perf_counter() - start)
            self._say(trial, "rejected", count.macs, None, None, start)
            return self._value(0.0, count.macs)
        previous = self._completed_with(trial.study, arch)
        if previous is not None:
            for key in ("val_acc", "reward", "latency_ms", "epochs"):
                trial.set_user_attr(key, previous.user_attrs.get(key))
            trial.set_user_attr("duplicate_of", previous.number)
            trial.set_user_attr("status", "duplicate")
            trial.set_user_attr("seconds", time.perf_counter() - start)
            self._say(trial, f"duplicate of #{previous.number}", count.macs,
                      previous.user_attrs.get("val_acc"), previous.user_attrs.get("reward"), start)
            return previous.values if len(previous.values) > 1 else previous.values[0]

        model = build(spec).to(self.device)
        trial.set_user_attr("latency_ms", measure_latency_ms(
            model, spec.resolution, self.device, batch=self.config.latency_batch))
        del model

        def report(metrics: dict) -> None:
            acc = metrics["val_acc"]
            if acc is None or self.objective.mode == "pareto":
                return
            reward = self.objective.reward(acc, count.macs)
            trial.report(reward, metrics["epoch"])
            if trial.should_prune():
                self._finish(trial, "pruned", acc, reward, metrics["epoch"], start)
                self._say(trial, f"pruned at epoch {metrics['epoch']}", count.macs, acc, reward, start)
                raise optuna.TrialPruned()

        try:
            result = train(spec, self.dataset, self.recipe, runtime=self.runtime, callback=report)
        except TrainError as exc:
            trial.set_user_attr("status", "failed")
            trial.set_user_attr("error", str(exc))
            self.log(f"trial #{trial.number}: failed: {exc}")
            raise
        acc = result.val_acc if result.status == "completed" and result.val_acc is not None else 0.0
        reward = self.objective.reward(acc, count.macs)
        status = "trained" if result.status == "completed" else "diverged"
        self._finish(trial, status, acc, reward, result.epochs_run, start)
        self._say(trial, status, count.macs, acc, reward, start)
        return self._value(acc if self.objective.mode == "pareto" else reward, count.macs)

    def _value(self, score: float, macs: int) -> Any:
        return (score, float(macs)) if self.objective.mode == "pareto" else score

    def _finish(self, trial: optuna.Trial, status: str, acc: float, reward: float, epochs: int,
                start: float) -> None:
        for key, value in (("status", status), ("val_acc", acc), ("reward", reward), ("epochs", epochs),
                           ("images_seen", epochs * self.images_per_epoch),
                           ("seconds", time.perf_counter() - start)):
            trial.set_user_attr(key, value)

    @staticmethod
    def _completed_with(study: optuna.Study, arch: str) -> Optional[optuna.trial.FrozenTrial]:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if t.user_attrs.get("arch") == arch and t.user_attrs.get("status") in ("trained", "diverged"):
                return t
        return None

    def _say(self, trial: optuna.Trial, status: str, macs: int, acc: Optional[float],
             reward: Optional[float], start: float) -> None:
        trained, _ = trained_count(trial.study)
        done = trained + (1 if status in TRAINED or status.startswith("pruned") else 0)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / max(done, 1) * max(self.config.trials - done, 0) if done else None
        acc_s = f"val {acc * 100:5.2f}%" if acc is not None else "val   -   "
        rew_s = f"reward {reward:.4f}" if reward is not None else ""
        prefix = f"[w{self.worker}] " if self.config.workers > 1 else ""
        self.log(f"{prefix}trial #{trial.number:<3d} {min(done, self.config.trials)}/{self.config.trials} "
                 f"{status:<10s} {macs / 1e6:8.2f} M MACs  {acc_s}  {rew_s}  "
                 f"{time.perf_counter() - start:5.1f}s  elapsed {fmt_seconds(elapsed)}, "
                 f"ETA {fmt_seconds(eta) if eta is not None else '?'}")


def _stop_when_done(config: SearchConfig) -> Callable[[optuna.Study, Any], None]:
    def callback(study: optuna.Study, _trial: Any) -> None:
        trained, other = trained_count(study)
        if trained >= config.trials or other >= NON_TRAINING_CAP * config.trials:
            study.stop()
    return callback


def run_worker(config: SearchConfig, worker: int, log: Callable[[str], None] = print) -> None:
    """Run trials until the study holds `config.trials` trained candidates."""
    space = load_space(config.space)
    objective = config.objective_fn()
    storage = make_storage(config.storage, Path(config.out))
    existing = len(optuna.load_study(study_name=config.name, storage=storage).trials)
    # a fresh seed stream per worker and per resumed session: no repeated random draws
    seed = config.seed + 7919 * worker + 104729 * existing
    study = optuna.load_study(study_name=config.name, storage=storage,
                              sampler=make_sampler(config.sampler, seed, objective.mode == "pareto"),
                              pruner=make_pruner(config.pruner, objective.mode == "pareto",
                                                 resolve_recipe(config.recipe).epochs))
    trained, other = trained_count(study)
    if trained >= config.trials:
        return
    runner = TrialRunner(config, space, worker, log)
    study.optimize(runner, callbacks=[_stop_when_done(config)], catch=(TrainError,),
                   timeout=config.timeout)


def _worker_process(config_dict: dict, worker: int) -> None:
    run_worker(SearchConfig(**config_dict), worker)


def prepare(config: SearchConfig, log: Callable[[str], None] = print) -> optuna.Study:
    """Check the config against the space and any earlier run; create or load the study."""
    out = Path(config.out)
    space = load_space(config.space)
    objective = config.objective_fn()
    dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                           resolution=config.data_resolution or space.base.resolution,
                           val_fraction=config.val_fraction)  # fills the decode cache for workers
    low, high = space.macs_range(dataset.num_classes)
    if objective.target < low:
        raise SearchError(f"target {objective.target:,} MACs is below the smallest candidate of space "
                          f"{space.name}: {low:,} MACs ({low / 1e6:.2f} M); raise --target-macs to at "
                          f"least that, or search a smaller space")
    pin_settings(out, "search.yaml", config.to_dict(), SearchConfig.RESUMABLE, "search")
    storage = make_storage(config.storage, out)
    study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True,
                                directions=objective.directions)
    study.set_user_attr("objective", objective.describe())
    study.set_user_attr("num_classes", dataset.num_classes)  # for best.yaml, without reloading data
    if not study.trials:
        for name, params in space.baseline_params():
            study.enqueue_trial(params, user_attrs={"baseline": name})
        log(f"search {config.name}: space {space.name} ({space.size():.3g} candidates, "
            f"{low / 1e6:.2f}-{high / 1e6:.1f} M MACs), {objective.describe()}; "
            f"{len(space.baselines)} baseline(s) queued first")
    else:
        trained, _ = trained_count(study)
        log(f"resuming search {config.name}: {trained}/{config.trials} candidates trained so far")
    if is_file_storage(config.storage):
        requeued = requeue_interrupted(study)
        if requeued:
            log(f"re-queued interrupted trial(s) {', '.join(f'#{n}' for n in requeued)}")
    return study


def run_search(config: SearchConfig, log: Callable[[str], None] = print) -> optuna.Study:
    """Prepare, run the workers, return the study (outputs are written by the caller)."""
    with RunLock(Path(config.out)):
        study = prepare(config, log)
        if config.workers == 1:
            run_worker(config, 0, log)
        else:
            spawn_workers(_worker_process, config.to_dict(), config.workers)
    return study
