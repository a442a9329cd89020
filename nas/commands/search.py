"""`nas search`: a multi-objective architecture search for a MACs budget."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..search.engine import SearchConfig, run_search
from ..search.report import SAMPLED_FILE, cost_line, write_outputs
from ..search.space import load_space
from .common import DATA
from .options import COST_OPTIONS, add, config_from, cost_fields


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `search` sub-command."""
    p = sub.add_parser("search", help="search a baseline network for a MACs, params or latency target")
    add(p, "space", *DATA, *COST_OPTIONS, "objective", "w", "w_above", "trials", "baselines", "evaluator",
        "prefilter", "prefilter_trials", "sampler", "budget_draws", "pruner",
        "seed", "recipe", "storage", "study_name", "heartbeat", "workers", "device", "timeout", "out")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """`nas search`: run or resume a search, then write its trials, Pareto front, best spec and report."""
    config = config_from(SearchConfig, args, **cost_fields(args))
    study = run_search(config)
    summary = write_outputs(study, config, load_space(config.space))
    best = summary["best"]
    if best:
        kind = f" (baseline {best['baseline']})" if best["baseline"] else ""
        latency = f", {best['latency_ms']:.3g} ms measured" if best.get("latency_ms") is not None else ""
        print(f"best: trial #{best['trial']}{kind} val {best['val_acc'] * 100:.2f}% at "
              f"{best['macs'] / 1e6:.2f} M MACs{latency} (reward {best['reward']:.4f}) -> {args.out}/best.yaml")
        if best["baseline"]:
            print(f"the search found no sampled candidate better than baseline {best['baseline']} at "
                  f"this budget (summary.md compares the best sampled one with it)")
        sampled = ", best_sampled.yaml" if (Path(args.out) / SAMPLED_FILE).is_file() else ""
        print(f"outputs: {args.out}/trials.csv, pareto.csv, best.yaml{sampled}, summary.md, summary.json, "
              "pareto.png, history.png, cost.json")
    else:
        print(f"no candidate finished training; nothing to call best (outputs: {args.out}/trials.csv, "
              "cost.json); re-run to go on")
    print(cost_line(summary["cost"]))
    return 0
