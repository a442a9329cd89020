"""Train several nets with one recipe and the same seeds, and tabulate them fairly.

Each (model, seed) run lives in OUT/<model>/seed<k>/; a finished run is read back,
an interrupted one resumed, so re-running a comparison trains nothing twice.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import pandas as pd

from .data import Dataset
from .recipe import Recipe
from .spec import ArchSpec
from .tables import markdown_table
from .train import Runtime, train
from .train.trainer import CHECKPOINT


def run_one(name: str, spec: ArchSpec, dataset: Dataset, recipe: Recipe, out: Path, runtime: Runtime,
            log: Callable[[str], None]) -> dict:
    run_dir = out / name / f"seed{recipe.seed}"
    result_file = run_dir / "result.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
        if result["epochs_run"] >= recipe.epochs or result["status"] != "completed":
            log(f"{name} seed {recipe.seed}: done earlier (val {result['val_acc']}), not retrained")
            return result
    log(f"{name} seed {recipe.seed}: training")
    result = train(spec, dataset, recipe, runtime=runtime, out_dir=run_dir,
                   resume=(run_dir / CHECKPOINT).exists(), evaluate_test=True)
    return result.to_dict()


def compare(models: Sequence[tuple[str, ArchSpec]], dataset: Dataset, recipe: Recipe, out: Path,
            seeds: Sequence[int] = (0,), runtime: Runtime = Runtime(quiet=True),
            log: Callable[[str], None] = print) -> pd.DataFrame:
    rows = []
    for name, spec in models:
        for seed in seeds:
            r = run_one(name, spec, dataset, recipe.replace(seed=seed), out, runtime, log)
            rows.append({"model": name, "seed": seed, "macs": r["macs"], "params": r["params"],
                         "resolution": r["resolution"], "val_acc": r["val_acc"], "test_acc": r["test_acc"],
                         "status": r["status"], "train_seconds": r["train_seconds"],
                         "images_per_s": r["images_per_s"]})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over seeds, one row per model, in the order given."""
    order = list(dict.fromkeys(runs["model"]))
    g = runs.groupby("model", sort=False)
    table = g.agg(macs=("macs", "first"), params=("params", "first"), resolution=("resolution", "first"),
                  seeds=("seed", "count"), val_acc=("val_acc", "mean"), val_std=("val_acc", "std"),
                  test_acc=("test_acc", "mean"), test_std=("test_acc", "std"),
                  train_seconds=("train_seconds", "mean")).reindex(order).reset_index()
    return table


def markdown(summary: pd.DataFrame, label: Optional[dict] = None) -> str:
    rows = []
    for _, r in summary.iterrows():
        std = lambda v: f" ± {v * 100:.2f}" if pd.notna(v) else ""  # noqa: E731
        rows.append([r["model"] + (f" ({label[r['model']]})" if label and r["model"] in label else ""),
                     f"{r['macs'] / 1e6:.2f}", f"{int(r['params']):,}", int(r["resolution"]),
                     f"{r['val_acc'] * 100:.2f}{std(r['val_std'])}" if pd.notna(r["val_acc"]) else "-",
                     f"{r['test_acc'] * 100:.2f}{std(r['test_std'])}" if pd.notna(r["test_acc"]) else "-",
                     int(r["seeds"]), f"{r['train_seconds']:.1f}"])
    return markdown_table(rows, ["model", "MACs (M)", "params", "res", "val acc %", "test acc %", "seeds",
                                 "train s"])


def plot(summary: pd.DataFrame, path: Path, title: str, line_models: Sequence[str] = (),
         line_label: str = "scaled family") -> None:
    """Test (or validation) accuracy vs MACs; `line_models` joined as one curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "test_acc" if summary["test_acc"].notna().all() else "val_acc"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    line = summary[summary["model"].isin(line_models)]
    if not line.empty:
        line = line.set_index("model").loc[[m for m in line_models if m in set(line["model"])]].reset_index()
        ax.plot(line["macs"] / 1e6, line[metric] * 100, "-o", color="tab:red", label=line_label)
        for _, r in line.iterrows():
            ax.annotate(r["model"], (r["macs"] / 1e6, r[metric] * 100), fontsize=7, xytext=(4, -10),
                        textcoords="offset points")
    others = summary[~summary["model"].isin(line_models)]
    for _, r in others.iterrows():
        ax.scatter(r["macs"] / 1e6, r[metric] * 100, marker="s", s=40)
        ax.annotate(r["model"], (r["macs"] / 1e6, r[metric] * 100), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions, log scale)")
    ax.set_ylabel(f"{'test' if metric == 'test_acc' else 'validation'} accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if not line.empty:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
