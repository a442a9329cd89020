"""`nas search`: a multi-objective architecture search for a MACs budget."""
from __future__ import annotations

import argparse

from ..experiments import execute
from ..experiments.search import SearchExperiment
from ..search.engine import SearchConfig
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
    execute(SearchExperiment(config_from(SearchConfig, args, **cost_fields(args))))
    return 0
