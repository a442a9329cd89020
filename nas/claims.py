"""A report's claims as a family: equal-cost marks, Holm-adjusted verdicts beside the raw
intervals, and the sentences that say what was tested and what the intervals include.

Rules (the same in `nas compare`, `nas scale study` and the pipeline's report.md):
- a net whose realised MACs miss the comparison's target by more than the tolerance (2 %) is
  "unequal cost": its comparison is shown but is no claim, and never a winner;
- a seed missing, NaN or diverged on either side is dropped from both sides of the pair
  (`nas.stats.paired_difference`; the dropped seeds are listed);
- fewer than 3 seeds, or a zero-width interval, is "n too small" and no claim;
- the other comparisons are the family: their raw p-values are Holm-adjusted together, and a
  claim is resolved only when its adjusted p is below 0.05 (the raw 95 % interval is shown).
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence, Union

import pandas as pd

from .paired import ALPHA, holm
from .stats import NOT_RESOLVED, REFERENCE, TOO_FEW, resolved_words

UNEQUAL = "unequal cost"
MATCH_TOLERANCE = 0.02


SAME_NET = "the same network"  # two names for one architecture: not a claim (e.g. compound = width-only)


def is_claim(verdict: str, p: Optional[float]) -> bool:
    """Whether a comparison enters the Holm family (it has a p-value and a verdict that can
    become "resolved")."""
    return p is not None and not (isinstance(p, float) and math.isnan(p)) and \
        verdict not in (REFERENCE, UNEQUAL, TOO_FEW) and not str(verdict).startswith(SAME_NET)


def adjust(rows: Sequence[dict], alpha: float = ALPHA, scale: float = 100.0) -> list[dict]:
    """Holm-adjusted verdicts for a family of comparisons.

    Args:
        rows: dicts with verdict (the raw one), p (raw, or None/NaN), diff, ci, a_name, b_name.
        alpha: the family-wise error rate.
        scale: points per unit of diff and ci.

    Returns:
        copies of rows with p_holm (None outside the family), family (its size k) and verdict
        rewritten for family members: resolved (raw interval words) when p_holm < alpha,
        else "not resolved at this budget".
    """
    members = [is_claim(r["verdict"], r.get("p")) for r in rows]
    adjusted = holm([r["p"] if m else None for r, m in zip(rows, members)])
    k = sum(members)
    out = []
    for r, m, p_holm in zip(rows, members, adjusted):
        verdict = r["verdict"]
        if m:
            verdict = (resolved_words(r["diff"], r["ci"], r["a_name"], r["b_name"], scale)
                       if p_holm < alpha else NOT_RESOLVED)
        out.append({**r, "p_holm": p_holm, "family": k, "verdict": verdict})
    return out


def gap(macs: float, target: float) -> float:
    """Realised MACs' gap to the target, as a fraction (+0.05: 5 % above)."""
    return macs / target - 1


def mark_costs(summary: pd.DataFrame, targets: Union[float, Mapping[str, float]],
               tolerance: float = MATCH_TOLERANCE) -> pd.DataFrame:
    """Add gap_pct (realised MACs vs the target, %) and equal_cost; a comparison with a net
    outside the tolerance -- or against a reference outside it -- gets the verdict
    "unequal cost" (it is then no claim).

    Args:
        summary: a `nas.stats.summarise_seeds` frame with a macs column.
        targets: one MACs target for every row, or model -> target (rows without one keep
            no gap and are not marked).
        tolerance: allowed |gap| as a fraction (2 %).
    """
    target_of = (lambda m: targets) if not isinstance(targets, Mapping) else targets.get
    gaps = [gap(r["macs"], target_of(r["model"])) if target_of(r["model"]) else float("nan")
            for _, r in summary.iterrows()]
    equal = [not (abs(g) > tolerance) for g in gaps]
    ref_equal = all(e for e, v in zip(equal, summary["verdict"]) if v == REFERENCE)
    verdicts = [v if v == REFERENCE or (e and ref_equal) else UNEQUAL
                for v, e in zip(summary["verdict"], equal)]
    return summary.assign(gap_pct=[g * 100 for g in gaps], equal_cost=equal, verdict=verdicts)


def holm_summary(summary: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """`adjust` over a summary frame's non-reference rows (reference = a, row = b); adds
    p_holm and family columns."""
    ref = summary.loc[summary["verdict"] == REFERENCE, "model"]
    a_name = str(ref.iloc[0]) if len(ref) else "reference"
    rows = [{"verdict": r["verdict"], "p": r.get("p"), "diff": r["diff"], "ci": r["ci"],
             "a_name": a_name, "b_name": r["model"]} for _, r in summary.iterrows()]
    done = adjust(rows, alpha)
    return summary.assign(p_holm=[d["p_holm"] for d in done], family=[d["family"] for d in done],
                          verdict=[d["verdict"] for d in done])


def family_line(k: int, what: str) -> str:
    """The sentence declaring a report's family of claims."""
    return (f"Family: {k} claim(s) -- {what}. Verdicts are Holm-adjusted over these {k} (family-wise "
            f"{ALPHA:.0%}); Δ is shown with its raw 95 % interval and raw p. Comparisons marked "
            "\"unequal cost\" (MACs more than 2 % apart) or \"n too small\" (under 3 seeds, or a "
            "zero-width interval) are not claims; a seed missing or diverged on either side is "
            "dropped from both.")


def interval_line(images: int) -> str:
    """What the intervals include: seeds and test images, or seeds only."""
    if images:
        return (f"Intervals include seed and test-set sampling: paired variance decomposition over "
                f"seeds and the {images:,} test images (seed variance of the paired difference + the "
                "variance of the images the two models disagree on; `nas/paired.py`).")
    return ("Intervals are seed-only (these runs stored no per-image outcomes): they miss the "
            "test-set sampling, so they are too narrow.")


def paired_floor_line(summary: pd.DataFrame) -> Optional[str]:
    """The paired noise floor: the test-image part of the widest-disagreeing comparison's
    interval; None when no row has per-image outcomes."""
    rows = summary[summary["image_se"].notna()] if "image_se" in summary else summary.iloc[0:0]
    if rows.empty:
        return None
    r = rows.loc[rows["discordant"].idxmax()]
    return (f"Noise floor (paired, test images): ±{r['image_se'] * 100:.2f} pts (1 SE) for {r['model']} vs "
            f"the reference, from the {int(r['discordant']):,} of {int(r['images']):,} test images whose "
            "seed-averaged outcomes differ")
