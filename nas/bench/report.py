"""A benchmark's outputs: bench.csv (one row per run), bench.md (summary and the ground
truth's own seed noise), bench.png (validation accuracy vs MACs, references, Pareto front),
and `load_bench`, which reads them back for `nas fidelity --bench`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from ..search.report import pareto_front
from ..spec import ArchSpec
from ..study import Status
from ..tables import markdown_table
from ..atomic import write_csv, write_text
from .build import RUN_KEY, BenchConfig
from .sample import BenchError

COLUMNS = ["candidate", "kind", "stratum", "seed", "status", "macs", "params", "latency_b1_ms",
           "latency_b256_ms", "val_acc", "test_acc", "wall_seconds", "images_per_s", "train_losses",
           "val_accs", "arch", "spec", "device"]


def runs_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per finished run (bench.csv); per-epoch lists are JSON text."""
    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if RUN_KEY in t.user_attrs and "candidate" in t.user_attrs:
            row = {c: t.user_attrs.get(c) for c in COLUMNS}
            row["train_losses"], row["val_accs"] = json.dumps(row["train_losses"]), json.dumps(row["val_accs"])
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["macs", "candidate", "seed"], ignore_index=True)


def candidates_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate: seed-mean and sd of validation and test accuracy over its
    trained runs (the ground truth a fidelity table ranks against)."""
    ok = runs[runs["status"] == Status.TRAINED.value]
    grouped = ok.groupby("candidate", sort=False)
    table = grouped.agg(kind=("kind", "first"), stratum=("stratum", "first"), macs=("macs", "first"),
                        params=("params", "first"), latency_b1_ms=("latency_b1_ms", "median"),
                        val_acc=("val_acc", "mean"), val_sd=("val_acc", "std"), seeds=("val_acc", "size"),
                        test_acc=("test_acc", "mean"), spec=("spec", "first"))
    table["status"] = Status.TRAINED.value  # for pareto_front
    return table.reset_index().sort_values("macs", ignore_index=True)


def seed_noise(candidates: pd.DataFrame) -> dict:
    """The ground truth's own noise: the pooled seed sd of validation accuracy over candidates
    with several seeds, next to the spread of the candidates' means (points)."""
    multi = candidates[candidates["seeds"] >= 2]
    pooled = float(np.sqrt((multi["val_sd"] ** 2).mean()) * 100) if len(multi) else None
    spread = float(candidates["val_acc"].std() * 100) if len(candidates) > 1 else None
    return {"multi_seed_candidates": int(len(multi)), "pooled_seed_sd_pts": pooled,
            "candidate_sd_pts": spread}


def write_bench(config: BenchConfig, study: optuna.Study) -> dict:
    """bench.csv, bench.md and bench.png in the benchmark's folder; returns the summary."""
    out = Path(config.out)
    runs = runs_frame(study)
    write_csv(out / "bench.csv", runs)
    cands = candidates_frame(runs)
    summary = {"candidates": int(len(cands)), "runs": int(len(runs)),
               "references": int((cands["kind"] == "reference").sum()),
               "train_hours": round(float(runs["wall_seconds"].sum()) / 3600, 3), **seed_noise(cands)}
    write_text(out / "bench.md", _markdown(config, cands, summary))
    if len(cands):
        _plot(out / "bench.png", cands)
    return summary


def _pts(value) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.2f}"


def _markdown(config: BenchConfig, cands: pd.DataFrame, summary: dict) -> str:
    band = (f"{config.macs_low / 1e6:.3g}-{config.macs_high / 1e6:.3g} M MACs" if config.macs_low
            else "the space's whole MACs range")
    rows = [[r["candidate"], r["kind"], f"{r['macs'] / 1e6:.2f}", f"{r['params'] / 1e3:.1f}",
             _pts(r["latency_b1_ms"]), f"{r['val_acc'] * 100:.2f}", _pts(r["val_sd"] * 100), r["seeds"],
             _pts(r["test_acc"] * 100)]
            for _, r in cands.sort_values("val_acc", ascending=False).iterrows()]
    return (f"# Benchmark of space `{config.space}` on {config.dataset}\n\n"
            f"Recipe `{config.recipe}`; {summary['candidates']} networks ({summary['references']} references) "
            f"sampled over {config.strata} log-MACs strata of {band}; {summary['runs']} runs, "
            f"{summary['train_hours']:.2f} h of training.\n\n"
            f"Ground-truth seed noise: pooled sd of validation accuracy {_pts(summary['pooled_seed_sd_pts'])} pts "
            f"over {summary['multi_seed_candidates']} multi-seed candidates, against a spread of "
            f"{_pts(summary['candidate_sd_pts'])} pts (sd) between candidates' means.\n\n"
            + markdown_table(rows, ["candidate", "kind", "MACs (M)", "params (k)", "latency b1 (ms)",
                                    "val %", "val sd (pts)", "seeds", "test %"]) + "\n")


def _plot(path: Path, cands: pd.DataFrame) -> None:
    from ..plotting import finish, pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sampled, refs = cands[cands["kind"] == "sampled"], cands[cands["kind"] == "reference"]
    ax.errorbar(sampled["macs"] / 1e6, sampled["val_acc"] * 100, yerr=sampled["val_sd"].fillna(0) * 100,
                fmt="o", ms=4, color="0.5", capsize=2, label="sampled")
    front = pareto_front(cands, cost="macs")
    ax.plot(front["macs"] / 1e6, front["val_acc"] * 100, "-", color="tab:red", label="Pareto front")
    for _, r in refs.iterrows():
        ax.scatter(r["macs"] / 1e6, r["val_acc"] * 100, marker="s", s=50, color="tab:blue", zorder=3)
        ax.annotate(r["candidate"], (r["macs"] / 1e6, r["val_acc"] * 100), fontsize=8,
                    xytext=(4, -10), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions, log scale)")
    ax.set_ylabel("validation accuracy (%), seed mean")
    ax.set_title("Benchmark: accuracy vs MACs (references as squares)")
    finish(fig, ax, path)


def load_bench(folder: Path) -> tuple[BenchConfig, pd.DataFrame]:
    """A built benchmark's settings and its candidates (`candidates_frame` of bench.csv),
    each with its ArchSpec in column ``arch_spec``."""
    settings, csv = folder / "bench.yaml", folder / "bench.csv"
    if not settings.is_file() or not csv.is_file():
        raise BenchError(f"{folder} is not a built benchmark (no bench.yaml and bench.csv); give the --out "
                         "of a finished `nas bench build`")
    config = BenchConfig(**{**yaml.safe_load(settings.read_text()), "out": str(folder)})
    cands = candidates_frame(pd.read_csv(csv))
    if len(cands) < 3:
        raise BenchError(f"{csv} holds {len(cands)} trained candidates; a fidelity table needs at least 3")
    cands["arch_spec"] = [ArchSpec.from_dict(json.loads(s)) for s in cands["spec"]]
    return config, cands
