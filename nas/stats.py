"""How a comparison is stated: paired seed differences, t intervals, verdict words,
the evaluation noise floor and rank agreement between a proxy and a longer recipe.

Pure functions over numbers and data frames; accuracies are fractions in [0, 1] unless a
`scale` says otherwise, and every sentence is in percentage points (accuracy x 100).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Hashable, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _sp

from .paired import paired_variance
from .tables import markdown_table

CONFIDENCE = 0.95
MIN_SEEDS = 3  # below this a paired comparison gets no verdict
NOT_RESOLVED = "not resolved at this budget"
TOO_FEW = "n too small"
REFERENCE = "reference"


@dataclass(frozen=True)
class Interval:
    """mean ± half_width, the 95 % Student-t interval of a mean over n values.

    Attributes:
        mean: the mean (NaN over no values).
        half_width: t quantile x sd / sqrt(n); None below 2 values.
        n: how many finite values the mean is over.
        sd: the sample standard deviation (ddof=1); None below 2 values.
    """
    mean: float
    half_width: Optional[float]  # None below 2 values
    n: int
    sd: Optional[float] = None   # sample standard deviation (ddof=1); None below 2 values

    @property
    def low(self) -> Optional[float]:
        """mean − half_width, or None without an interval."""
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> Optional[float]:
        """mean + half_width, or None without an interval."""
        return None if self.half_width is None else self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (never without an interval)."""
        return self.half_width is not None and (self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """B − A over paired seeds, in the units of the inputs; `verdict` is in points.

    Attributes:
        a_name: the reference's name.
        b_name: the other model's name.
        mean: mean of the paired differences b_s − a_s.
        sd: their sample standard deviation; None below 2 seeds.
        half_width: 95 % Student-t half-width of the mean; None below 2 seeds.
        n: number of seeds both had.
        verdict: the sentence `paired_difference` chose.
        seeds: the seeds both had, in A's order.
        dropped: seeds missing (or NaN) on either side.
        diffs: seed -> b_s − a_s.
    """
    a_name: str
    b_name: str
    mean: float
    sd: Optional[float]
    half_width: Optional[float]
    n: int
    verdict: str
    seeds: tuple = ()                          # the seeds both had, in A's order
    dropped: tuple = ()                        # seeds missing (or NaN) on either side
    diffs: dict = field(default_factory=dict)  # seed -> b_s − a_s
    p_value: Optional[float] = None            # two-sided p of the raw interval (None without one)
    images: int = 0                            # test images in the interval (0: seed-only)
    image_se: Optional[float] = None           # paired test-set SE, sqrt(V_image) (nas.paired)
    discordant: int = 0                        # images the two models' seed-averaged outcomes differ on

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class RankAgreement:
    """Kendall τ and Spearman ρ with bootstrap percentile intervals over candidates.

    Attributes:
        tau: Kendall's tau-b over all candidates.
        tau_low: 2.5th percentile of tau over the bootstrap resamples (None without any).
        tau_high: 97.5th percentile of tau over the resamples (None without any).
        rho: Spearman's rho over all candidates.
        rho_low: 2.5th percentile of rho over the resamples (None without any).
        rho_high: 97.5th percentile of rho over the resamples (None without any).
        n: number of candidates.
        draws_used: bootstrap resamples kept (those where a ranking is constant are skipped).
    """
    tau: float
    tau_low: Optional[float]
    tau_high: Optional[float]
    rho: float
    rho_low: Optional[float]
    rho_high: Optional[float]
    n: int           # candidates
    draws_used: int  # bootstrap resamples kept (degenerate ones are skipped)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> Interval:
    """The Student-t interval of the mean: mean ± t_{(1+c)/2, n−1} · sd / √n.

    Args:
        values: the numbers (e.g. one accuracy per seed); None and NaN are ignored,
            so n counts the finite values only.
        confidence: two-sided coverage, 0.95 by default.

    Returns:
        Interval(mean, half_width, n, sd); mean is NaN for no values, half_width and sd
        are None below 2 values.
    """
    x = np.asarray([float(v) for v in values if _finite(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(float("nan"), None, 0)
    if n == 1:
        return Interval(float(x[0]), None, 1)
    sd = float(x.std(ddof=1))
    t = float(_sp.t.ppf(0.5 + confidence / 2, n - 1))
    return Interval(float(x.mean()), t * sd / math.sqrt(n), n, sd)


def _verdict(mean: float, half: Optional[float], n: int, a_name: str, b_name: str, scale: float) -> str:
    """The verdict words; a zero-width interval (identical differences, nothing to resample)
    says nothing about the spread, so it is "n too small" like fewer than 3 seeds."""
    if n < MIN_SEEDS or half is None or half == 0:
        return TOO_FEW
    if abs(mean) <= half:
        return NOT_RESOLVED
    return resolved_words(mean, half, a_name, b_name, scale)


def resolved_words(mean: float, half: float, a_name: str, b_name: str, scale: float = 100.0) -> str:
    """'resolved: <winner> better by d ± h pts'."""
    winner = b_name if mean > 0 else a_name
    return f"resolved: {winner} better by {abs(mean) * scale:.2f} ± {half * scale:.2f} pts"


def _outcome_matrix(outcomes: Optional[Mapping[Hashable, Any]], seeds: Sequence) -> Optional[np.ndarray]:
    """seeds x images flags, or None when any seed lacks them or their lengths differ."""
    if not outcomes:
        return None
    rows = [outcomes.get(s) for s in seeds]
    if any(r is None for r in rows) or len({len(r) for r in rows}) != 1:
        return None
    return np.vstack(rows)


def paired_difference(a: Mapping[Hashable, float], b: Mapping[Hashable, float],
                      a_name: str = "A", b_name: str = "B", scale: float = 100.0,
                      a_outcomes: Optional[Mapping[Hashable, Any]] = None,
                      b_outcomes: Optional[Mapping[Hashable, Any]] = None) -> Comparison:
    """The paired seed difference d_s = b_s − a_s, its 95 % interval and verdict.

    With per-image outcomes for every shared seed of both models the interval includes the
    test-set sampling (seed variance + discordant-image variance, `nas.paired`); without them
    it is the seed-only Student-t interval. A seed missing, NaN or diverged on either side is
    dropped from both (listed in `dropped`).

    Args:
        a: seed -> metric (e.g. test accuracy) of the first net, A (the reference).
        b: seed -> metric of the second net, B, trained with the same seeds.
        a_name: how the verdict names A.
        b_name: how the verdict names B.
        scale: points per unit of the inputs (100 for accuracies in [0, 1], 1 when
            they are already percentages); used only for the verdict sentence.
        a_outcomes: seed -> A's per-image correct flags on the test images (optional).
        b_outcomes: the same for B.

    Returns:
        Comparison with mean, sd and 95 % half-width of d (input units), n shared seeds,
        the seeds used and dropped, the raw p-value, and a verdict: "n too small" below 3
        seeds or for a zero-width interval, "resolved: <winner> better by d ± h pts" when
        the interval excludes 0, else "not resolved at this budget".
    """
    seeds = tuple(s for s in a if s in b and _finite(a[s]) and _finite(b[s]))
    used = set(seeds)
    dropped = tuple(dict.fromkeys(s for s in (*a, *b) if s not in used))
    diffs = {s: float(b[s]) - float(a[s]) for s in seeds}
    pv = paired_variance(list(diffs.values()), _outcome_matrix(a_outcomes, seeds),
                         _outcome_matrix(b_outcomes, seeds))
    half = pv.half_width()
    sd = None if pv.seed_var is None else math.sqrt(pv.seed_var * len(seeds))
    return Comparison(a_name, b_name, pv.mean, sd, half, len(seeds),
                      _verdict(pv.mean, half, len(seeds), a_name, b_name, scale), seeds, dropped, diffs,
                      pv.p_value(), pv.images, None if pv.image_var is None else math.sqrt(pv.image_var),
                      pv.discordant)


def binomial_se(p: float, n: int) -> float:
    """Standard error √(p(1−p)/n) of an accuracy p measured on n images: the noise floor
    of one evaluation (in the units of p).

    Args:
        p: accuracy in [0, 1].
        n: number of evaluated images (> 0).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"accuracy p={p} must be in [0, 1]")
    if n <= 0:
        raise ValueError(f"number of images n={n} must be positive")
    return math.sqrt(p * (1.0 - p) / n)


def noise_floor_line(p: float, n: int) -> str:
    """'test split of 359 images: binomial SE ±1.58 pts at 90 %' for accuracy p on n images.

    Args:
        p: accuracy in [0, 1].
        n: number of test images.
    """
    return f"test split of {n:,} images: binomial SE ±{binomial_se(p, n) * 100:.2f} pts at {p * 100:.3g} %"


def _rank_pair(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return float(_sp.kendalltau(x, y).statistic), float(_sp.spearmanr(x, y).statistic)


def rank_agreement(x: Sequence[float], y: Sequence[float], draws: int = 1000,
                   seed: int = 0) -> RankAgreement:
    """How well ranking candidates by `x` (e.g. a proxy) agrees with ranking them by `y`.

    Args:
        x: one score per candidate (e.g. proxy validation accuracy).
        y: the same candidates' scores under the other ranking (e.g. the full recipe),
            aligned with x by position.
        draws: bootstrap resamples of the candidates (with replacement).
        seed: seed of the bootstrap generator (the result is deterministic).

    Returns:
        RankAgreement with Kendall τ (tau-b) and Spearman ρ, each with a 2.5/97.5
        percentile interval over the resamples; resamples where x or y is constant
        (no ranking) are skipped; the intervals are None when none is left.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be 1-D and of equal length (got {xa.shape}, {ya.shape})")
    if len(xa) < 2 or not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValueError("rank agreement needs at least 2 candidates with finite scores")
    tau, rho = _rank_pair(xa, ya)
    rng = np.random.default_rng(seed)
    taus, rhos = [], []
    for idx in rng.integers(0, len(xa), size=(draws, len(xa))):
        xs, ys = xa[idx], ya[idx]
        if np.ptp(xs) == 0 or np.ptp(ys) == 0:
            continue
        t, r = _rank_pair(xs, ys)
        taus.append(t)
        rhos.append(r)

    def pct(v: list[float], q: float) -> Optional[float]:
        return float(np.percentile(v, q)) if v else None

    return RankAgreement(tau, pct(taus, 2.5), pct(taus, 97.5), rho, pct(rhos, 2.5),
                         pct(rhos, 97.5), len(xa), len(taus))


def permutation_p(x: Sequence[float], y: Sequence[float], draws: int = 2000, seed: int = 0) -> float:
    """One-sided permutation p-value of Kendall's tau: the share of random re-pairings of y
    with x whose tau is at least the observed one, (1 + hits) / (1 + draws).

    Args:
        x: one score per candidate (e.g. proxy accuracy).
        y: the same candidates' other scores, aligned by position.
        draws: random permutations of y.
        seed: seed of the permutation generator (the result is deterministic).
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    observed = float(_sp.kendalltau(xa, ya).statistic)
    rng = np.random.default_rng(seed)
    hits = sum(float(_sp.kendalltau(xa, rng.permutation(ya)).statistic) >= observed - 1e-12
               for _ in range(draws))
    return (1 + hits) / (1 + draws)


def _check_runs(runs: pd.DataFrame, metric: str) -> None:
    missing = [c for c in ("model", "seed", metric) if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lack column(s) {', '.join(missing)}; need model, seed and {metric}")
    dup = runs.duplicated(["model", "seed"])
    if dup.any():
        pairs = runs.loc[dup, ["model", "seed"]].itertuples(index=False)
        raise ValueError("runs repeat (model, seed): " + ", ".join(f"{m}/{s}" for m, s in pairs))


def summarise_seeds(runs: pd.DataFrame, metric: str = "test_acc", reference: Optional[str] = None,
                    scale: float = 100.0) -> pd.DataFrame:
    """One row per model (first-appearance order): mean and spread over seeds, and the
    paired difference against a reference model with its verdict.

    Args:
        runs: one row per (model, seed) with columns model, seed, <metric>; macs,
            params and resolution are carried over (first value) when present.
        metric: the column compared (e.g. test_acc or val_acc).
        reference: the model every other is compared with; the first model by default.
        scale: points per unit of the metric (100 for accuracies in [0, 1]).

    Returns:
        DataFrame with columns model, [macs, params, resolution,] mean, std, n, diff
        (mean of model − reference over shared seeds), ci (95 % half-width of diff),
        n_paired, verdict ("reference" on the reference row, whose diff and ci are NaN), p
        (raw two-sided p), image_se, discordant and images (the paired test-set part of the
        interval: NaN / 0 when the runs carry no test_outcomes column, then the interval is
        seed-only) and dropped (seeds removed from both sides).
    """
    _check_runs(runs, metric)
    order = list(dict.fromkeys(runs["model"]))
    if not order:
        raise ValueError("runs is empty")
    reference = order[0] if reference is None else reference
    if reference not in order:
        raise ValueError(f"reference {reference!r} is not among the models {order}")
    per_model = {m: dict(zip(g["seed"], g[metric])) for m, g in runs.groupby("model", sort=False)}
    flags = _outcomes_by_model(runs, metric)
    carried = [c for c in ("macs", "params", "resolution") if c in runs.columns]
    first = runs.groupby("model", sort=False)[carried].first() if carried else None
    rows = []
    for model in order:
        iv = t_interval(per_model[model].values())
        row: dict[str, Any] = {"model": model}
        row.update({c: first.at[model, c] for c in carried})
        row.update(mean=iv.mean, std=iv.sd if iv.sd is not None else float("nan"), n=iv.n)
        if model == reference:
            row.update(diff=float("nan"), ci=float("nan"), n_paired=iv.n, verdict=REFERENCE, p=float("nan"),
                       image_se=float("nan"), discordant=0, images=0, dropped="")
        else:
            c = paired_difference(per_model[reference], per_model[model], reference, model, scale,
                                  flags.get(reference), flags.get(model))
            row.update(diff=c.mean, ci=_nan(c.half_width), n_paired=c.n, verdict=c.verdict, p=_nan(c.p_value),
                       image_se=_nan(c.image_se), discordant=c.discordant, images=c.images,
                       dropped=" ".join(map(str, c.dropped)))
        rows.append(row)
    return pd.DataFrame(rows)


def _nan(value: Optional[float]) -> float:
    return float("nan") if value is None else float(value)


def _outcomes_by_model(runs: pd.DataFrame, metric: str) -> dict:
    """model -> seed -> per-image flags from the runs' test_outcomes column (test_acc only)."""
    from .outcomes import unpack
    if metric != "test_acc" or "test_outcomes" not in runs.columns:
        return {}
    flags = {m: dict(zip(g["seed"], map(unpack, g["test_outcomes"]))) for m, g in runs.groupby("model", sort=False)}
    return {m: {s: f for s, f in by_seed.items() if f is not None} for m, by_seed in flags.items()}


def _pm(value: float, spread: float, scale: float, sign: bool = False) -> str:
    if not _finite(value):
        return "-"
    text = f"{value * scale:+.2f}" if sign else f"{value * scale:.2f}"
    return text + (f" ± {spread * scale:.2f}" if _finite(spread) else "")


def _p(value: Any) -> str:
    return "-" if not _finite(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def verdict_markdown(summary: pd.DataFrame, metric_label: str, scale: float = 100.0) -> str:
    """A Markdown table of a `summarise_seeds` frame: mean ± std, Δ vs reference ± 95 %
    half-width (points) and the verdict; with the columns present, each net's MACs gap to the
    comparison's target (gap_pct, `nas.claims.mark_costs`), the raw p and the Holm-adjusted p
    (`nas.claims.holm_summary`).

    Args:
        summary: the frame summarise_seeds returned.
        metric_label: what the metric is called in the header (e.g. "test acc").
        scale: points per unit of the metric (100 for accuracies in [0, 1]).
    """
    refs = summary.loc[summary["verdict"] == REFERENCE, "model"]
    ref = str(refs.iloc[0]) if len(refs) else "reference"
    has = {c: c in summary.columns for c in ("macs", "gap_pct", "p", "p_holm")}
    rows = []
    for _, r in summary.iterrows():
        row = [r["model"]]
        if has["macs"]:
            row.append(f"{r['macs'] / 1e6:.2f}" if _finite(r["macs"]) else "-")
        if has["gap_pct"]:
            row.append(f"{r['gap_pct']:+.1f}" if _finite(r["gap_pct"]) else "-")
        row += [_pm(r["mean"], r["std"], scale), int(r["n"]),
                "—" if r["verdict"] == REFERENCE else _pm(r["diff"], r["ci"], scale, sign=True),
                int(r["n_paired"])]
        row += [_p(r["p"])] if has["p"] else []
        row += [_p(r["p_holm"])] if has["p_holm"] else []
        rows.append(row + [r["verdict"]])
    header = ["model"] + (["MACs (M)"] if has["macs"] else []) + (["MACs gap %"] if has["gap_pct"] else [])
    header += [f"{metric_label} % (mean ± std)", "seeds", f"Δ vs {ref} (pts, raw 95 % CI)", "paired"]
    header += (["p (raw)"] if has["p"] else []) + (["p (Holm)"] if has["p_holm"] else [])
    return markdown_table(rows, header + ["verdict"])
