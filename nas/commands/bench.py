"""`nas bench build`: a ground-truth benchmark of a search space."""
from __future__ import annotations

import argparse

from .common import DATA
from .options import MACS, POSITIVE_INT, SEED_COUNT, _parse_with, add, config_from


def _macs_range(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"cannot read MACs range {text!r}; write LOW,HIGH, e.g. 0.4M,3M")
    low, high = (MACS(p.strip()) for p in parts)
    if not low < high:
        raise ValueError(f"MACs range {text!r}: LOW must be below HIGH, e.g. 0.4M,3M")
    return low, high


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `bench` sub-command and its `build` step."""
    bench = sub.add_parser("bench", help="ground truth of a space: train a stratified sample with one recipe")
    steps = bench.add_subparsers(dest="bench_command", required=True, metavar="STEP")
    p = steps.add_parser("build", help="train a stratified sample of a space plus its references "
                                       "(resumable; --workers, PostgreSQL)")
    add(p, "space", *DATA, "recipe", "seed", "storage", "study_name", "heartbeat", "workers", "device",
        "timeout", "out")
    p.add_argument("--candidates", type=POSITIVE_INT, required=True,
                   help="sampled networks (the space's references are added to them)")
    p.add_argument("--seeds", type=SEED_COUNT, default=1,
                   help="training seeds per multi-seed candidate: --seed, --seed+1, ... (default 1)")
    p.add_argument("--seed-candidates", type=POSITIVE_INT,
                   help="how many candidates, spread evenly over MACs, get all --seeds (default: every one)")
    p.add_argument("--strata", type=POSITIVE_INT, default=4, help="log-MACs bands sampled evenly (default 4)")
    p.add_argument("--macs-range", type=_parse_with(_macs_range),
                   help="sample within LOW,HIGH MACs, e.g. 0.4M,3M (default: the space's whole range)")
    p.set_defaults(func=cmd_bench_build)


def cmd_bench_build(args: argparse.Namespace) -> int:
    """`nas bench build`: run or resume the benchmark, then write bench.csv/.md/.png."""
    from ..bench.build import BenchConfig
    from ..experiments import execute
    from ..experiments.bench import BenchExperiment

    low, high = args.macs_range or (None, None)
    execute(BenchExperiment(config_from(BenchConfig, args, macs_low=low, macs_high=high)))
    return 0


def add_bench_fidelity_args(p: argparse.ArgumentParser) -> None:
    """`nas fidelity --bench DIR --evaluators LIST`: rank agreement of evaluators with a benchmark."""
    p.add_argument("--bench", metavar="DIR",
                   help="instead of a search: score the candidates of this `nas bench build` folder with "
                        "--evaluators and compare with its ground truth (--seeds: evaluator seeds)")
    p.add_argument("--evaluators", default=",".join(DEFAULT_EVALUATORS),
                   help="comma-separated evaluators for --bench, e.g. synflow,zico,train:proxy "
                        f"(default {','.join(DEFAULT_EVALUATORS)})")


DEFAULT_EVALUATORS = ("synflow", "naswot", "grad_norm", "snip", "zico", "params", "macs")


def cmd_fidelity_bench(args: argparse.Namespace) -> int:
    """`nas fidelity --bench DIR`: score the benchmark's candidates and write fidelity.*."""
    from pathlib import Path

    from ..evaluators import parse_evaluators
    from ..evaluators.fidelity import run_bench_fidelity

    evaluators = parse_evaluators(args.evaluators, args.device)  # refused before anything is scored
    out = Path(args.out) if args.out else Path(args.bench) / "fidelity"
    result = run_bench_fidelity(Path(args.bench), evaluators, args.seeds or (0,), out)
    best = result.table.sort_values("tau", ascending=False).iloc[0]
    print(f"best rank agreement: {best['evaluator']} Kendall tau {best['tau']:.2f} over {int(best['n'])} "
          f"candidates at {best['seconds_per_candidate']:.3g} s a candidate")
    print(f"outputs: {out}/fidelity.md, fidelity.csv, fidelity.png, scores.csv")
    return 0
