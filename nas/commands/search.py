"""`nas search`: a multi-objective architecture search for a MACs budget."""
from __future__ import annotations

import argparse

from ..search.engine import PRUNERS, SAMPLERS, SearchConfig, run_search
from ..search.objectives import MODES, parse_macs
from ..search.report import cost_line, write_outputs
from ..search.space import load_space


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a baseline network for a MACs target")
    p.add_argument("--space", required=True, help="search space: mnasnet, cifar, tiny or a YAML file")
    p.add_argument("--dataset", required=True, help="digits, cifar10 or imagefolder:PATH")
    p.add_argument("--data-dir", help="where cifar10 lives (default: $NAS_DATA_DIR)")
    p.add_argument("--data-resolution", type=int, help="decode image folders at this size")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training data held out for validation (default 0.1)")
    p.add_argument("--target-macs", required=True, type=parse_macs,
                   help="MACs target T (the paper's FLOPs), e.g. 400M or 116167168")
    p.add_argument("--objective", choices=MODES, default="reward",
                   help="reward: ACC*(MACs/T)^w (default); hard: reject > T untrained; pareto: two objectives")
    p.add_argument("--w", type=float, default=-0.07, help="reward exponent (default -0.07)")
    p.add_argument("--w-above", type=float, help="exponent above T (asymmetric reward; default --w)")
    p.add_argument("--trials", type=int, default=20, help="candidates to train (default 20)")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    p.add_argument("--pruner", choices=PRUNERS, default="median",
                   help="early stopping on the per-epoch reward (not in pareto mode)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recipe", default="proxy", help="proxy-training recipe (default proxy)")
    p.add_argument("--storage", help="Optuna storage URL or journal file (default: DIR/study.journal)")
    p.add_argument("--study-name", help="study name in a shared storage (default: the --out folder name)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (one per GPU if several)")
    p.add_argument("--device", default="auto")
    p.add_argument("--timeout", type=float,
                   help="start no new trial after this many seconds; outputs are written, re-run to go on")
    p.add_argument("--out", required=True, help="run directory; re-running the command resumes it")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    config = SearchConfig(
        space=args.space, dataset=args.dataset, target_macs=args.target_macs, out=args.out,
        objective=args.objective, w=args.w, w_above=args.w_above, trials=args.trials,
        sampler=args.sampler, pruner=args.pruner, seed=args.seed, recipe=args.recipe,
        storage=args.storage, study_name=args.study_name, workers=args.workers, device=args.device,
        data_dir=args.data_dir, data_resolution=args.data_resolution, timeout=args.timeout,
        val_fraction=args.val_fraction)
    study = run_search(config)
    summary = write_outputs(study, config, load_space(config.space))
    best = summary["best"]
    if best:
        print(f"best: trial #{best['trial']} val {best['val_acc'] * 100:.2f}% at "
              f"{best['macs'] / 1e6:.2f} M MACs (reward {best['reward']:.4f}) -> {args.out}/best.yaml")
    else:
        print("no candidate finished training; nothing to call best")
    print(cost_line(summary["cost"]))
    print(f"outputs: {args.out}/trials.csv, pareto.csv, best.yaml, summary.md, pareto.png, history.png, cost.json")
    return 0
