"""Search outputs rebuilt from the study: tables, best spec, plots and the cost card."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import optuna
import pandas as pd
from optuna.trial import TrialState

from ..study.storage import retried_numbers
from ..tables import markdown_table
from .engine import TRAINED, SearchConfig
from .objectives import Objective
from .space import SearchSpace

COLUMNS = ["number", "state", "status", "baseline", "arch", "macs", "params", "cost", "val_acc", "reward",
           "latency_ms", "seconds", "epochs", "images_seen", "duplicate_of", "retry_of", "worker"]


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial with the attributes the reports use (trials.csv)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name, **t.user_attrs}
        row.setdefault("cost", row.get("macs"))  # searches made before --cost weighed MACs
        if t.system_attrs.get("retry_history"):  # queued again by Optuna after a stale heartbeat
            row["retry_of"] = t.system_attrs["retry_history"][-1]
        rows.append({c: row.get(c) for c in COLUMNS})
    return pd.DataFrame(rows, columns=COLUMNS)


def trained(df: pd.DataFrame) -> pd.DataFrame:
    """Candidates that were trained to the end (pruned ones stopped early)."""
    return df[(df["status"] == "trained") & df["val_acc"].notna()]


def pareto_front(df: pd.DataFrame) -> pd.DataFrame:
    """Non-dominated candidates: no other is at least as accurate at no more cost (the cost
    searched with: MACs, params or latency)."""
    pool = trained(df).sort_values(["cost", "val_acc"], ascending=[True, False])
    keep, best = [], -1.0
    for idx, row in pool.iterrows():
        if row["val_acc"] > best:
            keep.append(idx)
            best = row["val_acc"]
    return pool.loc[keep]


def best_row(df: pd.DataFrame, objective: Objective) -> Optional[pd.Series]:
    """Highest reward (in Pareto mode: the front member the reward formula prefers)."""
    pool = pareto_front(df) if objective.mode == "pareto" else trained(df)
    if objective.mode == "hard":
        pool = pool[pool["cost"] <= objective.target]
    if pool.empty:
        return None
    scores = pool.apply(lambda r: objective.reward(r["val_acc"], r["cost"]), axis=1)
    return pool.loc[scores.idxmax()]


def busy_seconds(intervals: list[tuple]) -> float:
    """Seconds covered by the union of (start, end) datetime intervals: the time some trial
    was running, so idle time between a killed run and its resume is not counted."""
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def interrupted_numbers(study: optuna.Study) -> set[int]:
    """FAIL trials that were queued again (a later trial's retry_of, or Optuna's retry after a
    stale heartbeat on an RDB storage): interrupted, not failed."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return {t.number for t in trials if t.state == TrialState.FAIL and t.number in retried}


def cost_card(df: pd.DataFrame, study: optuna.Study) -> dict:
    """Wall time (union of trial intervals), trial counts by status, training images and MACs."""
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    interrupted = interrupted_numbers(study)
    # an interrupted trial is closed when the run resumes: its interval would span the pause
    wall = busy_seconds([(t.datetime_start, t.datetime_complete) for t in done
                         if t.datetime_start is not None and t.number not in interrupted])
    spent = df[df["status"].isin(TRAINED)]
    images = int(spent["images_seen"].fillna(0).sum())
    # forward + backward ~ 3x the forward MACs per training image
    compute = float((spent["images_seen"].fillna(0) * spent["macs"] * 3).sum())
    devices = sorted({str(t.user_attrs["device"]) for t in done if "device" in t.user_attrs})
    statuses = df["status"].value_counts().to_dict()
    return {
        "devices": devices,
        "wall_seconds": wall,
        "trial_seconds": float(df["seconds"].fillna(0).sum()),
        "trials": int(len(df)),
        "trained": int(statuses.get("trained", 0)),
        "pruned": int(statuses.get("pruned", 0)),
        "rejected": int(statuses.get("rejected", 0)),
        "duplicates": int(statuses.get("duplicate", 0)),
        "diverged": int(statuses.get("diverged", 0)),
        "failed": int((df["state"] == "FAIL").sum()) - len(interrupted),
        "interrupted": len(interrupted),
        "training_images_seen": images,
        "training_macs": compute,
    }


def cost_line(cost: dict) -> str:
    """The search cost card as one line."""
    return (f"search cost: {', '.join(cost['devices']) or '?'}, wall {cost['wall_seconds'] / 60:.1f} min, "
            f"{cost['trials']} trials ({cost['trained']} trained, {cost['pruned']} pruned, "
            f"{cost['rejected']} rejected, {cost['duplicates']} duplicates, {cost['failed']} failed"
            f"{_interrupted(cost)}), "
            f"{cost['training_images_seen']:,} training images, "
            f"{cost['training_macs'] / 1e12:.3g} T training MACs")


def _interrupted(cost: dict) -> str:
    n = cost.get("interrupted", 0)
    return f", {n} interrupted and re-run" if n else ""


def write_outputs(study: optuna.Study, config: SearchConfig, space: SearchSpace) -> dict:
    """Write trials.csv, pareto.csv, best.yaml, summary.md, plots and cost.json from the study."""
    out = Path(config.out)
    objective = config.objective_fn()
    df = trials_frame(study)
    df.to_csv(out / "trials.csv", index=False)
    front = pareto_front(df)
    front.to_csv(out / "pareto.csv", index=False)
    best = best_row(df, objective)
    summary = {"best": None, "cost": {**cost_card(df, study), "objective": objective.describe()}}
    if best is not None:
        trial = study.trials[int(best["number"])]
        spec = space.to_spec(trial.params, num_classes=study.user_attrs["num_classes"], name=f"{space.name}-best-t{trial.number}")
        assert spec.arch_string() == best["arch"]
        spec.save(out / "best.yaml")
        summary["best"] = {"trial": int(best["number"]), "arch": best["arch"], "macs": int(best["macs"]),
                           "params": int(best["params"]), "val_acc": float(best["val_acc"]),
                           "cost": float(best["cost"]), "latency_ms": _float(best["latency_ms"]),
                           "reward": float(objective.reward(best["val_acc"], best["cost"]))}
    (out / "cost.json").write_text(json.dumps(summary["cost"], indent=2))
    _write_summary(out, df, best, objective, summary["cost"], config)
    _plots(out, df, front, best, objective)
    return summary


def _float(value) -> Optional[float]:
    return float(value) if pd.notna(value) else None


def _cost_cells(objective: Objective, r: pd.Series) -> list[str]:
    """The searched cost (unless it is MACs, shown anyway) and the measured latency."""
    latency = f"{r['latency_ms']:.3g}" if pd.notna(r["latency_ms"]) else "-"
    if objective.cost.kind == "macs":
        return [latency]
    return [objective.cost.fmt(r["cost"]) if pd.notna(r["cost"]) else "-", latency]


def _write_summary(out: Path, df: pd.DataFrame, best, objective: Objective, cost: dict,
                   config: SearchConfig) -> None:
    rows = []
    if best is not None:
        rows.append(("best (searched)", best))
    for _, row in df[df["baseline"].notna() & df["status"].isin(TRAINED)].iterrows():
        rows.append((f"baseline: {row['baseline']}", row))
    searched = [] if objective.cost.kind == "macs" else [f"{objective.cost.label} (searched)"]
    table = markdown_table(
        [[label, int(r["number"]), f"{r['macs'] / 1e6:.2f}", f"{r['params']:,}", *_cost_cells(objective, r),
          f"{r['val_acc'] * 100:.2f}" if pd.notna(r["val_acc"]) else "-",
          f"{objective.reward(r['val_acc'], r['cost']):.4f}" if pd.notna(r["val_acc"]) else "-",
          r["arch"]] for label, r in rows],
        ["model", "trial", "MACs (M)", "params", *searched, "measured latency (ms)", "val acc %", "reward",
         "arch"])
    searched_with = f"Cost searched with: {objective.cost.describe()}. " if objective.cost.kind == "macs" else ""
    text = (f"# Search {config.name}\n\n{searched_with}{objective.describe()}; space `{config.space}`, data "
            f"`{config.dataset}` (validation split), recipe `{config.recipe}`, sampler `{config.sampler}`, "
            f"seed {config.seed}.\n\n{table}\n\n{cost_line(cost)}\n{_fidelity_line(out)}")
    (out / "summary.md").write_text(text)


def _fidelity_line(out: Path) -> str:
    """A sentence on the proxy's fidelity when `nas fidelity` has measured it for this search."""
    path = out / "fidelity" / "fidelity.json"
    if not path.is_file():
        return ("\nOne seed per candidate, ranked by the proxy: differences below the proxy's seed noise "
                "are not findings; `nas fidelity` measures both.\n")
    from ..fidelity import describe
    return f"\nProxy fidelity (`fidelity/fidelity.md`): {describe(json.loads(path.read_text()))}.\n"


def _cost_axis(objective: Objective) -> tuple[float, str]:
    """(divisor, x-axis label) for plotting the searched cost."""
    if objective.cost.kind == "latency":
        return 1.0, f"{objective.cost.describe()}, ms"
    if objective.cost.kind == "params":
        return 1e6, "parameters (millions)"
    return 1e6, "MACs (millions; the paper's FLOPs)"


def _plots(out: Path, df: pd.DataFrame, front: pd.DataFrame, best, objective: Objective) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = trained(df)
    scale, xlabel = _cost_axis(objective)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(done["cost"] / scale, done["val_acc"] * 100, s=18, color="0.6", label="trained candidates")
    if not front.empty:
        ax.plot(front["cost"] / scale, front["val_acc"] * 100, "-o", color="tab:red", ms=5, label="Pareto front")
    base = done[done["baseline"].notna()]
    for _, r in base.iterrows():
        ax.scatter(r["cost"] / scale, r["val_acc"] * 100, marker="s", s=50, color="tab:blue", zorder=3)
        ax.annotate(r["baseline"], (r["cost"] / scale, r["val_acc"] * 100), fontsize=8,
                    xytext=(4, -10), textcoords="offset points")
    if best is not None:
        ax.scatter(best["cost"] / scale, best["val_acc"] * 100, marker="*", s=180, color="gold",
                   edgecolor="k", zorder=4, label=f"best (trial {int(best['number'])})")
    ax.axvline(objective.target / scale, color="k", ls="--", lw=1,
               label=f"target T = {objective.cost.fmt(objective.target)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"Search: accuracy vs {objective.cost.label}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    scored = df[df["reward"].notna() & df["status"].isin(TRAINED)].sort_values("number")
    if objective.mode == "pareto":
        values = scored.apply(lambda r: objective.reward(r["val_acc"], r["cost"]), axis=1)
        label = "reward of each trial (formula applied to the Pareto run)"
    else:
        values, label = scored["reward"], "reward of each trial"
    ax.scatter(scored["number"], values, s=14, color="tab:blue", label=label)
    if len(values):
        ax.plot(scored["number"], values.cummax(), color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("reward")
    ax.set_title("Search history")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "history.png", dpi=120)
    plt.close(fig)
