"""report.md of a pipeline run: what each step found, and the three claims -- searched base vs
references at equal MACs, compound vs single-dimension scaling, proxy fidelity -- each stated as
"resolved: ..." or "not resolved at this budget"."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd

from nas.atomic import write_csv, write_text
from nas.compare import markdown, plot, summarise
from nas.fidelity import describe
from nas.search.report import cost_line
from nas.stats import REFERENCE

from .study import target_verdicts

SAMPLED = "sampled"  # the pipeline's name for the search's best sampled candidate (Pipeline.models)


def _diff(r: pd.Series) -> str:
    return "" if pd.isna(r["diff"]) else f" (Δ {r['diff'] * 100:+.2f}" + (
        "" if pd.isna(r["ci"]) else f" ± {r['ci'] * 100:.2f}") + " pts vs the base)"


def claim_baseline_won(summary: pd.DataFrame, baseline: str) -> str:
    """The first claim when the searched base is the space's baseline `baseline`: the search
    found nothing better, with the interval of its best sampled candidate (`sampled`) against it."""
    head = f"- **the search found no candidate better than `{baseline}` at this budget**"
    rows = summary[summary["model"] == SAMPLED]
    if rows.empty:
        return head + ": its best trial is that baseline, and no sampled candidate finished training"
    r = rows.iloc[0]
    return (head + f": its best trial is that baseline at the target's MACs (the base); best sampled "
            f"candidate (`{SAMPLED}`, {r['macs'] / 1e6:.2f} M MACs) vs `{baseline}`: "
            f"**{r['verdict']}**{_diff(r)}")


def claim_references(summary: pd.DataFrame, labels: dict, baseline: Optional[str] = None) -> list[str]:
    """Searched base vs each width-matched reference, paired by seed; first, when the base is
    the baseline `baseline`, that the search found no candidate better than it."""
    lines = [claim_baseline_won(summary, baseline)] if baseline else []
    for _, r in summary.iterrows():
        if labels.get(r["model"], "").startswith("hand-designed") and r["verdict"] != REFERENCE:
            lines.append(f"- searched base vs `{r['model']}` at {r['macs'] / 1e6:.2f} M MACs: "
                         f"**{r['verdict']}**{_diff(r)}")
    return lines or ["- no hand-designed reference in this space"]


def claim_scaling(out: Path) -> list[str]:
    """The study's compound-vs-single verdicts (from its CSVs), as sentences."""
    study = out / "study"
    if not (study / "study.csv").is_file():
        return ["- " + ((study / "study.md").read_text().strip() if (study / "study.md").is_file()
                        else "no scaling study")]
    table, runs = pd.read_csv(study / "study.csv"), pd.read_csv(study / "runs.csv")
    targets = sorted(set(table.loc[table["strategy"] != "base", "target"]))
    return [f"- at {row[0]}: {row[1]}: **{row[4]}** (Δ {row[2]} pts, {row[3]} seeds)"
            for t in targets for row in target_verdicts(table, runs, t)]


def claim_fidelity(out: Path) -> list[str]:
    """Rank agreement of the proxy with the final recipe; resolved when tau's interval excludes 0."""
    path = out / "fidelity" / "fidelity.json"
    if not path.is_file():
        return ["- not measured"]
    s = json.loads(path.read_text())
    low, high = s.get("tau_low"), s.get("tau_high")
    if s.get("proxy_recipe") == s.get("long_recipe"):
        return [f"- **not measured**: the proxy and the final recipe are both `{s['long_recipe']}`, so the "
                "rankings agree by construction; give a longer --final-recipe"]
    if low is None or s.get("candidates", 0) < 4:
        verdict = "n too small (fewer than 4 candidates)"
    elif low > 0:
        verdict = "resolved: the proxy ranks candidates like the final recipe (tau > 0)"
    elif high < 0:
        verdict = "resolved: the proxy ranks candidates against the final recipe (tau < 0)"
    else:
        verdict = "not resolved at this budget (tau's interval contains 0)"
    return [f"- **{verdict}**: {describe(s)}"]


def _baseline_note(pipeline) -> str:
    won = pipeline.searched_baseline()
    return (f" (baseline `{won}` rescaled to the target's MACs; the best sampled candidate is "
            f"`search/best_sampled.yaml`)" if won else "")
def _search_target(c) -> str:
    """'target 1,500,000 MACs', or the latency/params target the search was run with."""
    if c.cost == "macs":
        return f"target {c.target_macs:,} MACs"
    return f"cost {c.cost}, target {c.target:g}{' ms' if c.cost == 'latency' else ' params'}"


def write_report(pipeline) -> Path:
    """Write OUT/report.md, OUT/models.csv and OUT/scaling.png from the steps' outputs."""
    c, out = pipeline.config, pipeline.out
    models, labels = pipeline.models()
    runs = pd.read_csv(out / "train" / "runs.csv")
    summary = summarise(runs, reference=models[0][0])
    write_csv(out / "models.csv", summary)
    family = [name for name, label in labels.items()
              if not label.startswith(("hand-designed", "best sampled"))]
    plot(summary, out / "scaling.png", f"{c.dataset}: searched base and its compound scaling",
         line_models=family, line_label="searched base + compound scaling")
    chosen = pipeline.coefficients()
    grid = pd.read_csv(out / "grid" / "grid.csv")
    scaled = pd.read_csv(out / "scaled" / "scaled.csv")
    cost = json.loads((out / "search" / "cost.json").read_text())
    final = c.final_recipe or c.recipe
    text = f"""# Pipeline report: {c.space} on {c.dataset}

## Claims (paired by seed, 95 % intervals; "not resolved" = the interval contains 0)

**1. Searched base vs hand-designed references at equal MACs** (recipe `{final}`, seeds {', '.join(map(str, c.seeds))})
{chr(10).join(claim_references(summary, labels, pipeline.searched_baseline()))}

**2. Compound scaling vs depth-, width-, resolution-only at equal realised MACs** (`study/study.md`)
{chr(10).join(claim_scaling(out))}

**3. Proxy fidelity** (`fidelity/fidelity.md`)
{chr(10).join(claim_fidelity(out))}

## Steps

1. **Search** ({c.trials} candidates, {_search_target(c)}, objective `{c.objective}`, proxy
   `{c.recipe}`): base `search/best.yaml` = `{pipeline.base_spec().arch_string()}`{_baseline_note(pipeline)}.
   {cost_line(cost)}.
2. **Grid** at phi = 1 over {len(grid)} networks within {c.grid_tolerance} of 2x realised MACs: alpha =
   {chosen.alpha:g}, beta = {chosen.beta:g}, gamma = {chosen.gamma:g} (nominal {chosen.factor:.3f}; realised
   {grid.iloc[0]['realised_ratio']:.3f}); `grid/grid.csv`, `grid/grid.png`, `grid/best_coefficients.yaml`.
3. **Emission** for phi = {', '.join(f'{p:g}' for p in c.phis)}: `scaled/scaled.csv` (realised vs nominal
   MACs ratio: {', '.join(f"{r:.2f} vs {f:.2f}" for r, f in zip(scaled['realised_ratio'], scaled['formula_ratio']))}).
4. **Training** with recipe `{final}`, seeds {', '.join(map(str, c.seeds))}, the same for every model; the
   references are rescaled by width to the base's MACs. Selection used the validation split only; test
   accuracy is reported, never used to choose.

{markdown(summary, labels)}

![accuracy vs MACs](scaling.png)
"""
    write_text(out / "report.md", text)
    return out / "report.md"
