"""The search engine: Optuna samplers over a space, the shared trainer as the proxy.

Each trial: sample choices -> spec -> analytic count -> (reject | reuse a duplicate |
proxy-train on the validation split) -> report. Everything a view needs is stored
as trial attributes, so outputs can be rebuilt from the study alone.

A new study first queues the space's baselines (`--baselines`, nas.search.baselines): by
default each rescaled to the target's MACs. Optuna's enqueued params can only name values
among the space's categorical choices, and a rescaled baseline is rarely such a point (its
stem, head and stage widths fall between them), so it runs as a *fixed-spec trial*: it
records the nearest point of the space as its params (what the sampler learns from) and
carries the net itself in its `fixed_spec` user attribute, which `trial_spec` builds instead
of the params' net. Counting, duplicate detection, training and the reports all go through
that one spec, so a fixed-spec trial is an ordinary trial in every view.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
import torch

from ..costs import Cost, LatencySettings, Target, make_cost, resolve_target
from ..counting import analytic_count
from ..data import load_dataset
from ..data.fit import check_data_resolution, native_resolution_note
from ..evaluators import EvaluatorError, gives_accuracy, resolve_evaluator
from ..latency import LatencyMeter
from ..preflight import check_memory_of
from ..recipe import resolve_recipe
from ..study import (ProgressLine, Status, StudyPlan, buffered, count_statuses, finished_with,
                     load_for_worker, locked, open_study, quiet_interrupt, run_workers, set_attrs)
from ..errors import SearchError
from ..settings import DataSettings, StudySettings
from ..study.storage import STUDY_KEY, default_study_name
from ..train import Runtime, TrainError, train
from ..train.runtime import resolve_device
from .budget_sampler import BudgetAwareSampler
from .baselines import DEFAULT_MODE, LEGACY_MODE, MODES, plan_baselines, trial_spec, with_pinned_mode
from .objectives import Objective
from .prefilter import enqueue_best, prefilter
from .space import SearchSpace, load_space

SAMPLERS = ("tpe", "nsga2", "random")
PRUNERS = ("median", "halving", "none")
TRAINED = Status.spent_training()  # statuses that spent training compute
NON_TRAINING_CAP = 20  # stop after this many rejected/duplicate samples per wanted trial
LATENCY_CACHE = "latency_cache.json"
LATER_DEFAULTS = {"cost": "macs", "target": None, "latency_device": "cpu", "latency_source": "measured",
                  "latency_table": None, "latency_stat": "median",
                  "budget_draws": 256}  # added after search.yaml files existed: left out at these values

TRAINING_EVALUATORS = ("train:", "sotl:")  # evaluators that train: each trial is stored as it goes


@dataclass(frozen=True)
class SearchConfig(StudySettings, DataSettings):
    """Every setting of one search; the fields are also the `nas search` options.

    Only the keys in RESUMABLE may differ when a search is re-run into the same --out.
    """

    space: str
    dataset: str
    target_macs: Optional[int]  # the MACs target (cost macs); None for the other costs
    out: str
    objective: str = "reward"
    w: float = -0.07
    w_above: Optional[float] = None
    trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    baselines: Optional[str] = DEFAULT_MODE  # none | as-is | matched; None: pinned before the option
    recipe: str = "proxy"
    study_name: Optional[str] = None
    data_resolution: Optional[int] = None
    latency_batch: int = 1
    evaluator: Optional[str] = None        # judge candidates with it instead of training (nas.evaluators)
    prefilter: Optional[str] = None        # two-stage: score prefilter_trials candidates, train the best
    prefilter_trials: Optional[int] = None
    cost: str = "macs"  # macs | params | latency (nas.costs)
    target: Optional[float] = None  # the params or latency (ms) target; MACs use target_macs
    latency_device: str = "cpu"
    latency_source: str = "measured"  # measured | predicted (from latency_table)
    latency_table: Optional[str] = None
    latency_stat: str = "median"  # median | min of the timed repeats
    budget_draws: int = 256  # hard budget: redraws of an over-budget sample before it is a trial (0: none)

    # settings that may change between runs of the same search (the rest may not)
    RESUMABLE = ("trials", "workers", "device", "data_dir", "timeout", "download", "heartbeat", "budget_draws")

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise SearchError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise SearchError(f"unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}")
        if self.trials < 1 or self.workers < 1:
            raise SearchError("--trials and --workers must be at least 1")
        if self.budget_draws < 0:
            raise SearchError(f"--budget-draws must be 0 or more, not {self.budget_draws}")
        if self.prefilter_trials is not None and (not self.prefilter or self.prefilter_trials < self.trials):
            raise SearchError("--prefilter-trials needs --prefilter NAME and must be at least --trials")
        if self.evaluator and not gives_accuracy(self.evaluator) and self.objective != "pareto":
            raise SearchError(f"--evaluator {self.evaluator} gives scores, not accuracies (they may be negative), "
                              f"which the reward ACC*(C/T)^w and a hard budget cannot weigh; use --objective pareto")
        if self.baselines is not None and self.baselines not in MODES:
            raise SearchError(f"unknown --baselines {self.baselines!r}; choose one of {', '.join(MODES)}")
        resolve_target(self.cost, None if self.target is None else Target(self.target, self.cost == "latency"),
                       self.target_macs)
        self.latency_settings()  # refuses a predicted source without a table

    def latency_settings(self) -> LatencySettings:
        """How latency is measured or predicted (the latency cost, and latency_ms for reports)."""
        return LatencySettings(self.latency_device, self.latency_batch, self.latency_source, self.latency_table,
                               self.latency_stat)

    def cost_fn(self, cached: bool = True) -> Cost:
        """The cost searched with; measured latencies are cached in OUT/latency_cache.json
        (`cached=False`: nothing written, for the checks made before the folder's lock)."""
        return make_cost(self.cost, self.latency_settings(), Path(self.out) / LATENCY_CACHE if cached else None)

    def objective_fn(self, cached: bool = True) -> Objective:
        """The Objective (reward, hard or pareto) these settings describe."""
        target = self.target_macs if self.cost == "macs" else self.target
        return Objective(self.objective, target, self.w, self.w_above, self.cost_fn(cached))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what is pinned in search.yaml). The cost settings are left out at
        their defaults, and `baselines` when it is None (a run pinned before --baselines existed,
        see `baselines.with_pinned_mode`), so older folders resume unchanged."""
        d = dataclasses.asdict(self)
        if self.baselines is None:
            del d["baselines"]
        return {k: v for k, v in d.items() if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}

    @property
    def name(self) -> str:
        """The study's name in its storage (default: see `default_study_name`)."""
        return self.study_name or default_study_name(Path(self.out), self.storage, "search.yaml")

    def plan(self) -> StudyPlan:
        """Where the study lives and what is pinned (the shared study core's view)."""
        settings = {**self.to_dict(), STUDY_KEY: self.name}
        return StudyPlan(Path(self.out), self.name, self.storage, settings, (*self.RESUMABLE, STUDY_KEY),
                         "search.yaml", "search", self.heartbeat)


def trained_count(study: optuna.Study) -> tuple[int, int]:
    """(trials that trained a candidate, trials that did not: rejected or duplicate)."""
    trained = count_statuses(study, TRAINED)
    other = count_statuses(study, (Status.REJECTED.value, Status.DUPLICATE.value))
    return trained, other


def make_sampler(name: str, seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called `name` (tpe, nsga2 or random), seeded."""
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
    """The Optuna objective: one candidate per call.

    Each call: sample -> spec -> analytic count -> reject (hard budget) | reuse a finished
    trial of the same network (canonical key) | proxy-train on the validation split.
    """

    def __init__(self, config: SearchConfig, space: SearchSpace, worker: int,
                 log: Callable[[str], None], trainer: Optional[Callable[..., Any]] = None) -> None:
        self.config, self.space, self.worker, self.log = config, space, worker, log
        self.trainer = trainer or train  # looked up now: a test's fake replaces the module's `train`
        self.objective = config.objective_fn()
        self.cost = self.objective.cost
        self.dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                                    resolution=config.data_resolution or space.base.resolution,
                                    val_fraction=config.val_fraction, download=config.download)
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
        # latency_ms of trained candidates: on the latency device for a latency search (where the
        # cost's own measurements are cached), else on the training device as before
        self.meter = (self.cost.meter if config.cost == "latency"
                      else LatencyMeter(str(self.device), config.latency_batch, Path(config.out) / LATENCY_CACHE,
                                        config.latency_stat))
        prefix = f"[w{worker}] " if config.workers > 1 else ""
        self.progress = ProgressLine(config.trials, log, prefix=f"{prefix}trial ")
        self.evaluator = resolve_evaluator(config.evaluator, str(self.device)) if config.evaluator else None

    def __call__(self, trial: optuna.Trial) -> Any:
        start = time.perf_counter()
        spec = trial_spec(self.space, trial.user_attrs, self.space.suggest(trial),
                          self.dataset.num_classes, f"{self.space.name}-t{trial.number}")
        count = analytic_count(spec)
        cost = self.cost.of(spec)  # MACs, params or latency: what the objective weighs
        set_attrs(trial, arch=spec.arch_string(), key=spec.canonical_string(), macs=count.macs,
                  params=count.params, cost=cost, worker=self.worker, device=str(self.device))
        if self.objective.mode == "hard":
            trial.set_constraint(f"{self.cost.kind}_over_target", float(cost - self.objective.target))
        if self.objective.rejects(cost):
            set_attrs(trial, status=Status.REJECTED, seconds=time.perf_counter() - start)
            self._say(trial, "rejected", count.macs, None, None, start)
            return self._value(0.0, cost)
        previous = finished_with(trial.study, spec.canonical_string(),
                                 (Status.TRAINED.value, Status.DIVERGED.value))
        if previous is not None:
            return self._reuse(trial, previous, count.macs, start)
        if self.evaluator is not None:
            return self._score(trial, spec, count.macs, cost, start)
        return self._train(trial, spec, count.macs, cost, start)

    def _score(self, trial: optuna.Trial, spec, macs: int, cost: float, start: float) -> Any:
        """--evaluator: its score takes the place of the proxy's validation accuracy."""
        try:
            score = self.evaluator.score(spec, self.dataset, "val", self.config.seed)
        except EvaluatorError as exc:  # e.g. a baseline wider than the supernet it is judged with
            set_attrs(trial, status=Status.REJECTED, error=str(exc), seconds=time.perf_counter() - start)
            self.log(f"trial #{trial.number}: not judged: {exc}")
            return self._value(0.0, cost)
        reward = self.objective.reward(score.value, cost)
        set_attrs(trial, evaluator=self.evaluator.name, evaluator_seconds=score.seconds)
        self._finish(trial, Status.TRAINED, score.value, reward, int(score.details.get("epochs", 0)), start)
        self._say(trial, Status.TRAINED.value, macs, score.value, reward, start)
        return self._value(score.value if self.objective.mode == "pareto" else reward, cost)

    def _reuse(self, trial: optuna.Trial, previous: optuna.trial.FrozenTrial, macs: int,
               start: float) -> Any:
        set_attrs(trial, **{k: previous.user_attrs.get(k) for k in ("val_acc", "reward", "latency_ms", "epochs")})
        set_attrs(trial, duplicate_of=previous.number, status=Status.DUPLICATE,
                  seconds=time.perf_counter() - start)
        self._say(trial, f"duplicate of #{previous.number}", macs,
                  previous.user_attrs.get("val_acc"), previous.user_attrs.get("reward"), start)
        return previous.values if len(previous.values) > 1 else previous.values[0]

    def _train(self, trial: optuna.Trial, spec, macs: int, cost: float, start: float) -> Any:
        trial.set_user_attr("latency_ms", self.meter.measure(spec))
        try:
            result = self.trainer(spec, self.dataset, self.recipe, runtime=self.runtime,
                           callback=self._pruning_callback(trial, macs, cost, start))
        except TrainError as exc:
            set_attrs(trial, status=Status.FAILED, error=str(exc))
            self.log(f"trial #{trial.number}: failed: {exc}")
            raise
        acc = result.val_acc if result.status == "completed" and result.val_acc is not None else 0.0
        reward = self.objective.reward(acc, cost)
        status = Status.TRAINED if result.status == "completed" else Status.DIVERGED
        self._finish(trial, status, acc, reward, result.epochs_run, start)
        self._say(trial, status.value, macs, acc, reward, start)
        return self._value(acc if self.objective.mode == "pareto" else reward, cost)

    def _pruning_callback(self, trial: optuna.Trial, macs: int, cost: float,
                          start: float) -> Callable[[dict], None]:
        def report(metrics: dict) -> None:
            acc = metrics["val_acc"]
            if acc is None or self.objective.mode == "pareto":
                return
            reward = self.objective.reward(acc, cost)
            trial.report(reward, metrics["epoch"])
            if trial.should_prune():
                self._finish(trial, Status.PRUNED, acc, reward, metrics["epoch"], start)
                self._say(trial, f"pruned at epoch {metrics['epoch']}", macs, acc, reward, start)
                raise optuna.TrialPruned()
        return report

    def _value(self, score: float, cost: float) -> Any:
        return (score, float(cost)) if self.objective.mode == "pareto" else score

    def _finish(self, trial: optuna.Trial, status: Status, acc: float, reward: float, epochs: int,
                start: float) -> None:
        set_attrs(trial, status=status, val_acc=acc, reward=reward, epochs=epochs,
                  images_seen=epochs * self.images_per_epoch, seconds=time.perf_counter() - start)

    def _say(self, trial: optuna.Trial, status: str, macs: int, acc: Optional[float],
             reward: Optional[float], start: float) -> None:
        trained, _ = trained_count(trial.study)
        done = trained + (1 if status in TRAINED or status.startswith("pruned") else 0)
        acc_s = f"val {acc * 100:5.2f}%" if acc is not None else "val   -   "
        rew_s = f"reward {reward:.4f}" if reward is not None else ""
        cost_s = "" if self.cost.kind == "macs" else f"{self.cost.fmt(trial.user_attrs['cost']):>10s}  "
        self.progress.say(done, f"#{trial.number:<3d} {status:<10s} {macs / 1e6:8.2f} M MACs  "
                                f"{cost_s}{acc_s}  {rew_s}", time.perf_counter() - start)


def _stop_when_done(config: SearchConfig) -> Callable[[optuna.Study, Any], None]:
    def callback(study: optuna.Study, _trial: Any) -> None:
        trained, other = trained_count(study)
        if trained >= config.trials or other >= NON_TRAINING_CAP * config.trials:
            study.stop()
    return callback


def wants_budget_sampler(config: SearchConfig, objective: Objective) -> bool:
    """A hard budget on a cost counted in microseconds (MACs, params, a latency table) redraws
    over-budget samples before they become trials; a measured latency would time every draw."""
    cheap = config.cost != "latency" or config.latency_source == "predicted"
    return objective.mode == "hard" and config.budget_draws > 0 and cheap


def _params_cost(space: SearchSpace, cost: Cost, num_classes: int) -> Callable[[dict], float]:
    return lambda params: cost.of(space.to_spec(params, num_classes))


def run_worker(config: SearchConfig, worker: int, log: Callable[[str], None] = print,
               trainer: Optional[Callable[..., Any]] = None, space: Optional[SearchSpace] = None) -> None:
    """Run trials until the study holds `config.trials` trained candidates, training with `trainer`
    (`space`: the loaded `config.space`, when the caller has it)."""
    space = space or load_space(config.space)
    objective = config.objective_fn()
    plan = config.plan()
    first = load_for_worker(plan, optuna.samplers.RandomSampler())
    if trained_count(first)[0] >= config.trials:
        return  # done: nothing to load (the data, an evaluator's supernet)
    # a fresh seed stream per worker and per resumed session: no repeated random draws
    seed = config.seed + 7919 * worker + 104729 * len(first.trials)
    runner = TrialRunner(config, space, worker, log, trainer)
    sampler = make_sampler(config.sampler, seed, objective.mode == "pareto")
    if wants_budget_sampler(config, objective):
        sampler = BudgetAwareSampler(sampler, space, _params_cost(space, objective.cost, runner.dataset.num_classes),
                                     objective.target, config.budget_draws, seed)
    study = load_for_worker(plan, sampler, make_pruner(config.pruner, objective.mode == "pareto",
                                                       resolve_recipe(config.recipe).epochs))
    trained, _ = trained_count(study)
    if trained >= config.trials:
        return
    # Optuna logs a failed or interrupted trial with its traceback at WARNING; our own trial
    # lines already say it in one line, and Ctrl-C must not print a traceback
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cheap = config.evaluator is not None and not config.evaluator.startswith(TRAINING_EVALUATORS)
    try:
        with (buffered(study, plan) if cheap and config.workers == 1 else
              contextlib.nullcontext((study, lambda _s, _t: None))) as (active, flush):
            active.optimize(runner, callbacks=[_stop_when_done(config), flush], catch=(TrainError,),
                            timeout=config.timeout)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if isinstance(sampler, BudgetAwareSampler) and sampler.draws:
        log(sampler.summary())


def _worker_process(config_dict: dict, worker: int, trainer: Optional[Callable[..., Any]] = None) -> None:
    with quiet_interrupt():
        run_worker(SearchConfig(**config_dict), worker, trainer=trainer)


def prepare(config: SearchConfig, log: Callable[[str], None] = print,
            space: Optional[SearchSpace] = None) -> optuna.Study:
    """Check the config against the space and any earlier run; create or load the study."""
    space = space or load_space(config.space)
    objective = config.objective_fn()
    dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                           resolution=config.data_resolution or space.base.resolution,
                           val_fraction=config.val_fraction,
                           download=config.download)  # fills the decode cache for workers
    low, high = space.macs_range(dataset.num_classes)
    note = native_resolution_note(dataset, space.base.resolution)
    if note:
        log(note)
    check_target(config, space, dataset.num_classes)
    study = open_study(config.plan(), objective.directions, log)
    study.set_user_attr("objective", objective.describe())
    study.set_user_attr("num_classes", dataset.num_classes)  # for best.yaml, without reloading data
    study.set_user_attr("val_images", len(dataset.val))  # the summary's noise floor
    if not study.trials:
        # scored before anything is queued: a run killed while scoring starts it over when resumed
        scored = prefilter(space, dataset, resolve_evaluator(config.prefilter, config.device),
                           config.prefilter_trials or 10 * config.trials, objective, config.seed,
                           log) if config.prefilter else []
        mode = config.baselines or LEGACY_MODE
        queued = plan_baselines(space, mode, objective, dataset.num_classes, log)
        for baseline in queued:
            study.enqueue_trial(baseline.params, user_attrs=baseline.user_attrs())
        if config.prefilter:
            enqueue_best(study, scored, max(0, config.trials - len(queued)), config.prefilter)
        log(f"search {config.name}: space {space.name} ({space.size():.3g} candidates, "
            f"{low / 1e6:.2f}-{high / 1e6:.1f} M MACs), {objective.describe()}; "
            f"{len(queued)} baseline(s) queued first (--baselines {mode})")
        for baseline in queued:
            log(f"  baseline {baseline.describe()}")
    else:
        trained, _ = trained_count(study)
        log(f"resuming search {config.name}: {trained}/{config.trials} candidates trained so far")
    return study


def check_target(config: SearchConfig, space: SearchSpace, num_classes: int) -> None:
    """Refuse a MACs target outside what the space can build (params and latency targets are
    not bounded by the space's MACs)."""
    if config.cost != "macs":
        return
    low, high = space.macs_range(num_classes)
    target = config.target_macs
    if target < low:
        raise SearchError(f"target {target:,} MACs is below the smallest candidate of space "
                          f"{space.name}: {low:,} MACs ({low / 1e6:.2f} M); raise --target-macs to at "
                          f"least that, or search a smaller space")
    if target > high:
        raise SearchError(f"target {target:,} MACs is above the largest candidate of space "
                          f"{space.name}: {high:,} MACs ({high / 1e6:.2f} M); lower --target-macs to at "
                          f"most that, or search a larger space")


def check_search(config: SearchConfig, space: SearchSpace) -> None:
    """The refusals a search makes before its folder lock (nas.preflight): a --data-resolution
    below the space's input, and a baseline (trained first, always) too big for the memory
    of the device at the recipe's batch. Sampled candidates may be larger; one that runs out of
    GPU memory fails as a trial and the search goes on."""
    check_data_resolution(config.data_resolution, space.base.resolution, f"space {space.name}")
    for name in (config.evaluator, config.prefilter):
        if name:
            resolve_evaluator(name)  # an unknown name is refused before the lock
    check_target(config, space, space.base.num_classes)  # before the baselines are matched to it
    queued = plan_baselines(space, config.baselines or LEGACY_MODE, config.objective_fn(cached=False),
                            space.base.num_classes, log=lambda _line: None)
    check_memory_of([b.spec for b in queued], resolve_recipe(config.recipe).batch_size, config.device)


def run_search(config: SearchConfig, log: Callable[[str], None] = print,
               trainer: Optional[Callable[..., Any]] = None) -> optuna.Study:
    """Check, prepare, run the workers, return the study (outputs are written by the caller).

    Args:
        config: the search's settings.
        log: where progress lines go.
        trainer: `nas.train.train` or a stand-in with its signature; spawned workers get it
            pickled, so it must be importable (a module-level function or class instance).
    """
    config = with_pinned_mode(config, log)  # reads the folder only: the check sees what will run
    check_search(config, load_space(config.space))  # before the lock: a refusal creates no folder
    return search_locked(config, log, trainer)


def search_locked(config: SearchConfig, log: Callable[[str], None] = print,
                  trainer: Optional[Callable[..., Any]] = None, space: Optional[SearchSpace] = None) -> optuna.Study:
    """The search after its checks: the folder's lock, the study, the workers."""
    with locked(config.plan()):
        study = prepare(config, log, space)
        worker = _worker_process if trainer is None else functools.partial(_worker_process, trainer=trainer)
        run_workers(worker, config.to_dict(), config.workers, lambda: run_worker(config, 0, log, trainer, space))
    return study
