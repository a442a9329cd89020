"""`nas fidelity --bench DIR --evaluators LIST`: which evaluator ranks a benchmark's
candidates like its ground truth (the seed-mean validation accuracy of the long recipe).

Per evaluator: Kendall τ and Spearman ρ over all candidates with bootstrap intervals
(nas.stats.rank_agreement, 1,000 draws over candidates), a one-sided permutation p-value
of τ, the overlap of the top 10 %, the cost per candidate, and τ within log-MACs bands
(per band and pooled over within-band pairs: a budgeted search ranks at equal cost); a
rank-average ensemble of all the evaluators is one more row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.stats as sps

from ..search.space import load_space
from ..stats import RankAgreement, rank_agreement
from ..study import ProgressLine
from ..tables import markdown_table
from ..atomic import save_figure, write_csv, write_text
from .base import Evaluator

DRAWS = 1000
TOP_SHARE = 0.1


def rankable(values: Sequence[float]) -> np.ndarray:
    """Scores with -inf/NaN just below the lowest finite one and +inf just above the highest
    (a dead net ranks last, an overflowing score first), so every evaluator can be ranked."""
    x = np.asarray(values, dtype=float)
    finite = x[np.isfinite(x)]
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
    gap = max(high - low, 1.0)
    x = np.where(np.isnan(x) | (x == -np.inf), low - gap, x)
    return np.where(x == np.inf, high + gap, x)


def _tau_b(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Kendall tau-b of `x` with each row of `ys`, over all pairs at once."""
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(ys[:, i] - ys[:, j])
    return (sy @ sx) / np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy, axis=1))


def permutation_p(x: np.ndarray, y: np.ndarray, draws: int = DRAWS, seed: int = 0) -> float:
    """One-sided permutation p-value of Kendall τ(x, y) > 0: the share of random relabellings of
    y whose τ is at least the observed one ((k + 1) / (draws + 1))."""
    tau = _tau_b(x, y[None, :])[0]
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(y) for _ in range(draws)])
    return (int((_tau_b(x, perms) >= tau - 1e-12).sum()) + 1) / (draws + 1)


def top_overlap(x: np.ndarray, y: np.ndarray, share: float = TOP_SHARE) -> float:
    """Share of the top ⌈share·n⌉ candidates by `y` that are also the top ones by `x`."""
    k = max(1, math.ceil(share * len(x)))
    return len(set(np.argsort(-x, kind="stable")[:k]) & set(np.argsort(-y, kind="stable")[:k])) / k


def macs_bands(macs: Sequence[float]) -> np.ndarray:
    """Band index of each candidate: 4 equal-count log-MACs bands from 40 candidates, 3 from
    12, otherwise one."""
    n = len(macs)
    bands = 4 if n >= 40 else 3 if n >= 12 else 1
    order = np.argsort(np.log(np.asarray(macs, dtype=float)), kind="stable")
    band = np.empty(n, dtype=int)
    band[order] = np.arange(n) * bands // n
    return band


def within_band_tau(x: np.ndarray, y: np.ndarray, band: np.ndarray) -> tuple[list[dict], float]:
    """(per band: n and Kendall τ, or None below 3 or for a constant ranking; the pooled τ over
    all within-band pairs, concordant minus discordant over pairs)."""
    per_band, agree, pairs = [], 0.0, 0
    for b in sorted(set(band.tolist())):
        idx = np.flatnonzero(band == b)
        xs, ys = x[idx], y[idx]
        ok = len(idx) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0
        per_band.append({"band": b, "n": len(idx), "tau": float(sps.kendalltau(xs, ys).statistic) if ok else None})
        i, j = np.triu_indices(len(idx), 1)
        agree += float((np.sign(xs[i] - xs[j]) * np.sign(ys[i] - ys[j])).sum())
        pairs += len(i)
    return per_band, (agree / pairs if pairs else float("nan"))


def agreement_row(name: str, values: Sequence[float], truth: np.ndarray, band: np.ndarray,
                  seconds: float) -> dict:
    """Every agreement statistic of one evaluator's scores with the ground truth (NaN, p = 1
    for an evaluator that scores every candidate alike: it ranks nothing)."""
    x = rankable(values)
    if np.ptp(x) == 0:
        ra = RankAgreement(*[math.nan] * 6, len(x), 0)
    else:
        ra = rank_agreement(x, truth, draws=DRAWS)
    per_band, pooled = within_band_tau(x, truth, band)
    return {"evaluator": name, "tau": ra.tau, "tau_low": ra.tau_low, "tau_high": ra.tau_high,
            "rho": ra.rho, "rho_low": ra.rho_low, "rho_high": ra.rho_high,
            "p_perm": permutation_p(x, truth) if ra.draws_used else 1.0, "top10_overlap": top_overlap(x, truth),
            "seconds_per_candidate": seconds, "tau_within_macs": pooled,
            **{f"tau_band{b['band']}": b["tau"] for b in per_band}, "n": ra.n}


def rank_ensemble(values: pd.DataFrame) -> np.ndarray:
    """Mean rank of each candidate (row) over the evaluators (columns); higher is better."""
    return values.apply(lambda col: pd.Series(rankable(col)).rank().to_numpy()).mean(axis=1).to_numpy()


@dataclass(frozen=True)
class BenchFidelity:
    """The inputs and results of one table: scores (candidate × evaluator × seed), the
    agreement table, the candidates' MACs bands."""

    scores: pd.DataFrame
    table: pd.DataFrame
    bands: pd.DataFrame


def score_all(cands: pd.DataFrame, dataset, evaluators: Sequence[Evaluator], seeds: Sequence[int],
              saved: Path, log: Callable[[str], None]) -> pd.DataFrame:
    """One row per (candidate, evaluator, seed): value and seconds. Every row is added to
    `saved` (scores.csv) as soon as it is scored and read back from it on a re-run, so a killed
    table (a training evaluator takes hours on a CPU) goes on where it stopped."""
    key = ("candidate", "evaluator", "seed")
    known = {tuple(r[k] for k in key): r for r in pd.read_csv(saved).to_dict("records")} if saved.is_file() else {}
    wanted = [(ev, c, seed) for ev in evaluators for _, c in cands.iterrows() for seed in seeds]
    todo = [w for w in wanted if (w[1]["candidate"], w[0].name, w[2]) not in known]
    progress = ProgressLine(len(todo), log, prefix="score ")
    for i, (ev, c, seed) in enumerate(todo):
        s = ev.score(c["arch_spec"], dataset, "val", seed)
        known[(c["candidate"], ev.name, seed)] = {"candidate": c["candidate"], "evaluator": ev.name, "seed": seed,
                                                  "value": s.value, "seconds": s.seconds}
        write_csv(saved, pd.DataFrame(list(known.values())))
        progress.say(i + 1, f"{ev.name:<12s} {c['candidate']:<16s} {s.value:.5g}", s.seconds)
    return pd.DataFrame([known[(c["candidate"], ev.name, seed)] for ev, c, seed in wanted])


def agreement_table(cands: pd.DataFrame, scores: pd.DataFrame) -> BenchFidelity:
    """The agreement of every evaluator (seed-mean scores) and of their rank ensemble."""
    truth = cands["val_acc"].to_numpy(dtype=float)
    band = macs_bands(cands["macs"])
    means = scores.pivot_table(index="candidate", columns="evaluator", values="value", aggfunc="mean",
                               sort=False).reindex(cands["candidate"])
    cost = scores.groupby("evaluator", sort=False)["seconds"].mean()
    order = list(dict.fromkeys(scores["evaluator"]))
    rows = [agreement_row(name, means[name].to_numpy(), truth, band, float(cost[name])) for name in order]
    if len(order) >= 2:
        rows.append(agreement_row(f"ensemble({'+'.join(order)})", rank_ensemble(means[order]), truth, band,
                                  float(cost[order].sum())))
    bands = cands[["candidate", "macs"]].assign(band=band)
    return BenchFidelity(scores, pd.DataFrame(rows), bands)


def run_bench_fidelity(bench: Path, evaluators: Sequence[Evaluator], seeds: Sequence[int], out: Path,
                       log: Callable[[str], None] = print) -> BenchFidelity:
    """Score a built benchmark's candidates with every evaluator, compare with its ground
    truth, and write fidelity.csv/.md/.png and scores.csv into `out` (a re-run reuses the
    scores already in scores.csv)."""
    from ..bench.report import load_bench

    config, cands = load_bench(bench)
    dataset = config.load_data(load_space(config.space))
    out.mkdir(parents=True, exist_ok=True)
    result = agreement_table(cands, score_all(cands, dataset, evaluators, seeds, out / "scores.csv", log))
    write_csv(out / "fidelity.csv", result.table)
    write_text(out / "fidelity.md", fidelity_markdown(bench, config.recipe, result, seeds))
    plot_fidelity(out / "fidelity.png", result.table)
    return result


def _iv(low, high) -> str:
    return "-" if low is None or pd.isna(low) else f"[{low:.2f}, {high:.2f}]"


def _num(value, digits: int = 2) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def fidelity_markdown(bench: Path, recipe: str, result: BenchFidelity, seeds: Sequence[int]) -> str:
    """fidelity.md: the table, sorted by τ, and how the MACs bands were cut."""
    table = result.table.sort_values("tau", ascending=False)
    band_cols = sorted(c for c in table.columns if c.startswith("tau_band"))
    rows = [[r["evaluator"], _num(r["tau"]), _iv(r["tau_low"], r["tau_high"]), _num(r["rho"]),
             _iv(r["rho_low"], r["rho_high"]), _num(r["p_perm"], 3), _num(r["top10_overlap"]),
             _num(r["tau_within_macs"]), *(_num(r[c]) for c in band_cols),
             f"{r['seconds_per_candidate']:.3g}"] for _, r in table.iterrows()]
    bands = result.bands.groupby("band")["macs"].agg(["min", "max", "size"])
    band_text = "; ".join(f"band {b}: {r['min'] / 1e6:.2f}-{r['max'] / 1e6:.2f} M MACs ({r['size']})"
                          for b, r in bands.iterrows())
    n = int(table["n"].iloc[0])
    return (f"# Evaluator fidelity against benchmark `{bench}`\n\n"
            f"Ground truth: seed-mean validation accuracy of recipe `{recipe}` over {n} candidates. "
            f"Evaluator seeds {', '.join(map(str, seeds))} (scores averaged). Intervals: 95 % bootstrap over "
            f"candidates ({DRAWS} draws); p: one-sided permutation test of tau > 0. MACs bands (equal "
            f"count, log-MACs): {band_text}.\n\n"
            + markdown_table(rows, ["evaluator", "tau", "tau 95 %", "rho", "rho 95 %", "p", "top-10 % overlap",
                                    "tau within MACs", *(c.replace("tau_", "tau ") for c in band_cols),
                                    "s / candidate"]) + "\n")


def plot_fidelity(path: Path, table: pd.DataFrame) -> None:
    """Kendall τ (with its interval) against the cost per candidate, one point per evaluator."""
    from ..plotting import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for _, r in table.iterrows():
        low = r["tau"] - (r["tau_low"] if r["tau_low"] is not None and not pd.isna(r["tau_low"]) else r["tau"])
        high = (r["tau_high"] if r["tau_high"] is not None and not pd.isna(r["tau_high"]) else r["tau"]) - r["tau"]
        cost = max(r["seconds_per_candidate"], 1e-4)
        ax.errorbar(cost, r["tau"], yerr=[[low], [high]], fmt="o", capsize=3)
        ax.annotate(r["evaluator"][:28], (cost, r["tau"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per candidate (log scale)")
    ax.set_ylabel("Kendall tau vs ground truth")
    ax.set_title("Which signal to trust: rank agreement vs cost")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
