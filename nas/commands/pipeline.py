"""`nas pipeline`: search -> grid -> emission -> training -> report, resumable at every step."""
from __future__ import annotations

import argparse

from .options import (COST_OPTIONS, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, SEEDS, add, config_from,
                      cost_fields)


PIPELINE_HELPS = {
    "storage": "Optuna storage shared by the search and grid studies: a journal file path or an RDB URL "
               "such as postgresql+psycopg://...; the two studies are named after the --out folder "
               "(NAME-search, NAME-grid), so pipelines sharing one storage never collide (default: a "
               "journal file in each step's folder)",
    "timeout": "in each of the search and grid steps, start no new trial after this many seconds (each "
               "step counts from its own start); the pipeline then stops there, re-run to go on",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas pipeline`."""
    p = sub.add_parser("pipeline", help="search -> grid -> emission -> training -> report, resumable")
    add(p, "space", "dataset", "data_dir", "download", *COST_OPTIONS, "trials", "baselines", "objective",
        "sampler", "seed", "recipe", "resolution_multiple", "workers", "device", "out")
    add(p, "evaluator", "prefilter", "prefilter_trials", "budget_draws")
    p.add_argument("--supernet", metavar="DIR",
                   help="search with this trained supernet (`nas supernet train`): the same as "
                        "--evaluator supernet:DIR, each candidate judged in seconds by inherited weights")
    add(p, "phi", phi="1,2,3")
    p.add_argument("--grid-step", type=POSITIVE, default=0.05,
                   help="grid step of alpha, beta, gamma (default 0.05)")
    p.add_argument("--grid-tolerance", type=POSITIVE, default=0.06,
                   help="allowed |realised MACs ratio - 2| of a grid point (default 0.06: 3 %% of 2x)")
    p.add_argument("--grid-closest", "--closest", dest="grid_closest", type=NON_NEGATIVE_INT, default=0,
                   help="train only the K grid points nearest 2x realised MACs (default 0: every "
                        "distinct network within --grid-tolerance)")
    add(p, "grid_seeds", grid_seeds=2)
    p.add_argument("--final-recipe", help="recipe of the final comparison (default: --recipe)")
    p.add_argument("--seeds", type=SEEDS, default=(0,),
                   help="seeds of the final comparison, e.g. 0,1,2 (3 or more for verdicts)")
    p.add_argument("--study-targets", default="",
                   help="MACs ratios of the scaling study, e.g. 2x,4x (default: 2^phi of each emitted phi > 0)")
    p.add_argument("--fidelity-candidates", type=POSITIVE_INT, default=10,
                   help="candidates retrained for fidelity, at evenly spaced ranks of the proxy's "
                        "ranking (default 10; a tau needs at least 8)")
    p.add_argument("--fidelity-top", type=POSITIVE_INT,
                   help="the older pick: the K best by the proxy (with --fidelity-random) instead of "
                        "--fidelity-candidates")
    p.add_argument("--fidelity-random", type=NON_NEGATIVE_INT,
                   help="the older pick: K random other candidates (with --fidelity-top)")
    p.add_argument("--no-train-scaled", dest="train_scaled", action="store_false",
                   help="leave the emitted phi nets out of the final comparison (the study still "
                        "trains a compound net per target)")
    add(p, "data_resolution", "val_fraction", "pruner", "storage", "heartbeat", "timeout",
        helps=PIPELINE_HELPS)
    p.set_defaults(func=cmd_pipeline)


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Run `nas pipeline`."""
    from scaling import parse_phis
    from scaling.pipeline import Pipeline, PipelineConfig

    from scaling.single import parse_targets

    from ..errors import NasError
    from ..experiments import execute

    evaluator = args.evaluator
    if args.supernet:
        if args.evaluator:
            raise NasError(f"--supernet {args.supernet} and --evaluator {args.evaluator} both choose how the search "
                           "judges candidates; give one")
        evaluator = f"supernet:{args.supernet}"
    targets = tuple(parse_targets(args.study_targets)) if args.study_targets else ()
    older_pick = args.fidelity_top is not None or args.fidelity_random is not None
    fidelity = (dict(fidelity_top=args.fidelity_top or 0, fidelity_random=args.fidelity_random or 0,
                     fidelity_candidates=0) if older_pick else
                dict(fidelity_top=PipelineConfig.fidelity_top, fidelity_random=PipelineConfig.fidelity_random))
    config = config_from(PipelineConfig, args, phis=tuple(parse_phis(args.phi)),
                         grid_closest=args.grid_closest or None, study_targets=targets, evaluator=evaluator,
                         **cost_fields(args), **fidelity)
    execute(Pipeline(config))  # None when a step stopped at --timeout; it said so
    return 0
