"""The scaling study (the paper's Figure 3 / Table 3 on the user's data): at each MACs target,
the base grown by compound scaling and by depth, width or resolution alone, each landing at
the same realised MACs (within 2 %; a net the rounding cannot bring that close is marked
"unequal cost" and its comparison is no claim), trained with one recipe and the same seeds, and compared
by the paired seed difference.

The compound net's phi is solved so its realised MACs land near the target (of the nearest
few, the first whose three single-dimension nets can all match it); the three
single-dimension nets are then solved for the compound net's realised MACs, so the four
strategies cost the same. All four keep the base's dropout: only the scaling differs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd

from nas.atomic import save_figure, write_csv, write_text
from nas.compare import compare
from nas.counting import analytic_macs
from nas.data import Dataset
from nas.recipe import Recipe
from nas.spec import ArchSpec
from nas.claims import SAME_NET, UNEQUAL, adjust, family_line, interval_line
from nas.outcomes import unpack
from nas.stats import paired_difference, t_interval
from nas.tables import markdown_table
from nas.train import Runtime

from .coefficients import Coefficients
from .emit import compound_model
from .matching import MATCH_TOLERANCE
from .single import DIMENSIONS, scale_single

STRATEGIES = ("compound", *DIMENSIONS)
NEAR_TARGET = 0.25  # a compound net over 25 % off the MACs target does not stand for it


@dataclass(frozen=True)
class StudyNet:
    """One trained net of the study."""

    strategy: str        # base, compound, depth, width or resolution
    target: float        # the MACs ratio asked for (1 for the base)
    spec: ArchSpec
    realised: float      # its realised MACs ratio to the base
    setting: str         # phi, or the one multiplier


def compound_options(base: ArchSpec, c: Coefficients, target: float, multiple: int = 0) -> list[tuple[float, ArchSpec, float]]:
    """(phi, spec, realised ratio) of every distinct compound net over phi in 0.01 steps,
    nearest `target` first."""
    base_macs = analytic_macs(base)
    top = max(0.5, math.log(target, 2) * 2 + 0.5)
    found: dict[str, tuple[float, ArchSpec, float]] = {}
    for phi in np.round(np.arange(0.0, top, 0.01), 2):
        spec = compound_model(base, c, float(phi), multiple).spec.replace(dropout=base.dropout)
        found.setdefault(spec.canonical_string(), (float(phi), spec, analytic_macs(spec) / base_macs))
    return sorted(found.values(), key=lambda o: (abs(o[2] - target), o[0]))


def compound_at(base: ArchSpec, c: Coefficients, target: float, multiple: int = 0) -> tuple[float, ArchSpec]:
    """(phi, spec) of the compound net whose realised MACs ratio is nearest `target`."""
    phi, spec, _ = compound_options(base, c, target, multiple)[0]
    return phi, spec


def _singles_at(base: ArchSpec, realised: float) -> list:
    """The three single-dimension nets solved for one realised MACs ratio."""
    return [scale_single(base, dim, [realised])[0] for dim in DIMENSIONS]


def _worst_gap(realised: float, singles: list) -> float:
    return max(abs(r.realised_ratio / realised - 1) for r in singles)


def matched_group(base: ArchSpec, c: Coefficients, target: float, multiple: int = 0,
                  tries: int = 6) -> tuple[float, ArchSpec, float, list]:
    """(phi, compound spec, its realised ratio, the three single-dimension results) for one
    target: of the `tries` distinct compound nets nearest the target (those within
    NEAR_TARGET of it; the nearest one always), the nearest one whose single-dimension nets all
    land within MATCH_TOLERANCE of it; if none does, the one whose worst gap is smallest (its
    nets are then marked "unequal cost")."""
    options = compound_options(base, c, target, multiple)
    # on a small net the few distinct compound nets can include phi = 0, the base itself, whose
    # "single-dimension twins" are the base too: a perfect match, but at the wrong cost
    near = [o for o in options[:tries] if abs(o[2] / target - 1) <= NEAR_TARGET] or options[:1]
    best = None
    for phi, spec, realised in near:
        singles = _singles_at(base, realised)
        gap = _worst_gap(realised, singles)
        if gap <= MATCH_TOLERANCE:
            return phi, spec, realised, singles
        if best is None or gap < best[0]:
            best = (gap, (phi, spec, realised, singles))
    return best[1]


def plan_study(base: ArchSpec, c: Coefficients, targets: Sequence[float], multiple: int = 0) -> list[StudyNet]:
    """The base plus, per target, the four strategies at one realised MACs (within 2 % where
    the rounding allows: `matched_group`)."""
    nets = [StudyNet("base", 1.0, base, 1.0, "-")]
    for target in targets:
        phi, spec, realised, singles = matched_group(base, c, target, multiple)
        nets.append(StudyNet("compound", target, spec.replace(name=f"{base.name}-compound{target:g}x"),
                             realised, f"phi={phi:g}"))
        for r in singles:
            nets.append(StudyNet(r.dimension, target, r.spec.replace(name=f"{base.name}-{r.dimension}{target:g}x"),
                                 r.realised_ratio, f"{r.dimension}={r.multiplier:g}"))
    return nets


def train_study(nets: Sequence[StudyNet], dataset: Dataset, recipe: Recipe, out: Path, seeds: Sequence[int],
                runtime: Runtime = Runtime(quiet=True), log: Callable[[str], None] = print,
                trainer: Optional[Callable[..., Any]] = None) -> pd.DataFrame:
    """Train every net of a planned study (`plan_study`; resumable by run folder, under
    OUT/runs); one row per (net, seed). Planning is separate so callers can check the nets first."""
    targets = list(dict.fromkeys(n.target for n in nets if n.strategy != "base"))
    for target in targets:
        group = [n for n in nets if n.target == target]
        spread = max(n.realised for n in group) / min(n.realised for n in group) - 1
        if spread > MATCH_TOLERANCE:
            log(f"warning: at {target:g}x the strategies land {spread * 100:.1f} % apart in MACs "
                f"({', '.join(f'{n.strategy} {n.realised:.3f}x' for n in group)}); the rounding "
                "allows no closer match, so study.md marks the nets over 2 % from the compound net "
                "\"unequal cost\" (no claim)")
    return compare([(n.spec.name, n.spec) for n in nets], dataset, recipe, out / "runs", seeds, runtime, log,
                   trainer)


def write_study(nets: Sequence[StudyNet], runs: pd.DataFrame, dataset: Dataset, recipe: Recipe,
                out: Path) -> pd.DataFrame:
    """runs.csv, study.csv, study.md and study.png of a trained study; returns the study table."""
    write_csv(out / "runs.csv", runs)
    table = study_table(nets, runs)
    write_csv(out / "study.csv", table)
    write_text(out / "study.md", study_markdown(table, runs, nets, recipe, dataset))
    plot_study(table, out / "study.png", f"{dataset.name}: scaling strategies, recipe {recipe.name}")
    return table


def run_study(nets: Sequence[StudyNet], dataset: Dataset, recipe: Recipe, out: Path, seeds: Sequence[int],
              runtime: Runtime = Runtime(quiet=True), log: Callable[[str], None] = print,
              trainer: Optional[Callable[..., Any]] = None) -> pd.DataFrame:
    """`train_study`, then `write_study`."""
    runs = train_study(nets, dataset, recipe, out, seeds, runtime, log, trainer)
    return write_study(nets, runs, dataset, recipe, out)


def study_table(nets: Sequence[StudyNet], runs: pd.DataFrame) -> pd.DataFrame:
    """One row per net: strategy, target, realised MACs, accuracy mean ± std and its interval."""
    rows = []
    for n in nets:
        accs = runs.loc[runs["model"] == n.spec.name, "test_acc"].tolist()
        iv = t_interval(accs)
        rows.append({"strategy": n.strategy, "target": n.target, "model": n.spec.name, "setting": n.setting,
                     "macs": analytic_macs(n.spec), "realised_ratio": round(n.realised, 4),
                     "resolution": n.spec.resolution, "test_acc": iv.mean, "std": iv.sd, "ci95": iv.half_width,
                     "seeds": iv.n, "arch": n.spec.canonical_string()})
    return pd.DataFrame(rows)


def _per_seed(runs: pd.DataFrame, name: str, column: str = "test_acc") -> dict:
    sub = runs[runs["model"] == name]
    if column not in sub:
        return {}
    values = {s: (unpack(v) if column == "test_outcomes" else v) for s, v in zip(sub["seed"], sub[column])}
    return {s: v for s, v in values.items() if v is not None}


def study_comparisons(table: pd.DataFrame, runs: pd.DataFrame) -> list[dict]:
    """Compound against each single dimension at every target, paired by seed (and by test
    image when the runs carry per-image outcomes); a single-dimension net more than 2 % from
    the compound net's MACs is "unequal cost". Raw verdicts: `nas.claims.adjust` corrects them."""
    rows = []
    for target in sorted(set(table.loc[table["strategy"] != "base", "target"])):
        group = table[table["target"] == target].set_index("strategy")
        compound = group.loc["compound", "model"]
        for dim in DIMENSIONS:
            single = group.loc[dim, "model"]
            cmp = paired_difference(_per_seed(runs, single), _per_seed(runs, compound), f"{dim}-only", "compound",
                                    a_outcomes=_per_seed(runs, single, "test_outcomes"),
                                    b_outcomes=_per_seed(runs, compound, "test_outcomes"))
            gap = group.loc[dim, "macs"] / group.loc["compound", "macs"] - 1
            same = ("arch" in group and isinstance(group.loc[dim, "arch"], str)
                    and group.loc[dim, "arch"] == group.loc["compound", "arch"])
            verdict = (f"{SAME_NET}: the grid's coefficients scale {dim} only" if same else
                       UNEQUAL if abs(gap) > MATCH_TOLERANCE else cmp.verdict)
            rows.append({"target": target, "claim": f"compound vs {dim}-only", "diff": cmp.mean,
                         "ci": cmp.half_width, "p": cmp.p_value, "n": cmp.n, "gap_pct": gap * 100,
                         "verdict": verdict,
                         "a_name": f"{dim}-only", "b_name": "compound", "images": cmp.images,
                         "dropped": " ".join(map(str, cmp.dropped))})
    return rows


def comparison_cells(row: dict) -> list:
    """target, comparison, MACs gap, Δ (raw 95 % CI), seeds, raw p, Holm p, verdict: one table row."""
    ci = "" if row["ci"] is None or pd.isna(row["ci"]) else f" ± {row['ci'] * 100:.2f}"
    p = lambda v: "-" if v is None or pd.isna(v) else ("< 0.001" if v < 0.001 else f"{v:.3f}")  # noqa: E731
    return [f"{row['target']:g}x", row["claim"], f"{row['gap_pct']:+.1f}", f"{row['diff'] * 100:+.2f}{ci}",
            row["n"], p(row["p"]), p(row.get("p_holm")), row["verdict"]]


COMPARISON_HEADER = ["target", "comparison", "MACs gap % (single vs compound)", "Δ (pts, raw 95 % CI)",
                     "seeds", "p (raw)", "p (Holm)", "verdict"]


def study_markdown(table: pd.DataFrame, runs: pd.DataFrame, nets: Sequence[StudyNet], recipe: Recipe,
                   dataset: Dataset) -> str:
    """study.md: the nets with their realised MACs and gap to the compound net, then per target
    compound vs each single dimension, Holm-adjusted over all the study's comparisons."""
    compound_macs = {r["target"]: r["macs"] for _, r in table[table["strategy"] == "compound"].iterrows()}
    net_rows = [[r["strategy"], f"{r['target']:g}x", r["setting"], f"{r['macs'] / 1e6:.3f}",
                 f"{r['realised_ratio']:.3f}",
                 "-" if r["strategy"] == "base" else f"{(r['macs'] / compound_macs[r['target']] - 1) * 100:+.1f}",
                 r["resolution"],
                 f"{r['test_acc'] * 100:.2f} ± {0 if pd.isna(r['std']) else r['std'] * 100:.2f}", r["seeds"]]
                for _, r in table.iterrows()]
    verdicts = adjust(study_comparisons(table, runs))
    k = verdicts[0]["family"] if verdicts else 0
    images = max((v["images"] for v in verdicts), default=0)
    return (f"# Scaling study on {dataset.name}, recipe {recipe.name}\n\n"
            "Equal cost: at each target the single-dimension nets are solved for the compound net's realised "
            "MACs (per-stage width rounding and repeats, 1-px resolution); a net more than 2 % away is marked "
            "\"unequal cost\" and its comparison is no claim. Everything else (recipe, seeds, dropout) is equal.\n\n"
            + markdown_table(net_rows, ["strategy", "target", "setting", "MACs (M)", "realised ratio",
                                        "MACs gap % vs compound", "res", "test acc % (mean ± std)", "seeds"])
            + "\n\n## Compound vs single-dimension scaling (paired by seed)\n\n"
            + markdown_table([comparison_cells(v) for v in verdicts], COMPARISON_HEADER)
            + f"\n\n{family_line(k, 'compound vs each single dimension at each target')}\n\n"
            + interval_line(images) + "\n")


def plot_study(table: pd.DataFrame, path: Path, title: str) -> None:
    """Accuracy vs MACs, one line per strategy from the base, with seed error bars."""
    from nas.plotting import pyplot

    plt = pyplot()

    base = table[table["strategy"] == "base"].iloc[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, marker in zip(STRATEGIES, "o^sD"):
        rows = table[table["strategy"] == strategy].sort_values("macs")
        xs = [base["macs"] / 1e6, *(rows["macs"] / 1e6)]
        ys = [base["test_acc"] * 100, *(rows["test_acc"] * 100)]
        err = [0 if pd.isna(base["std"]) else base["std"] * 100, *(rows["std"].fillna(0) * 100)]
        ax.errorbar(xs, ys, yerr=err, marker=marker, capsize=3, label=strategy)
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions, log scale)")
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
