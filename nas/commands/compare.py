"""`nas compare`: train several nets with one recipe and the same seeds; paired verdicts, and
optionally every reference rescaled to the same MACs first (`--match-macs`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..experiments import execute
from ..experiments.compare import MATCH_BY, CompareExperiment
from ..presets import resolve_spec
from ..recipe import resolve_recipe
from ..settings import DataRequest
from .common import DATA
from .options import MACS, add


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas compare`."""
    p = sub.add_parser("compare", help="train several specs with one recipe and seeds; tabulate with "
                                       "paired 95 %% intervals")
    p.add_argument("specs", nargs="+", metavar="SPEC_OR_PRESET", help="spec YAML files or preset names")
    add(p, *DATA, "recipe", "seeds", "device", "out", "force")
    p.add_argument("--reference", help="the net every other is compared with (default: the first)")
    p.add_argument("--match-macs", type=MACS,
                   help="rescale every net except the reference (and --as-is ones) to land nearest "
                        "these MACs, e.g. 1.5M: an equal-cost comparison")
    p.add_argument("--match-by", choices=MATCH_BY, default="width",
                   help="the one dimension --match-macs rescales (default width)")
    p.add_argument("--as-is", default="", help="comma-separated names that --match-macs leaves unchanged")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Run `nas compare`: resolve the names once, then the experiment's check, run and report."""
    experiment = CompareExperiment(
        specs=[resolve_spec(s) for s in args.specs], data=DataRequest.from_args(args),
        recipe=resolve_recipe(args.recipe), seeds=args.seeds, out=Path(args.out), device=args.device,
        reference=args.reference, match_macs=args.match_macs, match_by=args.match_by,
        as_is=[n.strip() for n in args.as_is.split(",") if n.strip()], force=args.force)
    execute(experiment)
    return 0
