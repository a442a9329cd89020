"""report.md of a pipeline run: what each step found, and the three claims -- searched base vs
references at equal MACs, compound vs single-dimension scaling, proxy fidelity -- each stated as
"resolved: ..." or "not resolved at this budget"."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd
import yaml

from nas.atomic import write_csv, write_text
from nas.claims import adjust, family_line, interval_line, mark_costs
from nas.compare import markdown, plot, summarise
from nas.fidelity_words import describe
from nas.search.report import cost_line
from nas.stats import REFERENCE

from .study import study_comparisons

SAMPLED = "sampled"  # the pipeline's name for the search's best sampled candidate (Pipeline.models)


def reference_rows(summary: pd.DataFrame, labels: dict) -> list[dict]:
    """Searched base vs each width-matched reference, paired by seed (raw verdicts, with each
    reference's MACs gap to the base)."""
    rows = []
    for _, r in summary.iterrows():
        if labels.get(r["model"], "").startswith("hand-designed") and r["verdict"] != REFERENCE:
            rows.append({"claim": f"searched base vs `{r['model']}`", "diff": r["diff"], "ci": r["ci"],
                         "p": r.get("p"), "n": r["n_paired"], "verdict": r["verdict"], "a_name": "searched",
                         "b_name": r["model"], "gap_pct": r.get("gap_pct"), "macs": r["macs"]})
    return rows


def sampled_rows(summary: pd.DataFrame) -> list[dict]:
    """When the searched base is a baseline: the best sampled candidate vs that base, paired by
    seed (at its own MACs: the claim is what the search added, not a comparison at equal cost)."""
    rows = []
    for _, r in summary[summary["model"] == SAMPLED].iterrows():
        if r["verdict"] != REFERENCE:
            rows.append({"claim": f"best sampled candidate (`{SAMPLED}`) vs the base", "diff": r["diff"],
                         "ci": r["ci"], "p": r.get("p"), "n": r["n_paired"], "verdict": r["verdict"],
                         "a_name": "the base", "b_name": SAMPLED, "gap_pct": r.get("gap_pct"), "macs": r["macs"]})
    return rows


def claim_baseline_won(rows: list[dict], baseline: str, size: str = "rescaled to the target's MACs") -> str:
    """The first claim when the searched base is the space's baseline `baseline`: the search
    found nothing better, with the (Holm-adjusted) interval of its best sampled candidate against it."""
    head = f"- **the search found no candidate better than `{baseline}` at this budget**"
    if not rows:
        return head + ": its best trial is that baseline, and no sampled candidate finished training"
    r = rows[0]
    return (head + f": its best trial is that baseline, {size} (the base); best sampled "
            f"candidate (`{SAMPLED}`, {r['macs'] / 1e6:.2f} M MACs) vs `{baseline}`: "
            f"**{r['verdict']}**{_delta(r)}")


def _delta(r: dict) -> str:
    if pd.isna(r["diff"]):
        return ""
    ci = "" if r["ci"] is None or pd.isna(r["ci"]) else f" ± {r['ci'] * 100:.2f}"
    p = "" if r.get("p_holm") is None else f", p {r['p']:.3g} raw, {r['p_holm']:.3g} Holm"
    return f" (Δ {r['diff'] * 100:+.2f}{ci} pts raw 95 % CI{p})"


def claim_references(rows: list[dict]) -> list[str]:
    """The reference claims (Holm-adjusted rows of `reference_rows`) as sentences."""
    return [f"- {r['claim']} at {r['macs'] / 1e6:.3f} M MACs (gap {r['gap_pct']:+.1f} % to the base): "
            f"**{r['verdict']}**{_delta(r)}" for r in rows] or ["- no hand-designed reference in this space"]


def scaling_rows(out: Path) -> list[dict]:
    """The study's raw compound-vs-single comparisons (from its CSVs); [] without a study."""
    study = out / "study"
    if not (study / "study.csv").is_file():
        return []
    table = pd.read_csv(study / "study.csv")
    if "arch" not in table:  # a study written before study.csv named each net's architecture
        table["arch"] = [_arch_of(study / "runs" / model) for model in table["model"]]
    return study_comparisons(table, pd.read_csv(study / "runs.csv"))


def _arch_of(folder: Path) -> Optional[str]:
    """The canonical architecture of a study net from its first run's spec.yaml, if any."""
    from nas.spec import ArchSpec

    specs = sorted(folder.glob("seed*/spec.yaml"))
    return ArchSpec.load(specs[0]).canonical_string() if specs else None


def claim_scaling(out: Path, rows: list[dict]) -> list[str]:
    """The study's compound-vs-single claims (Holm-adjusted rows of `scaling_rows`) as sentences."""
    if not rows:
        study = out / "study"
        return ["- " + ((study / "study.md").read_text().strip() if (study / "study.md").is_file()
                        else "no scaling study")]
    return [f"- at {r['target']:g}x: {r['claim']} (MACs gap {r['gap_pct']:+.1f} %): **{r['verdict']}**"
            f"{_delta(r)}, {r['n']} seeds" for r in rows]


def claim_fidelity(out: Path) -> list[str]:
    """Rank agreement of the proxy with the final recipe under the usable-proxy rule (tau >= 0.5
    with permutation p < 0.05; "too few to tell" below 8 candidates): not part of the Holm family."""
    path = out / "fidelity" / "fidelity.json"
    if not path.is_file():
        return ["- not measured"]
    s = json.loads(path.read_text())
    low, high = s.get("tau_low"), s.get("tau_high")
    if s.get("proxy_recipe") == s.get("long_recipe"):
        return [f"- **not measured**: the proxy and the final recipe are both `{s['long_recipe']}`, so the "
                "rankings agree by construction; give a longer --final-recipe"]
    if s.get("verdict"):  # the usable-proxy rule, or "too few to tell" below 8 candidates
        return [f"- **{s['verdict']}**: {describe(s).replace(': ' + s['verdict'], '')}"]
    if low is None or s.get("candidates", 0) < 4:  # a fidelity.json written before the rule
        verdict = "n too small (fewer than 4 candidates)"
    elif low > 0:
        verdict = "resolved: the proxy ranks candidates like the final recipe (tau > 0)"
    elif high < 0:
        verdict = "resolved: the proxy ranks candidates against the final recipe (tau < 0)"
    else:
        verdict = "not resolved at this budget (tau's interval contains 0)"
    return [f"- **{verdict}**: {describe(s)}"]


NO_CLAIM = "scaled family: no claim"


def grid_choice(out: Path) -> str:
    """How the grid's coefficients were chosen: resolved from the runner-up, or a tie and the rule."""
    chosen = yaml.safe_load((out / "grid" / "best_coefficients.yaml").read_text()) or {}
    return chosen.get("choice") or f"vs runner-up: {chosen.get('vs_runner_up', {}).get('verdict', '?')}"


def report_family(summary: pd.DataFrame, labels: dict,
                  out: Path) -> tuple[pd.DataFrame, list[dict], list[dict], list[dict]]:
    """The report's family of claims -- the best sampled candidate vs the base when the base is a
    baseline, base vs each reference (marked "unequal cost" beyond 2 % of the base's MACs) and
    the study's compound-vs-single comparisons -- Holm-adjusted together. Returns the summary
    with the adjusted verdicts (the scaled family's rows are no claims) and the three groups of
    adjusted rows (sampled, references, scaling)."""
    base = summary.iloc[0]
    refs = {m for m, label in labels.items() if label.startswith("hand-designed")}
    summary = mark_costs(summary, {m: base["macs"] for m in refs | {base["model"]}})
    summary = summary.assign(verdict=[NO_CLAIM if m not in refs | {SAMPLED} and v != REFERENCE else v
                                      for m, v in zip(summary["model"], summary["verdict"])])
    sampled, ref_rows, scale_rows = sampled_rows(summary), reference_rows(summary, labels), scaling_rows(out)
    adjusted = adjust(sampled + ref_rows + scale_rows)
    sampled, ref_rows = adjusted[:len(sampled)], adjusted[len(sampled):len(sampled) + len(ref_rows)]
    scale_rows = adjusted[len(sampled) + len(ref_rows):]
    by_model = {r["b_name"]: r for r in sampled + ref_rows}
    summary = summary.assign(
        verdict=[by_model[m]["verdict"] if m in by_model else v for m, v in zip(summary["model"], summary["verdict"])],
        p_holm=[by_model[m]["p_holm"] if m in by_model else None for m in summary["model"]],
        family=adjusted[0]["family"] if adjusted else 0)
    return summary, sampled, ref_rows, scale_rows


def _baseline_note(pipeline) -> str:
    won = pipeline.searched_baseline()
    return (f" (baseline `{won}` {pipeline.searched_baseline_size()}; the best sampled candidate is "
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
    summary, sampled, ref_rows, scale_rows = report_family(summarise(runs, reference=models[0][0]), labels, out)
    write_csv(out / "models.csv", summary)
    k = int(summary["family"].max()) if len(summary) else 0
    family = [name for name, label in labels.items()
              if not label.startswith(("hand-designed", "best sampled"))]
    baseline = pipeline.searched_baseline()
    first = [claim_baseline_won(sampled, baseline, pipeline.searched_baseline_size())] if baseline else []
    plot(summary, out / "scaling.png", f"{c.dataset}: searched base and its compound scaling",
         line_models=family, line_label="searched base + compound scaling")
    chosen = pipeline.coefficients()
    grid = pd.read_csv(out / "grid" / "grid.csv")
    scaled = pd.read_csv(out / "scaled" / "scaled.csv")
    cost = json.loads((out / "search" / "cost.json").read_text())
    final = c.final_recipe or c.recipe
    text = f"""# Pipeline report: {c.space} on {c.dataset}

## Claims

{family_line(k, "claims 1 and 2 together (searched base vs each reference, and the best sampled candidate vs the base when the base is a baseline; compound vs each single dimension at each target); claim 3 has its own rule")}

{interval_line(int(summary["images"].max()) if "images" in summary else 0)}

**1. Searched base vs hand-designed references at equal MACs** (within 2 % of the base's realised MACs; recipe `{final}`, seeds {', '.join(map(str, c.seeds))}, the same data, augmentation and epochs; the references keep their own depth, kernels and resolution)
{chr(10).join(first + claim_references(ref_rows))}

**2. Compound scaling vs depth-, width-, resolution-only at equal realised MACs** (within 2 % of the compound net's; `study/study.md`)
{chr(10).join(claim_scaling(out, scale_rows))}

**3. Proxy fidelity** (`fidelity/fidelity.md`)
{chr(10).join(claim_fidelity(out))}

## Steps

1. **Search** ({c.trials} candidates, {_search_target(c)}, objective `{c.objective}`, proxy
   `{c.recipe}`): base `search/best.yaml` = `{pipeline.base_spec().arch_string()}`{_baseline_note(pipeline)}.
   {cost_line(cost)}.
2. **Grid** at phi = 1 over every distinct network within {c.grid_tolerance} of 2x realised MACs
   ({len(grid)} trained{'' if c.grid_closest is None else f', the {c.grid_closest} nearest 2x'}; {c.grid_seeds}
   seed(s) each, validation split): alpha = {chosen.alpha:g}, beta = {chosen.beta:g}, gamma = {chosen.gamma:g}
   (nominal {chosen.factor:.3f}; realised {grid.iloc[0]['realised_ratio']:.3f}) -- {grid_choice(out)};
   `grid/grid.csv`, `grid/grid.png`, `grid/best_coefficients.yaml`.
3. **Emission** for phi = {', '.join(f'{p:g}' for p in c.phis)}: `scaled/scaled.csv` (realised vs nominal
   MACs ratio: {', '.join(f"{r:.2f} vs {f:.2f}" for r, f in zip(scaled['realised_ratio'], scaled['formula_ratio']))}).
4. **Training** with recipe `{final}`, seeds {', '.join(map(str, c.seeds))}, the same for every model; the
   references are rescaled by width (per-stage rounding) to the base's MACs; the table's MACs gap is
   each net's distance from the base's MACs. Selection used the validation split only; test
   accuracy is reported, never used to choose.

{markdown(summary, labels)}

![accuracy vs MACs](scaling.png)
"""
    write_text(out / "report.md", text)
    return out / "report.md"
