"""How well latency is predicted: a table's sums, and MACs, against measured latency.

`check_table` samples random candidates of a space, measures each twice (a second pass after
the first, so the two are minutes apart) and compares with the first measurement: the table's
plain sum; the sum plus an overhead per net and per block, c0 + c1*blocks, fitted on the first
few nets (HELP/nn-Meter-style few-shot calibration, scored only on the other nets); MACs as a
predictor (latency ~ a*MACs + b fitted on the whole sample, so flattered); and the second
measurement itself, the noise floor no predictor can beat on a machine shared with other jobs;
and the net's pieces re-timed right after the net, which tells non-additivity from load drift.
Reported: share within +-10 %, Spearman rho and the median absolute % error.
"""
from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from .atomic import save_figure, write_csv, write_text
from .counting import analytic_count
from .latency import device_fingerprint, fingerprint_id, measure_spec_ms
from .latency_table import LatencyTable, spec_ops, time_op
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
    """One row per net: arch, blocks, MACs, params, predicted (table sum) ms, measured ms twice
    (all nets once, then all again) and, right after the first measurement, the net's pieces
    timed again in isolation (paired_sum_ms: additivity without the drift of the machine's
    load between the table's build and the check)."""
    rows = [{"arch": spec.arch_string(), "blocks": spec.blocks, "macs": analytic_count(spec).macs,
             "params": analytic_count(spec).params, "predicted_ms": table.predict(spec)} for spec in specs]
    start, total = time.perf_counter(), 2 * len(specs)
    for i, (column, spec) in enumerate([(c, s) for c in ("measured_ms", "remeasured_ms") for s in specs]):
        row = rows[i % len(specs)]
        row[column] = measure_spec_ms(spec, device, table.batch, repeats=CHECK_REPEATS, stat=table.stat)
        if column == "measured_ms":
            row["paired_sum_ms"] = sum(time_op(op, device, table.batch, stat=table.stat) for op in spec_ops(spec))
        if i + 1 == total or (i + 1) % max(1, total // 10) == 0:
            spent = time.perf_counter() - start
            log(f"  {i + 1}/{total} measured, ETA {fmt_seconds(spent / (i + 1) * (total - i - 1))}")
    return pd.DataFrame(rows)


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares (a, b) of y ~ a*x + b."""
    design = np.column_stack([np.asarray(x, float), np.ones(len(x))])
    (a, b), *_ = np.linalg.lstsq(design, np.asarray(y, float), rcond=None)  # min-norm if x is constant
    return float(a), float(b)


def agreement(predicted: pd.Series, measured: pd.Series) -> dict:
    """Share within +-10 %, Spearman rho and median absolute % error of predicted vs measured."""
    error = (predicted - measured).abs() / measured
    return {"n": int(len(measured)), "within_10pct": float((error <= TOLERANCE).mean()),
            "spearman": float(predicted.corr(measured, method="spearman")),
            "median_abs_pct_error": float(error.median() * 100)}


def score(df: pd.DataFrame, calibrate: int) -> tuple[pd.DataFrame, dict]:
    """Add the calibrated and MACs-fit predictions to `df`; return it with one agreement per
    predictor. The overhead c0 + c1*blocks is fitted on the first `calibrate` nets and scored
    on the rest (left out when either part has fewer than 2 nets)."""
    m_a, m_b = linear_fit(df["macs"], df["measured_ms"])
    df = df.assign(macs_fit_ms=m_a * df["macs"] + m_b, calibration_net=[i < calibrate for i in range(len(df))])
    summary = {"table sum": agreement(df["predicted_ms"], df["measured_ms"])}
    if calibrate >= 2 and len(df) - calibrate >= 2:
        fit_rows = df.iloc[:calibrate]
        c1, c0 = linear_fit(fit_rows["blocks"], fit_rows["measured_ms"] - fit_rows["predicted_ms"])
        df = df.assign(calibrated_ms=df["predicted_ms"] + c0 + c1 * df["blocks"])
        rest = df.iloc[calibrate:]
        name = (f"table sum + c0 + c1*blocks (c0 = {c0 * 1e3:.0f} us, c1 = {c1 * 1e3:.1f} us, fit on "
                f"{calibrate} nets; scored on the others)")
        summary[name] = agreement(rest["calibrated_ms"], rest["measured_ms"])
        summary["calibration"] = {"per_net_ms": c0, "per_block_ms": c1, "nets": calibrate}
    summary[f"MACs (a*MACs+b fit on all {len(df)} nets)"] = agreement(df["macs_fit_ms"], df["measured_ms"])
    summary["sum of the pieces re-timed right after each net (paired)"] = agreement(df["paired_sum_ms"],
                                                                                    df["measured_ms"])
    summary["the same nets measured again (noise floor)"] = agreement(df["remeasured_ms"], df["measured_ms"])
    return df, summary


def check_table(table: LatencyTable, space: SearchSpace, samples: int, device: torch.device, seed: int = 0,
                calibrate: int = 10, log: Callable[[str], None] = print) -> tuple[pd.DataFrame, dict]:
    """Measure `samples` random candidates and score the table (plain and calibrated) and MACs."""
    classes = int((table.meta or {}).get("classes", 10))
    specs = sample_specs(space, samples, seed, classes)
    log(f"latency check: {len(specs)} random candidates, each measured twice, of space {space.name} on "
        f"{fingerprint_id(device_fingerprint(device))}, batch {table.batch}, {table.stat} of {CHECK_REPEATS} "
        "repeats each")
    return score(measure_sample(table, specs, device, log), calibrate)


def report_markdown(summary: dict) -> str:
    """The agreement table, one row per predictor."""
    rows = [[name, s["n"], f"{s['within_10pct'] * 100:.0f} %", f"{s['spearman']:.3f}",
             f"{s['median_abs_pct_error']:.1f} %"] for name, s in summary.items() if name != "calibration"]
    return markdown_table(rows, ["predictor of measured latency", "nets scored", "within +-10 %",
                                 "Spearman rho", "median |error|"])


def write_check(out: Path, df: pd.DataFrame, summary: dict, header: str) -> None:
    """check.csv (one row per net), check.md (header and agreement table), check.png (scatter)."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "check.csv", df)
    write_text(out / "check.md", f"{header}\n\n{report_markdown(summary)}\n")
    from .plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    high = float(df["measured_ms"].max()) * 1.1
    for ax, column, label in ((axes[0], "predicted_ms", "table sum"), (axes[0], "calibrated_ms", "calibrated"),
                              (axes[1], "macs_fit_ms", "a*MACs+b")):
        if column in df:
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
    save_figure(fig, out / "check.png", dpi=110)
    plt.close(fig)
