"""Train several nets with one recipe and the same seeds, and tabulate them fairly.

Each (model, seed) run lives in OUT/<model>/seed<k>/; a finished run is read back,
an interrupted one resumed, so re-running a comparison trains nothing twice. A folder
holding another configuration is refused (`nas.runfolder.runs`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from .atomic import save_figure
from .claims import family_line, interval_line, paired_floor_line
from .data import Dataset
from .paths import check_distinct_folders, safe_name
from .recipe import Recipe
from .spec import ArchSpec
from .stats import noise_floor_line, summarise_seeds, verdict_markdown
from .train import CHECKPOINT, Runtime, train
from .runfolder.fingerprint import run_fingerprint
from .runfolder.runs import RESULT, Fit, FitOf, fit_of_runs, refusal


def run_dir(out: Path, name: str, seed: int) -> Path:
    """OUT/<safe name>/seed<k>: spec names never leave `out` (no separators, no ..)."""
    return out / safe_name(name) / f"seed{seed}"


def planned_runs(models: Sequence[tuple[str, ArchSpec]], dataset: Dataset, recipe: Recipe, out: Path,
                 seeds: Sequence[int]) -> list[tuple[str, ArchSpec, Recipe, Path]]:
    """(name, spec, recipe with the seed, run folder) of every (model, seed) run in `out`;
    two names that would share a folder are refused."""
    check_distinct_folders(name for name, _ in models)
    return [(name, spec, recipe.replace(seed=seed), run_dir(out, name, seed))
            for name, spec in models for seed in seeds]


def same_architecture(models: Sequence[tuple[str, ArchSpec]]) -> Optional[tuple[str, str]]:
    """The first two names that build one network (equal `ArchSpec.canonical_string`), or None:
    training it twice would report a difference between a net and itself."""
    seen: dict[str, str] = {}
    for name, spec in models:
        key = spec.canonical_string()
        if key in seen:
            return seen[key], name
        seen[key] = name
    return None


def fit_of(models: Sequence[tuple[str, ArchSpec]], dataset: Dataset, recipe: Recipe,
           seeds: Sequence[int], sub: str = "") -> FitOf:
    """For `nas.runfolder.runs.choose_out`: how these runs fit a folder (their run folders
    under its `sub` sub-folder)."""
    def fit(out: Path) -> Fit:
        runs = planned_runs(models, dataset, recipe, out / sub if sub else out, seeds)
        return fit_of_runs((folder, run_fingerprint(spec, seeded, dataset))
                           for _, spec, seeded, folder in runs)
    return fit


def run_one(name: str, spec: ArchSpec, dataset: Dataset, recipe: Recipe, folder: Path, runtime: Runtime,
            log: Callable[[str], None], trainer: Optional[Callable[..., Any]] = None) -> dict:
    """Train, resume or reuse one (model, seed) run; `compare` checked its folder's fingerprint."""
    result_file = folder / RESULT
    if result_file.exists():
        result = json.loads(result_file.read_text())
        log(f"{name} seed {recipe.seed}: done earlier (val {result['val_acc']}), not retrained")
        return result
    log(f"{name} seed {recipe.seed}: training")
    result = (trainer or train)(spec, dataset, recipe, runtime=runtime, out_dir=folder,
                   resume=(folder / CHECKPOINT).exists(), evaluate_test=True, log=log)
    return result.to_dict()


def compare(models: Sequence[tuple[str, ArchSpec]], dataset: Dataset, recipe: Recipe, out: Path,
            seeds: Sequence[int] = (0,), runtime: Runtime = Runtime(quiet=True),
            log: Callable[[str], None] = print, trainer: Optional[Callable[..., Any]] = None) -> pd.DataFrame:
    """Train every model with every seed under one recipe; one row per (model, seed).

    Every run folder is checked before anything trains: one holding another configuration
    is refused (commands with --force choose a fresh `out` first, with `fit_of`).

    Args:
        models: (name, spec) pairs; specs must already fit the data set's classes.
        dataset: the data set all models train on.
        recipe: the one recipe (its seed is replaced by each of `seeds`).
        out: folder of the runs (OUT/<name>/seed<k>/).
        seeds: the training seeds, the same for every model (paired comparisons).
        runtime: device and speed settings.
        log: where progress lines go (epoch lines included).
        trainer: `nas.train.train` or a stand-in with its signature (tests: a deterministic fake).
    """
    conflict = fit_of(models, dataset, recipe, seeds)(out).conflict
    if conflict:
        raise refusal(conflict, out, force_hint=False)
    rows = []
    for name, spec, seeded, folder in planned_runs(models, dataset, recipe, out, seeds):
        r = run_one(name, spec, dataset, seeded, folder, runtime, log, trainer)
        rows.append({"model": name, "seed": seeded.seed, "macs": r["macs"], "params": r["params"],
                     "resolution": r["resolution"], "val_acc": r["val_acc"], "test_acc": r["test_acc"],
                     "test_images": r.get("test_images") or len(dataset.test),
                     "status": r["status"], "train_seconds": r["train_seconds"],
                     "images_per_s": r["images_per_s"], "test_outcomes": r.get("test_outcomes")})
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, reference: Optional[str] = None, metric: str = "test_acc") -> pd.DataFrame:
    """Mean ± std over seeds per model and the paired difference to the reference with its
    95 % interval and verdict (`nas.stats.summarise_seeds`), plus val accuracy and cost."""
    table = summarise_seeds(runs, metric=metric, reference=reference)
    g = runs.groupby("model", sort=False)
    extra = g.agg(val_acc=("val_acc", "mean"), val_std=("val_acc", "std"),
                  train_seconds=("train_seconds", "mean"), images_per_s=("images_per_s", "mean"),
                  test_images=("test_images", "first"))
    table = table.join(extra, on="model")
    return table.assign(test_acc=table["mean"], test_std=table["std"])  # the metric under its own name


def markdown(summary: pd.DataFrame, label: Optional[dict] = None, family: Optional[str] = None) -> str:
    """The comparison table with verdicts; under it what the intervals include, the family of
    claims (when `family` describes it and the frame is Holm-adjusted) and the noise floor --
    paired (from the images two models disagree on) when the runs stored per-image outcomes,
    else the one-model binomial SE."""
    shown = summary.copy()
    if label:
        shown["model"] = [m + (f" ({label[m]})" if m in label else "") for m in shown["model"]]
    table = verdict_markdown(shown, "test acc")
    images = int(summary["images"].max()) if "images" in summary and summary["images"].notna().any() else 0
    notes = [interval_line(images)]
    if family is not None and "family" in summary:
        notes.append(family_line(int(summary["family"].max()), family))
    best = summary["mean"].max()
    n = int(summary["test_images"].iloc[0]) if "test_images" in summary and pd.notna(summary["test_images"].iloc[0]) else 0
    paired = paired_floor_line(summary)
    if paired:
        notes.append(f"{paired}.")
    elif n and pd.notna(best):
        notes.append(f"Noise floor: {noise_floor_line(float(best), n)}.")
    return table + "".join(f"\n\n{line}" for line in notes)


def cost_table(models: Sequence[tuple[str, ArchSpec]], device: str = "auto",
               batches: Sequence[int] = (1, 256)) -> pd.DataFrame:
    """Measured inference latency per model (median after warm-up) on the current device.

    Args:
        models: (name, spec) pairs.
        device: where to measure (auto, cpu, cuda, ...).
        batches: batch sizes to time; one column latency_b<N>_ms each.
    """
    from .builder import build
    from .latency import measure_latency_ms
    from .train.runtime import resolve_device

    dev = resolve_device(device)
    rows = []
    for name, spec in models:
        model = build(spec).to(dev)
        row = {"model": name}
        for b in batches:
            row[f"latency_b{b}_ms"] = measure_latency_ms(model, spec.resolution, dev, batch=b,
                                                         repeats=5, warmup=2, in_channels=spec.in_channels)
        rows.append(row)
        del model
    return pd.DataFrame(rows)


def cost_disagreements(table: pd.DataFrame, latency: str = "latency_b256_ms", factor: float = 2.0) -> list[str]:
    """Pairs whose MACs ratio and measured latency ratio disagree by more than `factor`:
    MACs alone would mislead about their cost on this device."""
    warnings = []
    rows = table.dropna(subset=["macs", latency]).to_dict("records")
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            macs_ratio = b["macs"] / a["macs"]
            lat_ratio = b[latency] / a[latency]
            if max(macs_ratio / lat_ratio, lat_ratio / macs_ratio) > factor:
                warnings.append(f"warning: {b['model']} vs {a['model']}: MACs ratio {macs_ratio:.2f} but "
                                f"latency ratio {lat_ratio:.2f} ({latency}); MACs do not predict cost here")
    return warnings


def plot(summary: pd.DataFrame, path: Path, title: str, line_models: Sequence[str] = (),
         line_label: str = "scaled family") -> None:
    """Test (or validation) accuracy vs MACs; `line_models` joined as one curve."""
    from .plotting import pyplot

    plt = pyplot()

    metric = "test_acc" if summary["test_acc"].notna().all() else "val_acc"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    line = summary[summary["model"].isin(line_models)]
    if not line.empty:
        line = line.set_index("model").loc[[m for m in line_models if m in set(line["model"])]].reset_index()
        ax.errorbar(line["macs"] / 1e6, line[metric] * 100, yerr=line["std"].fillna(0) * 100, fmt="-o",
                    capsize=3, color="tab:red", label=line_label)
        for _, r in line.iterrows():
            ax.annotate(r["model"], (r["macs"] / 1e6, r[metric] * 100), fontsize=7, xytext=(4, -10),
                        textcoords="offset points")
    others = summary[~summary["model"].isin(line_models)]
    for _, r in others.iterrows():
        ax.errorbar(r["macs"] / 1e6, r[metric] * 100, yerr=(0 if pd.isna(r["std"]) else r["std"] * 100),
                    fmt="s", capsize=3)
        ax.annotate(r["model"], (r["macs"] / 1e6, r[metric] * 100), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions, log scale)")
    ax.set_ylabel(f"{'test' if metric == 'test_acc' else 'validation'} accuracy (%), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if not line.empty:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
