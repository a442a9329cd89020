"""How well latency is predicted: a table's sums, and MACs, against measured latency.

`check_table` samples random candidates of a space, measures each and compares: the table's
plain sum, the sum calibrated by a*sum + b fitted on the first few nets (HELP/nn-Meter-style
few-shot calibration, scored only on the other nets), and MACs as a predictor
(latency ~ a*MACs + b fitted on the whole sample, so flattered). Reported: share within
+-10 %, Spearman rho and the median absolute % error.
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from .counting import analytic_count
from .latency import device_fingerprint, fingerprint_id, measure_spec_ms
from .latency_table import LatencyTable
from .progress import fmt_seconds
from .search.space import SearchSpace
from .spec import ArchSpec
from .tables import markdown_table

CHECK_REPEATS = 50  # per measured net (median): a 16-px net at batch 1 takes ~1 ms
TOLERANCE = 0.10


class RandomChoices:
    """A Suggester (nas.search.space) drawing each choice uniformly from a seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def suggest_categorical(self, name: str, choices: list) -> Any:
        """One of `choices`, uniformly."""
        return self.rng.choice(choices)


def sample_specs(space: SearchSpace, samples: int, seed: int, classes: int) -> list[ArchSpec]:
    """`samples` distinct random candidates (by canonical string) of `space`."""
    draw, specs, seen = RandomChoices(seed), [], set()
    for _ in range(samples * 20):
        spec = space.to_spec(space.suggest(draw), num_classes=classes, name=f"{space.name}-c{len(specs)}")
        if spec.canonical_string() not in seen:
            seen.add(spec.canonical_string())
            specs.append(spec)
        if len(specs) == samples:
            break
    return specs


def measure_sample(table: LatencyTable, specs: list[ArchSpec], device: torch.device,
                   log: Callable[[str], None] = print) -> pd.DataFrame:
    """One row per net: arch, blocks, MACs, params, predicted (table sum) and measured ms."""
    rows, start = [], time.perf_counter()
    for i, spec in enumerate(specs, 1):
        count = analytic_count(spec)
        rows.append({"arch": spec.arch_string(), "blocks": spec.blocks, "macs": count.macs,
                     "params": count.params, "predicted_ms": table.predict(spec),
                     "measured_ms": measure_spec_ms(spec, device, table.batch, repeats=CHECK_REPEATS)})
        if i == len(specs) or i % max(1, len(specs) // 10) == 0:
            spent = time.perf_counter() - start
            log(f"  {i}/{len(specs)} measured, ETA {fmt_seconds(spent / i * (len(specs) - i))}")
    return pd.DataFrame(rows)


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares (a, b) of y ~ a*x + b."""
    a, b = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(a), float(b)


def agreement(predicted: pd.Series, measured: pd.Series) -> dict:
    """Share within +-10 %, Spearman rho and median absolute % error of predicted vs measured."""
    error = (predicted - measured).abs() / measured
    return {"n": int(len(measured)), "within_10pct": float((error <= TOLERANCE).mean()),
            "spearman": float(predicted.corr(measured, method="spearman")),
            "median_abs_pct_error": float(error.median() * 100)}


def score(df: pd.DataFrame, calibrate: int) -> tuple[pd.DataFrame, dict]:
    """Add the calibrated and MACs-fit predictions to `df`; return it with one agreement per
    predictor. The calibration is fitted on the first `calibrate` nets and scored on the rest."""
    fit_rows, rest = df.iloc[:calibrate], df.iloc[calibrate:]
    a, b = linear_fit(fit_rows["predicted_ms"], fit_rows["measured_ms"])
    m_a, m_b = linear_fit(df["macs"], df["measured_ms"])
    df = df.assign(calibrated_ms=a * df["predicted_ms"] + b, macs_fit_ms=m_a * df["macs"] + m_b,
                   calibration_net=[i < calibrate for i in range(len(df))])
    rest = df.iloc[calibrate:]
    return df, {
        "table sum": agreement(df["predicted_ms"], df["measured_ms"]),
        f"table sum calibrated (a*sum+b, a={a:.3f}, b={b:.3f} ms, fit on {calibrate} nets; the others)":
            agreement(rest["calibrated_ms"], rest["measured_ms"]),
        f"MACs (a*MACs+b fit on all {len(df)} nets)": agreement(df["macs_fit_ms"], df["measured_ms"]),
        "calibration": {"scale": a, "offset_ms": b, "nets": calibrate},
    }


def check_table(table: LatencyTable, space: SearchSpace, samples: int, device: torch.device, seed: int = 0,
                calibrate: int = 10, log: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict]:
    """Measure `samples` random candidates and score the table (plain and calibrated) and MACs."""
    classes = int((table.meta or {}).get("classes", 10))
    specs = sample_specs(space, samples, seed, classes)
    log(f"latency check: {len(specs)} random candidates of space {space.name} on "
        f"{fingerprint_id(device_fingerprint(device))}, batch {table.batch}, {CHECK_REPEATS} repeats each")
    df, summary = score(measure_sample(table, specs, device, log), min(calibrate, len(specs) - 2))
    return df, summary


def report_markdown(summary: dict) -> str:
    """The agreement table, one row per predictor."""
    rows = [[name, s["n"], f"{s['within_10pct'] * 100:.0f} %", f"{s['spearman']:.3f}",
             f"{s['median_abs_pct_error']:.1f} %"] for name, s in summary.items() if name != "calibration"]
    return markdown_table(rows, ["predictor of measured latency", "nets scored", "within +-10 %",
                                 "Spearman rho", "median |error|"])


def write_check(out: Path, df: pd.DataFrame, summary: dict, header: str) -> None:
    """check.csv (one row per net), check.md (header and agreement table), check.png (scatter)."""
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "check.csv", index=False)
    (out / "check.md").write_text(f"{header}\n\n{report_markdown(summary)}\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    high = float(df["measured_ms"].max()) * 1.1
    for ax, column, label in ((axes[0], "predicted_ms", "table sum"), (axes[0], "calibrated_ms", "calibrated"),
                              (axes[1], "macs_fit_ms", "a*MACs+b")):
        ax.scatter(df["measured_ms"], df[column], s=12, label=label)
    for ax in axes:
        ax.plot([0, high], [0, high], "k-", lw=0.8)
        ax.fill_between([0, high], [0, high * 0.9], [0, high * 1.1], color="0.85", label="+-10 %")
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_title("lookup table")
    axes[1].set_title("MACs as the predictor")
    fig.tight_layout()
    fig.savefig(out / "check.png", dpi=110)
    plt.close(fig)
