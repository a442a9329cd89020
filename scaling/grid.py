"""Grid search of (alpha, beta, gamma) at phi = 1, as a resumable Optuna study.

Each admissible point grows the base by depth alpha, width beta and resolution
gamma with the real rounding rules, records the realised MACs ratio next to the
nominal alpha*beta^2*gamma^2, proxy-trains it on the validation split and ranks by
validation accuracy. Points that round to the same network reuse one training.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from nas.counting import analytic_count
from nas.data import load_dataset
from nas.presets import resolve_spec
from nas.progress import fmt_seconds
from nas.recipe import resolve_recipe
from nas.rounding import round_resolution, scale_spec
from nas.search.rundir import RunLock, pin_settings, spawn_workers
from nas.search.storage import is_file_storage, make_storage, requeue_interrupted
from nas.spec import ArchSpec
from nas.train import Runtime, TrainError, train
from nas.train.runtime import resolve_device

from .coefficients import TARGET_FACTOR, Coefficients, admissible_grid

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class GridConfig:
    base: str
    dataset: str
    out: str
    step: float = 0.05
    tolerance: float = 0.1
    closest: Optional[int] = None
    alpha_max: float = 2.0
    beta_max: float = 1.5
    gamma_max: float = 1.5
    recipe: str = "proxy"
    seed: int = 0
    storage: Optional[str] = None
    study_name: Optional[str] = None
    workers: int = 1
    device: str = "auto"
    data_dir: Optional[str] = None
    val_fraction: float = 0.1
    resolution_multiple: int = 8
    timeout: Optional[float] = None  # seconds after which no new point starts

    RESUMABLE = ("workers", "device", "storage", "data_dir", "timeout")

    @property
    def name(self) -> str:
        return self.study_name or f"{Path(self.out).resolve().name}-grid"

    def points(self) -> list[Coefficients]:
        return admissible_grid(self.step, self.tolerance, self.alpha_max, self.beta_max,
                               self.gamma_max, self.closest)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def grow(base: ArchSpec, c: Coefficients, multiple: int = 8) -> ArchSpec:
    """The base at phi = 1 under coefficients c, with the real rounding rules."""
    return scale_spec(base, depth=c.alpha, width=c.beta,
                      resolution=round_resolution(base.resolution * c.gamma, multiple),
                      name=f"{base.name}-a{c.alpha:g}-b{c.beta:g}-g{c.gamma:g}")


class GridRunner:
    def __init__(self, config: GridConfig, log: Callable[[str], None]) -> None:
        self.config, self.log = config, log
        self.base = resolve_spec(config.base)
        self.points = config.points()
        self.dataset = load_dataset(config.dataset, data_dir=config.data_dir,
                                    resolution=self.base.resolution, val_fraction=config.val_fraction)
        self.base = self.base.replace(num_classes=self.dataset.num_classes)
        self.base_macs = analytic_count(self.base).macs
        self.recipe = resolve_recipe(config.recipe).replace(seed=config.seed)
        self.runtime = Runtime(device=str(resolve_device(config.device)), quiet=True)
        self.started = time.perf_counter()

    def __call__(self, trial: optuna.Trial) -> float:
        start = time.perf_counter()
        c = self.points[trial.suggest_categorical("point", list(range(len(self.points))))]
        spec = grow(self.base, c, self.config.resolution_multiple)
        count = analytic_count(spec)
        key = f"{spec.arch_string()}|{spec.resolution}|{spec.stem.channels}|{spec.head.channels}"
        attrs = {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "factor": c.factor,
                 "resolution": spec.resolution, "macs": count.macs, "params": count.params,
                 "realised_ratio": count.macs / self.base_macs, "key": key}
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        twin = next((t for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                     if t.user_attrs.get("key") == key and t.user_attrs.get("status") == "trained"), None)
        if twin is not None:
            acc = twin.user_attrs["val_acc"]
            for k, v in (("val_acc", acc), ("status", "same-network"), ("same_as", twin.number),
                         ("seconds", time.perf_counter() - start)):
                trial.set_user_attr(k, v)
        else:
            try:
                result = train(spec, self.dataset, self.recipe, runtime=self.runtime)
            except TrainError as exc:
                trial.set_user_attr("status", "failed")
                trial.set_user_attr("error", str(exc))
                raise
            acc = result.val_acc if result.status == "completed" and result.val_acc is not None else 0.0
            for k, v in (("val_acc", acc), ("status", "trained" if result.status == "completed" else "diverged"),
                         ("train_seconds", result.train_seconds), ("seconds", time.perf_counter() - start),
                         ("images_seen", result.images_seen)):
                trial.set_user_attr(k, v)
        done = len(trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) + 1
        total = len(self.points)
        elapsed = time.perf_counter() - self.started
        self.log(f"grid point {min(done, total)}/{total}  alpha {c.alpha:.2f} beta {c.beta:.2f} gamma "
                 f"{c.gamma:.2f}  ({c.factor:.3f} nominal, {attrs['realised_ratio']:.3f} realised, "
                 f"{spec.resolution}px)  val {acc * 100:5.2f}%  {time.perf_counter() - start:5.1f}s  "
                 f"elapsed {fmt_seconds(elapsed)}, ETA {fmt_seconds(elapsed / max(done, 1) * (total - done))}")
        return acc


class ResumableGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, tolerant of re-queued trials: a trial that a killed run left
    behind is enqueued again with its point as a fixed parameter and no grid id, which
    the stock `after_trial` does not expect (KeyError) when one grid point is left."""

    def after_trial(self, study, trial, state, values) -> None:
        if "grid_id" in study._storage.get_trial_system_attrs(trial._trial_id):
            super().after_trial(study, trial, state, values)
        elif not self._get_unvisited_grid_ids(study):
            study.stop()


def _worker(config: GridConfig, worker: int, log: Callable[[str], None] = print) -> None:
    runner = GridRunner(config, log)
    storage = make_storage(config.storage, Path(config.out))
    sampler = ResumableGridSampler({"point": list(range(len(runner.points)))},
                                   seed=config.seed + 7919 * worker)
    study = optuna.load_study(study_name=config.name, storage=storage, sampler=sampler)
    if _remaining(study, len(runner.points)) == 0:
        return
    study.optimize(runner, catch=(TrainError,), timeout=config.timeout)


def _worker_process(config_dict: dict, worker: int) -> None:
    _worker(GridConfig(**config_dict), worker)


def _remaining(study: optuna.Study, n_points: int) -> int:
    done = {t.params.get("point") for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    return n_points - len(done)


def run_grid(config: GridConfig, log: Callable[[str], None] = print) -> optuna.Study:
    out = Path(config.out)
    points = config.points()
    resolve_spec(config.base)
    with RunLock(out):
        pin_settings(out, "grid.yaml", config.to_dict(), GridConfig.RESUMABLE, "grid")
        storage = make_storage(config.storage, out)
        study = optuna.create_study(study_name=config.name, storage=storage, load_if_exists=True,
                                    direction="maximize")
        remaining = _remaining(study, len(points))
        if remaining < len(points):
            log(f"resuming grid {config.name}: {len(points) - remaining}/{len(points)} points done")
        else:
            log(f"grid {config.name}: {len(points)} admissible points (|alpha*beta^2*gamma^2 - 2| <= "
                f"{config.tolerance}, step {config.step}) on base {config.base}")
        if is_file_storage(config.storage):
            requeue_interrupted(study)
        if remaining:
            if config.workers == 1:
                _worker(config, 0, log)
            else:
                spawn_workers(_worker_process, config.to_dict(), config.workers)
    return study


def grid_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per grid point (a point run twice by racing workers counts once), best first."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        rows.append({"trial": t.number, "point": t.params.get("point"), **{k: t.user_attrs.get(k) for k in (
            "alpha", "beta", "gamma", "factor", "resolution", "macs", "params", "realised_ratio",
            "val_acc", "status", "same_as", "seconds")}})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.drop_duplicates("point").sort_values(["val_acc", "macs"], ascending=[False, True])
    df.insert(0, "rank", range(1, len(df) + 1))
    return df


def write_grid_outputs(study: optuna.Study, config: GridConfig) -> Optional[dict]:
    out = Path(config.out)
    df = grid_frame(study)
    df.to_csv(out / "grid.csv", index=False)
    if df.empty:
        return None
    best = df.iloc[0]
    chosen = {"alpha": float(best["alpha"]), "beta": float(best["beta"]), "gamma": float(best["gamma"]),
              "factor": round(float(best["factor"]), 4), "realised_ratio": round(float(best["realised_ratio"]), 4),
              "val_acc": float(best["val_acc"]), "base": config.base, "dataset": config.dataset,
              "recipe": config.recipe, "points": int(len(df)),
              "note": "ranked by validation accuracy of the proxy recipe; the realised MACs ratio of "
                      "each point is in grid.csv"}
    (out / "best_coefficients.yaml").write_text(yaml.safe_dump(chosen, sort_keys=False))
    _plot(out / "grid.png", df)
    return chosen


def _plot(path: Path, df: pd.DataFrame) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = df.sort_values(["alpha", "beta", "gamma"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    labels = [f"{a:g}/{b:g}/{g:g}" for a, b, g in zip(ordered["alpha"], ordered["beta"], ordered["gamma"])]
    best = df.iloc[0]
    colors = ["tab:red" if (r["alpha"], r["beta"], r["gamma"]) == (best["alpha"], best["beta"], best["gamma"])
              else "tab:blue" for _, r in ordered.iterrows()]
    ax1.bar(range(len(ordered)), ordered["val_acc"] * 100, color=colors)
    ax1.set_xticks(range(len(ordered)))
    ax1.set_xticklabels(labels, rotation=90, fontsize=6 if len(ordered) > 30 else 8)
    low = max(0, ordered["val_acc"].min() * 100 - 5)
    ax1.set_ylim(low, min(100, ordered["val_acc"].max() * 100 + 2))
    ax1.set_ylabel("validation accuracy (%)")
    ax1.set_title("accuracy per grid point (alpha/beta/gamma), best in red")
    sc = ax2.scatter(ordered["realised_ratio"], ordered["val_acc"] * 100, c=ordered["alpha"], cmap="viridis")
    ax2.axvline(TARGET_FACTOR, color="k", ls="--", lw=1, label="nominal 2x")
    ax2.set_xlabel("realised MACs ratio to the base")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.legend(fontsize=8)
    fig.colorbar(sc, ax=ax2, label="alpha (depth)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
