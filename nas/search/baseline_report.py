"""What a search added beyond its baselines: the best sampled candidate against the best
baseline, and a plain sentence when the search's best is a baseline."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pandas as pd

from ..stats import binomial_se
from .objectives import Objective

BestRow = Callable[[pd.DataFrame, Objective], Optional[pd.Series]]


@dataclass(frozen=True)
class Bests:
    """The best trial overall and within each kind (None where that kind trained nothing).

    Attributes:
        overall: the search's best (what best.yaml holds).
        sampled: the best candidate the sampler proposed.
        baseline: the best of the space's baselines.
    """

    overall: Optional[pd.Series]
    sampled: Optional[pd.Series]
    baseline: Optional[pd.Series]

    @property
    def baseline_won(self) -> Optional[str]:
        """The baseline's name when the search's best is a baseline, else None."""
        if self.overall is None or pd.isna(self.overall.get("baseline")):
            return None
        return str(self.overall["baseline"])


def bests(df: pd.DataFrame, objective: Objective, best_row: BestRow) -> Bests:
    """Apply the search's own choice of best (`best_row`) to all trials, the sampled ones and
    the baselines."""
    is_baseline = df["baseline"].notna()
    return Bests(best_row(df, objective), best_row(df[~is_baseline], objective),
                 best_row(df[is_baseline], objective))


def entry(row: Optional[pd.Series], objective: Objective) -> Optional[dict[str, Any]]:
    """One best as plain data (summary.json): trial, arch, MACs, params, the searched cost,
    measured latency, accuracy, reward and the baseline's name (None for a sampled candidate)."""
    if row is None:
        return None
    latency = row.get("latency_ms")
    return {"trial": int(row["number"]), "arch": row["arch"], "macs": int(row["macs"]),
            "params": int(row["params"]), "cost": float(row["cost"]),
            "latency_ms": None if pd.isna(latency) else float(latency), "val_acc": float(row["val_acc"]),
            "reward": float(objective.reward(row["val_acc"], row["cost"])),
            "baseline": None if pd.isna(row.get("baseline")) else str(row["baseline"]),
            "baseline_mode": _mode(row)}


def _mode(row: pd.Series) -> Optional[str]:
    """How a baseline trial was queued (matched or as-is; None for a sampled candidate)."""
    if pd.isna(row.get("baseline")):
        return None
    mode = row.get("baseline_mode")
    return "as-is" if mode is None or pd.isna(mode) else str(mode)


def _describe(row: pd.Series) -> str:
    return (f"trial {int(row['number'])}, {row['macs'] / 1e6:.2f} M MACs, "
            f"val {row['val_acc'] * 100:.2f} %")


def difference_line(sampled: pd.Series, baseline: pd.Series, val_images: Optional[int]) -> str:
    """Best sampled − best baseline on the validation split, against the noise floor of that
    difference (the binomial SEs of the two accuracies on the split, combined)."""
    diff = (sampled["val_acc"] - baseline["val_acc"]) * 100
    text = (f"Best sampled candidate ({_describe(sampled)}) vs best baseline `{baseline['baseline']}` "
            f"({_describe(baseline)}): Δ {diff:+.2f} pts on the validation split")
    if not val_images:
        return text + " (its size was not recorded, so no noise floor)."
    if not all(0.0 <= float(row["val_acc"]) <= 1.0 for row in (sampled, baseline)):
        return text + " (the scores come from an evaluator, not accuracies: no binomial noise floor)."
    floor = math.hypot(binomial_se(float(sampled["val_acc"]), val_images),
                       binomial_se(float(baseline["val_acc"]), val_images)) * 100
    within = "within" if abs(diff) <= 2 * floor else "beyond"
    return (text + f"; noise floor ±{floor:.2f} pts (binomial SE of the difference on {val_images:,} "
            f"validation images): {within} twice the floor.")


def baseline_lines(found: Bests, val_images: Optional[int]) -> str:
    """The summary's paragraph on baselines: whether the best is one, and best sampled vs best
    baseline."""
    lines = []
    if found.baseline_won:
        lines.append(f"**The search found no sampled candidate better than baseline "
                     f"`{found.baseline_won}` at this budget**: the best trial is that baseline.")
    if found.sampled is not None and found.baseline is not None:
        lines.append(difference_line(found.sampled, found.baseline, val_images))
    elif found.baseline is None:
        lines.append("No baseline was trained (`--baselines none`, or none fits the budget); "
                     "nothing to measure the search against.")
    else:
        lines.append("No sampled candidate finished training; only the baselines did.")
    return "\n\n".join(lines)
