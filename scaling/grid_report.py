"""Grid outputs rebuilt from the study: grid.csv, best_coefficients.yaml (with whether the
winner is resolved from the runner-up) and grid.png (seed spread and the noise floor)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from nas.atomic import save_figure, write_csv, write_text
from nas.outcomes import unpack
from nas.stats import binomial_se, paired_difference

from .coefficients import TARGET_FACTOR
from .grid import GridConfig

COLUMNS = ("alpha", "beta", "gamma", "factor", "resolution", "macs", "params", "realised_ratio",
           "val_acc", "val_std", "val_accs", "val_images", "status", "aliases", "seconds", "val_outcomes")


def grid_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trained grid point (a point run twice by racing workers counts once), best first."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if "grid_point" not in t.user_attrs or t.user_attrs.get("status") not in ("trained", "diverged"):
            continue
        rows.append({"trial": t.number, "point": t.user_attrs["grid_point"],
                     **{k: t.user_attrs.get(k) for k in COLUMNS}})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.drop_duplicates("point").sort_values(["val_acc", "macs"], ascending=[False, True])
    df.insert(0, "rank", range(1, len(df) + 1))
    return df.reset_index(drop=True)


PICK_RULE = "highest mean validation accuracy over seeds, then fewer MACs"


def winner_verdict(df: pd.DataFrame) -> dict:
    """The best point against the runner-up, paired by seed index and, when the trials kept them,
    by validation image (`nas.paired`; a diverged seed is dropped from both). `resolved` says
    whether the best is named the best; otherwise it is a tie, picked by PICK_RULE."""
    if len(df) < 2:
        return {"verdict": "only one point: nothing to compare", "resolved": False}
    best, second = df.iloc[0], df.iloc[1]
    cmp = paired_difference(dict(enumerate(second["val_accs"])), dict(enumerate(best["val_accs"])),
                            a_name="runner-up", b_name="best", a_outcomes=_flags(second), b_outcomes=_flags(best))
    return {"runner_up": f"{second['alpha']:g}/{second['beta']:g}/{second['gamma']:g}",
            "difference_pts": round(cmp.mean * 100, 3),
            "ci95_pts": None if cmp.half_width is None else round(cmp.half_width * 100, 3),
            "seeds": cmp.n, "verdict": cmp.verdict, "resolved": cmp.verdict.startswith("resolved")}


def _flags(row: pd.Series) -> dict:
    """seed index -> per-image validation flags of one grid point ({} for trials without them)."""
    kept = row.get("val_outcomes")
    if not isinstance(kept, list):
        return {}
    return {i: f for i, f in enumerate(map(unpack, kept)) if f is not None}


def choice_words(vs_runner_up: dict) -> str:
    """'best (resolved from the runner-up)' or the tie and the rule that picked."""
    if vs_runner_up.get("resolved"):
        return "best: resolved from the runner-up"
    return f"tie with the runner-up ({vs_runner_up['verdict']}); picked by the rule: {PICK_RULE}"


def write_grid_outputs(study: optuna.Study, config: GridConfig) -> Optional[dict]:
    """Write grid.csv, best_coefficients.yaml and grid.png; return the chosen coefficients."""
    out = Path(config.out)
    df = grid_frame(study)
    write_csv(out / "grid.csv", df.drop(columns=["val_outcomes"], errors="ignore"))
    if df.empty:
        return None
    best = df.iloc[0]
    floor = binomial_se(float(best["val_acc"]), int(best["val_images"]))
    chosen = {"alpha": float(best["alpha"]), "beta": float(best["beta"]), "gamma": float(best["gamma"]),
              "factor": round(float(best["factor"]), 4), "realised_ratio": round(float(best["realised_ratio"]), 4),
              "val_acc": float(best["val_acc"]), "seeds": config.seeds,
              "resolution_multiple": config.resolution_multiple, "base": config.base,
              "dataset": config.dataset, "recipe": config.recipe, "points": int(len(df)),
              "noise_floor_pts": round(floor * 100, 3), "vs_runner_up": winner_verdict(df),
              "note": "ranked by mean validation accuracy over seeds at equal realised MACs "
                      f"(within {config.tolerance} of {TARGET_FACTOR:g}x); see grid.csv"}
    chosen["choice"] = choice_words(chosen["vs_runner_up"])
    write_text(out / "best_coefficients.yaml", yaml.safe_dump(chosen, sort_keys=False))
    plot_grid(out / "grid.png", df, floor)
    return chosen


def plot_grid(path: Path, df: pd.DataFrame, noise_floor: float) -> None:
    """Bars of mean validation accuracy per point with seed spread, and accuracy vs realised MACs."""
    from nas.plotting import pyplot

    plt = pyplot()

    ordered = df.sort_values(["alpha", "beta", "gamma"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    labels = [f"{a:g}/{b:g}/{g:g}" for a, b, g in zip(ordered["alpha"], ordered["beta"], ordered["gamma"])]
    best = df.iloc[0]
    colors = ["tab:red" if r["point"] == best["point"] else "tab:blue" for _, r in ordered.iterrows()]
    err = ordered["val_std"].fillna(0) * 100
    ax1.bar(range(len(ordered)), ordered["val_acc"] * 100, yerr=err, capsize=3, color=colors)
    ax1.axhspan((best["val_acc"] - noise_floor) * 100, (best["val_acc"] + noise_floor) * 100,
                color="grey", alpha=0.2, label="best ± 1 binomial SE (noise floor)")
    ax1.set_xticks(range(len(ordered)))
    ax1.set_xticklabels(labels, rotation=90, fontsize=6 if len(ordered) > 30 else 8)
    ax1.set_ylim(max(0, ordered["val_acc"].min() * 100 - 5), min(100, ordered["val_acc"].max() * 100 + 3))
    ax1.set_ylabel("validation accuracy (%), mean ± std over seeds")
    ax1.set_title("grid points (alpha/beta/gamma), best in red")
    ax1.legend(fontsize=7, loc="lower right")
    ax2.errorbar(ordered["realised_ratio"], ordered["val_acc"] * 100, yerr=err, fmt="o", capsize=3)
    ax2.axvline(TARGET_FACTOR, color="k", ls="--", lw=1, label=f"{TARGET_FACTOR:g}x")
    ax2.set_xlabel("realised MACs ratio to the base")
    ax2.set_ylabel("validation accuracy (%)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
