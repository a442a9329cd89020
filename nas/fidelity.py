"""Proxy fidelity: does the search's short proxy rank candidates like a longer recipe?

The top-K and K random trained candidates of a finished search are retrained with the long
recipe (same seeds for all); Kendall tau and Spearman rho between the proxy's and the long
recipe's rankings come with bootstrap intervals over candidates, and the proxy's own seed
noise is measured by retraining one candidate with the proxy under several seeds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import optuna
import pandas as pd

from .atomic import save_figure, write_csv, write_text
from .compare import compare, fit_of
from .data import Dataset, load_dataset
from .errors import NasError
from .preflight import check_before_training, check_memory_of, to_stderr, training_batch
from .recipe import Recipe, resolve_recipe
from .search.baselines import trial_spec
from .search.engine import SearchConfig
from .search.report import trials_frame
from .search.space import load_space
from .spec import ArchSpec
from .stats import rank_agreement, t_interval
from .study import make_storage
from .study.rundir import config_from_pinned
from .study.storage import STUDY_KEY
from .tables import markdown_table
from .train import Runtime
from .train.runfolder import Fit, FitOf, refusal


@dataclass(frozen=True)
class FidelityPlan:
    """What to retrain.

    Args:
        top: the K best candidates by proxy validation accuracy.
        random: K more drawn at random from the other trained candidates.
        recipe: the long recipe.
        seeds: its seeds (the same for every candidate).
        noise_seeds: seeds of the proxy retrained on the proxy's best candidate.
        seed: seed of the random draw.
    """

    top: int = 5
    random: int = 5
    recipe: str = "full"
    seeds: tuple[int, ...] = (0,)
    noise_seeds: int = 3
    seed: int = 0


def load_search(search_dir: Path) -> tuple[SearchConfig, optuna.Study]:
    """A finished search's config and study, from its run folder."""
    settings = search_dir / "search.yaml"
    if not settings.is_file():
        raise NasError(f"{search_dir} is not a search run folder (no search.yaml); give the --out of `nas search`")
    config = config_from_pinned(SearchConfig, settings, ignored=(STUDY_KEY,), out=str(search_dir))
    study = optuna.load_study(study_name=config.name, storage=make_storage(config.storage, search_dir))
    return config, study


def pick_candidates(study: optuna.Study, plan: FidelityPlan) -> pd.DataFrame:
    """Distinct trained candidates: the top K by proxy accuracy and K random others."""
    df = trials_frame(study)
    df = df[(df["status"] == "trained") & df["val_acc"].notna()].drop_duplicates("arch")
    df = df.sort_values("val_acc", ascending=False)
    if len(df) < 3:
        raise NasError(f"the search has {len(df)} distinct trained candidates; fidelity needs at least 3")
    top = df.head(plan.top)
    rest = df.iloc[plan.top:]
    rng = np.random.default_rng(plan.seed)
    picked = rest.iloc[sorted(rng.choice(len(rest), size=min(plan.random, len(rest)), replace=False))]
    return pd.concat([top.assign(picked="top"), picked.assign(picked="random")])


@dataclass(frozen=True)
class FidelityInputs:
    """What a fidelity run retrains, read from a finished search before anything is written.

    Args:
        search_dir: the search's run folder.
        config: the search's settings (its data set, proxy recipe, ...).
        dataset: the search's data set, loaded as the search loaded it.
        candidates: the picked trials (`pick_candidates`).
        models: (name, spec) of each picked candidate, in the candidates' order.
    """

    search_dir: Path
    config: SearchConfig
    dataset: Dataset
    candidates: pd.DataFrame
    models: list[tuple[str, ArchSpec]]


def fidelity_inputs(search_dir: Path, plan: FidelityPlan) -> FidelityInputs:
    """Load a finished search, its data set and the candidates `plan` picks (nothing is written)."""
    config, study = load_search(search_dir)
    space = load_space(config.space)
    dataset = load_dataset(config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction,
                           resolution=config.data_resolution or space.base.resolution)
    candidates = pick_candidates(study, plan)
    classes = study.user_attrs["num_classes"]
    trials = [study.trials[int(n)] for n in candidates["number"]]
    models = [(f"t{t.number}", trial_spec(space, t.user_attrs, t.params, classes, f"t{t.number}"))
              for t in trials]
    return FidelityInputs(search_dir, config, dataset, candidates, models)


def check_fidelity(inputs: FidelityInputs, plan: FidelityPlan, device: str,
                   warn: Callable[[str], None] = to_stderr) -> None:
    """The checks before retraining (nas.preflight): every candidate under the long recipe's
    batch, and the proxy's best under the proxy's batch when its seed noise is measured."""
    specs = [spec for _, spec in inputs.models]
    check_before_training(specs, inputs.dataset, resolve_recipe(plan.recipe), device,
                          inputs.config.data_resolution, warn)
    if plan.noise_seeds >= 2:
        proxy = resolve_recipe(inputs.config.recipe)
        check_memory_of(specs[:1], training_batch(proxy, inputs.dataset), device)


def fidelity_fit(inputs: FidelityInputs, plan: FidelityPlan) -> FitOf:
    """How this fidelity run fits a folder (`nas.train.runfolder.choose_out`): its long runs
    and its proxy-noise runs together."""
    long_runs = fit_of(inputs.models, inputs.dataset, resolve_recipe(plan.recipe), plan.seeds, "long")
    noise_runs = fit_of(inputs.models[:1], inputs.dataset, resolve_recipe(inputs.config.recipe),
                        list(range(plan.noise_seeds)) if plan.noise_seeds >= 2 else [], "proxy-noise")

    def fit(out: Path) -> Fit:
        a, b = long_runs(out), noise_runs(out)
        return Fit(a.conflict or b.conflict, a.matched + b.matched)
    return fit


def run_fidelity(inputs: FidelityInputs, plan: FidelityPlan, out: Optional[Path] = None,
                 runtime: Runtime = Runtime(quiet=True), log: Callable[[str], None] = print) -> dict:
    """Retrain, rank, and write fidelity.csv/.md/.png/.json into `out` (default SEARCH_DIR/fidelity)."""
    out = out or inputs.search_dir / "fidelity"
    config, dataset, models = inputs.config, inputs.dataset, inputs.models
    long_recipe = resolve_recipe(plan.recipe)
    metric = "val_acc" if long_recipe.train_split == "train" else "test_acc"
    conflict = fidelity_fit(inputs, plan)(out).conflict
    if conflict:  # found before anything trains
        raise refusal(conflict, out, force_hint=False)
    long_runs = compare(models, dataset, long_recipe, out / "long", plan.seeds, runtime, log)
    noise = proxy_noise(models[0], dataset, resolve_recipe(config.recipe), plan.noise_seeds, out, runtime, log)
    table = fidelity_table(inputs.candidates, long_runs, metric)
    agreement = rank_agreement(table["proxy_val_acc"], table["long_acc"])
    summary = {"search": str(inputs.search_dir), "proxy_recipe": config.recipe, "long_recipe": long_recipe.name,
               "long_metric": metric, "candidates": len(table), "seeds": list(plan.seeds),
               **agreement.to_dict(), "proxy_seed_sd_pts": noise}
    write_fidelity(out, table, summary)
    return summary


def proxy_noise(model: tuple[str, ArchSpec], dataset, recipe: Recipe, seeds: int, out: Path,
                runtime: Runtime, log: Callable[[str], None]) -> Optional[float]:
    """Standard deviation (points) of the proxy's validation accuracy over `seeds` seeds of one net."""
    if seeds < 2:
        return None
    runs = compare([model], dataset, recipe, out / "proxy-noise", list(range(seeds)), runtime, log)
    iv = t_interval(runs["val_acc"])
    return None if iv.sd is None else round(iv.sd * 100, 3)


def fidelity_table(candidates: pd.DataFrame, long_runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per candidate: proxy accuracy and rank, long-recipe mean ± std and rank."""
    long = long_runs.groupby("model", sort=False)[metric].agg(["mean", "std"])
    rows = []
    for _, r in candidates.iterrows():
        name = f"t{int(r['number'])}"
        rows.append({"candidate": name, "picked": r["picked"], "arch": r["arch"], "macs": r["macs"],
                     "proxy_val_acc": r["val_acc"], "long_acc": long.at[name, "mean"],
                     "long_std": long.at[name, "std"]})
    table = pd.DataFrame(rows)
    table["proxy_rank"] = table["proxy_val_acc"].rank(ascending=False, method="min").astype(int)
    table["long_rank"] = table["long_acc"].rank(ascending=False, method="min").astype(int)
    return table


def describe(summary: dict) -> str:
    """One sentence: tau and rho with their intervals, and the proxy's seed noise."""
    def iv(low, high):
        return "" if low is None else f" [95 % bootstrap {low:.2f}, {high:.2f}]"
    noise = (f"; proxy seed noise ±{summary['proxy_seed_sd_pts']:.2f} pts (sd)"
             if summary.get("proxy_seed_sd_pts") is not None else "")
    return (f"proxy `{summary['proxy_recipe']}` vs `{summary['long_recipe']}` over {summary['candidates']} "
            f"candidates: Kendall tau {summary['tau']:.2f}{iv(summary['tau_low'], summary['tau_high'])}, "
            f"Spearman rho {summary['rho']:.2f}{iv(summary['rho_low'], summary['rho_high'])}{noise}")


def write_fidelity(out: Path, table: pd.DataFrame, summary: dict) -> None:
    """fidelity.csv, fidelity.json, fidelity.md and fidelity.png."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "fidelity.csv", table)
    write_text(out / "fidelity.json", json.dumps(summary, indent=2))
    rows = [[r["candidate"], r["picked"], f"{r['macs'] / 1e6:.2f}", f"{r['proxy_val_acc'] * 100:.2f}",
             r["proxy_rank"], f"{r['long_acc'] * 100:.2f}" + ("" if pd.isna(r["long_std"]) else
                                                            f" ± {r['long_std'] * 100:.2f}"), r["long_rank"]]
            for _, r in table.sort_values("proxy_rank").iterrows()]
    write_text(out / "fidelity.md",
        f"# Proxy fidelity\n\n{describe(summary)}.\n\n"
        + markdown_table(rows, ["candidate", "picked", "MACs (M)", "proxy val %", "proxy rank",
                                f"{summary['long_metric'].replace('_', ' ')} % (long)", "long rank"]) + "\n")
    plot_fidelity(out / "fidelity.png", table, summary)


def plot_fidelity(path: Path, table: pd.DataFrame, summary: dict) -> None:
    """Long-recipe accuracy against proxy accuracy, one point per candidate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for picked, marker in (("top", "o"), ("random", "s")):
        sub = table[table["picked"] == picked]
        ax.errorbar(sub["proxy_val_acc"] * 100, sub["long_acc"] * 100, yerr=sub["long_std"].fillna(0) * 100,
                    fmt=marker, capsize=3, label=f"{picked} candidates")
    ax.set_xlabel(f"proxy ({summary['proxy_recipe']}) validation accuracy (%)")
    ax.set_ylabel(f"{summary['long_recipe']} {summary['long_metric'].replace('_', ' ')} (%)")
    ax.set_title(f"Kendall tau {summary['tau']:.2f}, Spearman rho {summary['rho']:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
