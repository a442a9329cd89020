"""Search outputs rebuilt from the study: tables, best spec, plots and the cost card."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import optuna
import pandas as pd
from optuna.trial import TrialState

from ..atomic import write_csv, write_text
from ..study.storage import optuna_retries, retried_numbers
from ..tables import markdown_table
from .baseline_report import Bests, baseline_lines, bests, entry
from .baselines import trial_spec
from .engine import TRAINED, SearchConfig
from .objectives import Objective
from .space import SearchSpace

COLUMNS = ["number", "state", "status", "baseline", "baseline_mode", "baseline_target", "baseline_gap_pct",
           "arch", "macs", "params", "cost", "val_acc", "reward", "latency_ms", "seconds", "epochs",
           "images_seen", "duplicate_of", "retry_of", "worker"]
OPTIONAL_COLUMNS = ["evaluator", "evaluator_seconds", "error"]  # only when some trial has them (--evaluator)
SAMPLED_FILE = "best_sampled.yaml"  # written when the best is a baseline: the best sampled candidate


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial with the attributes the reports use (trials.csv)."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"number": t.number, "state": t.state.name, **t.user_attrs}
        row.setdefault("cost", row.get("macs"))  # searches made before --cost weighed MACs
        retries = optuna_retries(t)
        if retries:  # queued again by Optuna after a stale heartbeat
            row["retry_of"] = retries[-1]
        rows.append(row)
    columns = COLUMNS + [c for c in OPTIONAL_COLUMNS if any(c in r for r in rows)]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


def trained(df: pd.DataFrame) -> pd.DataFrame:
    """Candidates that were trained to the end (pruned ones stopped early)."""
    return df[(df["status"] == "trained") & df["val_acc"].notna()]


def pareto_front(df: pd.DataFrame, cost: str = "cost") -> pd.DataFrame:
    """Non-dominated candidates: no other is at least as accurate at no more cost (the column
    `cost`: by default the cost searched with, MACs, params or latency)."""
    pool = trained(df).sort_values([cost, "val_acc"], ascending=[True, False])
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
    baselines = int(spent["baseline"].notna().sum())
    return {
        "devices": devices,
        "wall_seconds": wall,
        "trial_seconds": float(df["seconds"].fillna(0).sum()),
        "trials": int((df["state"] != "WAITING").sum()),
        "queued": int((df["state"] == "WAITING").sum()),  # queued (a prefilter's picks) but never started
        "trained": int(statuses.get("trained", 0)),
        "pruned": int(statuses.get("pruned", 0)),
        "rejected": int(statuses.get("rejected", 0)),
        "duplicates": int(statuses.get("duplicate", 0)),
        "diverged": int(statuses.get("diverged", 0)),
        "failed": int((df["state"] == "FAIL").sum()) - len(interrupted),
        "interrupted": len(interrupted),
        "baseline_trials": baselines,  # of the trials that spent training: the space's baselines
        "sampled_trials": int(len(spent)) - baselines,  # ... and the sampled candidates
        "training_images_seen": images,
        "training_macs": compute,
        "prefilter": study.user_attrs.get("prefilter"),
    }


def cost_line(cost: dict) -> str:
    """The search cost card as one line."""
    return (f"search cost: {', '.join(cost['devices']) or '?'}, wall {cost['wall_seconds'] / 60:.1f} min, "
            f"{cost['trials']} trials ({cost['trained']} trained, {cost['pruned']} pruned, "
            f"{cost['rejected']} rejected, {cost['duplicates']} duplicates, {cost['failed']} failed"
            f"{_interrupted(cost)}{_split(cost)}{_queued(cost)}), "
            f"{cost['training_images_seen']:,} training images, "
            f"{cost['training_macs'] / 1e12:.3g} T training MACs{_prefilter(cost)}")


def _prefilter(cost: dict) -> str:
    p = cost.get("prefilter")
    return (f"; before it, prefilter {p['evaluator']} scored {p['scored']} candidates in "
            f"{p['seconds']:.1f} s and queued the best {p['queued']}") if p else ""


def _split(cost: dict) -> str:
    if "baseline_trials" not in cost:  # a cost.json written before baselines were counted apart
        return ""
    return f"; {cost['baseline_trials']} baseline and {cost['sampled_trials']} sampled trained"


def _queued(cost: dict) -> str:
    n = cost.get("queued", 0)
    return f"; {n} queued, not started" if n else ""


def _interrupted(cost: dict) -> str:
    n = cost.get("interrupted", 0)
    return f", {n} interrupted and re-run" if n else ""


def write_outputs(study: optuna.Study, config: SearchConfig, space: SearchSpace) -> dict:
    """Write trials.csv, pareto.csv, best.yaml (and best_sampled.yaml when the best is a
    baseline), summary.md, summary.json, plots and cost.json from the study."""
    out = Path(config.out)
    objective = config.objective_fn()
    df = trials_frame(study)
    write_csv(out / "trials.csv", df)
    front = pareto_front(df)
    write_csv(out / "pareto.csv", front)
    found = bests(df, objective, best_row)
    best = found.overall
    if best is not None:
        _trial_spec(study, space, best, f"{space.name}-best-t{int(best['number'])}").save(out / "best.yaml")
    if found.baseline_won and found.sampled is not None:
        number = int(found.sampled["number"])
        _trial_spec(study, space, found.sampled, f"{space.name}-sampled-t{number}").save(out / SAMPLED_FILE)
    else:  # a resumed search whose best is no longer a baseline
        (out / SAMPLED_FILE).unlink(missing_ok=True)
    summary = {"best": entry(best, objective), "best_sampled": entry(found.sampled, objective),
               "best_baseline": entry(found.baseline, objective),
               "cost": {**cost_card(df, study), "objective": objective.describe()}}
    write_text(out / "cost.json", json.dumps(summary["cost"], indent=2))
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    _write_summary(out, df, found, objective, summary["cost"], config, study.user_attrs.get("val_images"))
    _plots(out, df, front, best, objective)
    return summary


def _trial_spec(study: optuna.Study, space: SearchSpace, row: pd.Series, name: str):
    trial = study.trials[int(row["number"])]
    spec = trial_spec(space, trial.user_attrs, trial.params, study.user_attrs["num_classes"], name)
    assert spec.arch_string() == row["arch"]
    return spec


def _label(row: pd.Series) -> str:
    if pd.isna(row.get("baseline_target")):
        return f"baseline: {row['baseline']}"
    return (f"baseline: {row['baseline']} at {row['baseline_target'] / 1e6:.3g} M "
            f"({row['baseline_gap_pct']:+.1f} %)")


def _cost_cells(objective: Objective, r: pd.Series) -> list[str]:
    """The searched cost (unless it is MACs, shown anyway) and the measured latency."""
    latency = f"{r['latency_ms']:.3g}" if pd.notna(r["latency_ms"]) else "-"
    if objective.cost.kind == "macs":
        return [latency]
    return [objective.cost.fmt(r["cost"]) if pd.notna(r["cost"]) else "-", latency]


def _write_summary(out: Path, df: pd.DataFrame, found: Bests, objective: Objective, cost: dict,
                   config: SearchConfig, val_images: Optional[int]) -> None:
    rows = []
    if found.overall is not None:
        rows.append(("best (searched)", found.overall))
    if found.baseline_won and found.sampled is not None:
        rows.append((f"best sampled (`{SAMPLED_FILE}`)", found.sampled))
    for _, row in df[df["baseline"].notna() & df["status"].isin(TRAINED)].iterrows():
        rows.append((_label(row), row))
    searched = [] if objective.cost.kind == "macs" else [f"{objective.cost.label} (searched)"]
    table = markdown_table(
        [[label, int(r["number"]), f"{r['macs'] / 1e6:.2f}", f"{int(r['params']):,}", *_cost_cells(objective, r),
          f"{r['val_acc'] * 100:.2f}" if pd.notna(r["val_acc"]) else "-",
          f"{objective.reward(r['val_acc'], r['cost']):.4f}" if pd.notna(r["val_acc"]) else "-",
          r["arch"]] for label, r in rows],
        ["model", "trial", "MACs (M)", "params", *searched, "measured latency (ms)", "val acc %", "reward",
         "arch"])
    searched_with = f"Cost searched with: {objective.cost.describe()}. " if objective.cost.kind == "macs" else ""
    text = (f"# Search {config.name}\n\n{searched_with}{objective.describe()}; space `{config.space}`, data "
            f"`{config.dataset}` (validation split), {_judged_by(config)}, sampler `{config.sampler}`, "
            f"seed {config.seed}; {_baselines_mode(df)}.\n\n{table}\n\n"
            f"{baseline_lines(found, val_images)}\n\n{cost_line(cost)}\n{_fidelity_line(out)}")
    write_text(out / "summary.md", text)


def _judged_by(config) -> str:
    """How candidates were judged: the recipe they trained with, or the evaluator whose score
    stands in the "val acc" column."""
    if config.evaluator:
        return f"candidates judged by evaluator `{config.evaluator}` (its score is the val acc column), not trained"
    return f"recipe `{config.recipe}`"


def _baselines_mode(df: pd.DataFrame) -> str:
    """How the baselines were queued, read from the trials (a trial queued before the option
    existed has no mode: it was queued at its own size)."""
    queued = df[df["baseline"].notna()]
    if queued.empty:
        return "no baselines queued"
    modes = set(queued["baseline_mode"].fillna("as-is"))
    if modes == {"matched"}:
        return "baselines rescaled by width to the target's MACs (`--baselines matched`)"
    return "baselines at their own sizes (`--baselines as-is`)"


def _fidelity_line(out: Path) -> str:
    """A sentence on the proxy's fidelity when `nas fidelity` has measured it for this search."""
    path = out / "fidelity" / "fidelity.json"
    if not path.is_file():
        return ("\nOne seed per candidate, ranked by the proxy: differences below the proxy's seed noise "
                "are not findings; `nas fidelity` measures both.\n")
    from ..fidelity_words import describe
    return f"\nProxy fidelity (`fidelity/fidelity.md`): {describe(json.loads(path.read_text()))}.\n"


def _cost_axis(objective: Objective) -> tuple[float, str]:
    """(divisor, x-axis label) for plotting the searched cost."""
    if objective.cost.kind == "latency":
        return 1.0, f"{objective.cost.describe()}, ms"
    if objective.cost.kind == "params":
        return 1e6, "parameters (millions)"
    return 1e6, "MACs (millions; the paper's FLOPs)"


def _plots(out: Path, df: pd.DataFrame, front: pd.DataFrame, best, objective: Objective) -> None:
    from ..plotting import finish, pyplot

    plt = pyplot()

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
    finish(fig, ax, out / "pareto.png")

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
    finish(fig, ax, out / "history.png")
