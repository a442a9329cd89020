"""`nas fidelity`: how well a search's proxy ranks candidates like a longer recipe."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import NasError
from .bench import add_bench_fidelity_args, cmd_fidelity_bench
from .options import POSITIVE_INT, NON_NEGATIVE_INT, add


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `fidelity` sub-command."""
    p = sub.add_parser("fidelity", help="retrain candidates spread over a search's proxy ranking with a "
                                        "longer recipe; Kendall tau / Spearman rho with bootstrap "
                                        "intervals and a permutation p (or rank evaluators against a bench)")
    p.add_argument("search_dir", metavar="SEARCH_DIR", nargs="?",
                   help="the --out folder of a finished `nas search` (or give --bench)")
    p.add_argument("--candidates", type=POSITIVE_INT, default=10,
                   help="candidates retrained, at evenly spaced ranks of the proxy's ranking (default 10; "
                        "a tau needs at least 8)")
    p.add_argument("--top", type=POSITIVE_INT,
                   help="the older pick instead of --candidates: the K best by proxy accuracy")
    p.add_argument("--random", type=NON_NEGATIVE_INT,
                   help="with the older pick: K random other trained candidates")
    p.add_argument("--noise-seeds", type=NON_NEGATIVE_INT, default=3,
                   help="seeds of the proxy retrained on its best candidate, for its seed noise (default 3)")
    add(p, "recipe", "seeds", "device", "force", recipe="full", seeds=None,
        helps={"seeds": "comma-separated seeds: the long recipe's (default 0,1), or with --bench the "
                        "evaluators' (default 0); --seed is the same option"})
    p.add_argument("--out", help="where the runs and fidelity.* go (default SEARCH_DIR/fidelity)")
    add_bench_fidelity_args(p)
    p.set_defaults(func=cmd_fidelity)


def cmd_fidelity(args: argparse.Namespace) -> int:
    """`nas fidelity`: retrain a search's candidates with a longer recipe and report rank agreement."""
    from ..experiments import execute
    from ..experiments.fidelity import FidelityExperiment
    from ..fidelity import FidelityPlan

    if args.bench:
        return cmd_fidelity_bench(args)
    if not args.search_dir:
        raise NasError("give the --out folder of a finished `nas search`, or --bench DIR of a benchmark")
    older_pick = args.top is not None or args.random is not None
    plan = FidelityPlan(top=args.top or 0, random=args.random or 0, recipe=args.recipe, seeds=tuple(args.seeds or (0, 1)),
                        noise_seeds=args.noise_seeds, candidates=0 if older_pick else args.candidates)
    execute(FidelityExperiment(Path(args.search_dir), plan, Path(args.out) if args.out else None, args.device,
                               args.force))
    return 0
