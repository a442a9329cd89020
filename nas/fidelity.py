"""Proxy fidelity: does the search's short proxy rank candidates like a longer recipe?

Candidates at evenly spaced ranks of a finished search's proxy ranking (10 by default; the
older top-K + K random pick on request) are retrained with the long recipe (the same seeds,
two by default, for all); Kendall tau and Spearman rho between the two rankings come with
bootstrap intervals over candidates and a permutation p-value, and the proxy is called usable
when tau >= 0.5 with p < 0.05. Below 8 candidates no tau is stated ("too few to tell"). The
proxy's own seed noise is measured by retraining one candidate with the proxy under several
seeds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import optuna
import pandas as pd

from .atomic import save_figure, write_csv, write_text
from .compare import compare, fit_of
from .data import Dataset, load_dataset
from .errors import NasError
from .fidelity_words import TOO_FEW_TO_TELL, describe  # noqa: F401  (describe: the public sentence)
from .preflight import check_before_training, check_memory_of, to_stderr, training_batch
from .recipe import Recipe, resolve_recipe
from .search.baselines import trial_spec
from .search.engine import SearchConfig
from .search.report import trials_frame
from .search.space import load_space
from .spec import ArchSpec
from .stats import permutation_p, rank_agreement, t_interval
from .study import make_storage
from .runfolder.pinned import config_from_pinned
from .study.storage import STUDY_KEY
from .tables import markdown_table
from .train import Runtime
from .runfolder.runs import Fit, FitOf, refusal


@dataclass(frozen=True)
class FidelityPlan:
    """What to retrain.

    Args:
        top: the older pick (only when candidates is 0): the K best by proxy validation accuracy.
        random: with top, K more drawn at random from the other trained candidates.
        recipe: the long recipe.
        seeds: its seeds (the same for every candidate).
        noise_seeds: seeds of the proxy retrained on the proxy's best candidate.
        seed: seed of the random draw.
        candidates: how many candidates to retrain, at evenly spaced ranks of the proxy's
            ranking (best and worst included); 0 for the older top + random pick.
    """

    top: int = 5
    random: int = 5
    recipe: str = "full"
    seeds: tuple[int, ...] = (0, 1)
    noise_seeds: int = 3
    seed: int = 0
    candidates: int = 10  # evenly spaced ranks of the proxy's ranking; 0: the older top + random pick


def load_search(search_dir: Path) -> tuple[SearchConfig, optuna.Study]:
    """A finished search's config and study, from its run folder."""
    settings = search_dir / "search.yaml"
    if not settings.is_file():
        raise NasError(f"{search_dir} is not a search run folder (no search.yaml); give the --out of `nas search`")
    config = config_from_pinned(SearchConfig, settings, ignored=(STUDY_KEY,), out=str(search_dir))
    study = optuna.load_study(study_name=config.name, storage=make_storage(config.storage, search_dir))
    return config, study


def spread_ranks(n: int, k: int) -> list[int]:
    """k distinct positions evenly spaced over ranks 0..n-1 (first and last included)."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(k, n))})


def pick_candidates(study: optuna.Study, plan: FidelityPlan) -> pd.DataFrame:
    """Distinct trained candidates at evenly spaced ranks of the proxy's ranking (`candidates`),
    or with candidates 0 the older pick: the top K by proxy accuracy and K random others."""
    df = trials_frame(study)
    df = df[(df["status"] == "trained") & df["val_acc"].notna()].drop_duplicates("arch")
    df = df.sort_values("val_acc", ascending=False)
    if len(df) < 3:
        raise NasError(f"the search has {len(df)} distinct trained candidates; fidelity needs at least 3")
    if plan.candidates > 0:
        return df.iloc[spread_ranks(len(df), plan.candidates)].assign(picked="spread")
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
        long_recipe: the plan's recipe, resolved (the candidates are retrained with it).
        proxy_recipe: the search's recipe, resolved (its seed noise is measured with it).
    """

    search_dir: Path
    config: SearchConfig
    dataset: Dataset
    candidates: pd.DataFrame
    models: list[tuple[str, ArchSpec]]
    long_recipe: Recipe
    proxy_recipe: Recipe


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
    return FidelityInputs(search_dir, config, dataset, candidates, models, resolve_recipe(plan.recipe),
                          resolve_recipe(config.recipe))


def check_fidelity(inputs: FidelityInputs, plan: FidelityPlan, device: str,
                   warn: Callable[[str], None] = to_stderr) -> None:
    """The checks before retraining (nas.preflight): every candidate under the long recipe's
    batch, and the proxy's best under the proxy's batch when its seed noise is measured."""
    specs = [spec for _, spec in inputs.models]
    check_before_training(specs, inputs.dataset, inputs.long_recipe, device,
                          inputs.config.data_resolution, warn)
    if plan.noise_seeds >= 2:
        check_memory_of(specs[:1], training_batch(inputs.proxy_recipe, inputs.dataset), device)


def fidelity_fit(inputs: FidelityInputs, plan: FidelityPlan) -> FitOf:
    """How this fidelity run fits a folder (`nas.runfolder.runs.choose_out`): its long runs
    and its proxy-noise runs together."""
    long_runs = fit_of(inputs.models, inputs.dataset, inputs.long_recipe, plan.seeds, "long")
    noise_runs = fit_of(inputs.models[:1], inputs.dataset, inputs.proxy_recipe,
                        list(range(plan.noise_seeds)) if plan.noise_seeds >= 2 else [], "proxy-noise")

    def fit(out: Path) -> Fit:
        a, b = long_runs(out), noise_runs(out)
        return Fit(a.conflict or b.conflict, a.matched + b.matched)
    return fit


def run_fidelity(inputs: FidelityInputs, plan: FidelityPlan, out: Optional[Path] = None,
                 runtime: Runtime = Runtime(quiet=True), log: Callable[[str], None] = print,
                 trainer: Optional[Callable[..., Any]] = None) -> dict:
    """Retrain, rank, and write fidelity.csv/.md/.png/.json into `out` (default SEARCH_DIR/fidelity);
    `trainer`: `nas.train.train` (None) or a stand-in with its signature."""
    out = out or inputs.search_dir / "fidelity"
    config, dataset, models = inputs.config, inputs.dataset, inputs.models
    long_recipe = inputs.long_recipe
    metric = "val_acc" if long_recipe.train_split == "train" else "test_acc"
    conflict = fidelity_fit(inputs, plan)(out).conflict
    if conflict:  # found before anything trains
        raise refusal(conflict, out, force_hint=False)
    long_runs = compare(models, dataset, long_recipe, out / "long", plan.seeds, runtime, log, trainer)
    noise = proxy_noise(models[0], dataset, inputs.proxy_recipe, plan.noise_seeds, out, runtime, log,
                        trainer)
    table = fidelity_table(inputs.candidates, long_runs, metric)
    summary = {"search": str(inputs.search_dir), "proxy_recipe": config.recipe, "long_recipe": long_recipe.name,
               "long_metric": metric, "candidates": len(table), "seeds": list(plan.seeds),
               **agreement_of(table), "proxy_seed_sd_pts": noise}
    write_fidelity(out, table, summary)
    return summary


MIN_CANDIDATES = 8   # fewer cannot resolve tau (resampling 6 gives tau = 1 exactly in ~9 % of draws)
USABLE_TAU, USABLE_P = 0.5, 0.05


def agreement_of(table: pd.DataFrame) -> dict:
    """Rank agreement of a fidelity table as summary fields: tau, rho, their bootstrap
    intervals, the one-sided permutation p of tau and the verdict under the usable-proxy rule
    (tau >= 0.5 with p < 0.05). Below MIN_CANDIDATES no tau is stated: the verdict is "too few
    to tell" and tau, rho and their intervals are None."""
    n = len(table)
    if n < MIN_CANDIDATES:
        return {"tau": None, "tau_low": None, "tau_high": None, "rho": None, "rho_low": None,
                "rho_high": None, "n": n, "draws_used": 0, "p_perm": None,
                "verdict": f"{TOO_FEW_TO_TELL}: {n} candidates (a tau needs at least {MIN_CANDIDATES})"}
    agreement = rank_agreement(table["proxy_val_acc"], table["long_acc"]).to_dict()
    p = permutation_p(table["proxy_val_acc"], table["long_acc"])
    usable = agreement["tau"] >= USABLE_TAU and p < USABLE_P
    verdict = ("usable proxy" if usable else "not shown usable") + \
        f" (rule: tau >= {USABLE_TAU} with permutation p < {USABLE_P})"
    return {**agreement, "p_perm": round(p, 4), "verdict": verdict}


def proxy_noise(model: tuple[str, ArchSpec], dataset, recipe: Recipe, seeds: int, out: Path,
                runtime: Runtime, log: Callable[[str], None],
                trainer: Optional[Callable[..., Any]] = None) -> Optional[float]:
    """Standard deviation (points) of the proxy's validation accuracy over `seeds` seeds of one net."""
    if seeds < 2:
        return None
    runs = compare([model], dataset, recipe, out / "proxy-noise", list(range(seeds)), runtime, log, trainer)
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
    from .plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for picked, marker in (("spread", "D"), ("top", "o"), ("random", "s")):
        sub = table[table["picked"] == picked]
        if sub.empty:
            continue
        ax.errorbar(sub["proxy_val_acc"] * 100, sub["long_acc"] * 100, yerr=sub["long_std"].fillna(0) * 100,
                    fmt=marker, capsize=3, label=f"{picked} candidates")
    ax.set_xlabel(f"proxy ({summary['proxy_recipe']}) validation accuracy (%)")
    ax.set_ylabel(f"{summary['long_recipe']} {summary['long_metric'].replace('_', ' ')} (%)")
    ax.set_title("too few candidates to tell" if summary.get("tau") is None
                 else f"Kendall tau {summary['tau']:.2f}, Spearman rho {summary['rho']:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
