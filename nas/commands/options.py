"""Every command-line option, defined once: flag, type, default and help text.

Commands pick options by name (`add(parser, "dataset", "recipe", ...)`), and configs are
built from the parsed arguments by field name (`config_from(SearchConfig, args)`), so an
option is written in one place and reaches its config field without a hand copy.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import NasError


def _parse_with(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Turn a parser raising NasError into an argparse type (a one-line usage error, exit 2)."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except (NasError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _finite(kind: type, low: Optional[float] = None, low_open: bool = False,
            below: Optional[float] = None) -> Callable[[str], Any]:
    """A number of `kind`, finite, >= low (> low when `low_open`) and < `below` when given;
    the messages read after the flag: `--trials must be >= 1 (got 0)`."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"must be {'an integer' if kind is int else 'a number'} (got {text!r})") from None
        if not math.isfinite(value):
            raise ValueError(f"must be finite (got {text})")
        if below is not None and not (low < value < below):
            raise ValueError(f"must be between {low:g} and {below:g}, both excluded (got {text})")
        if low is not None and (value <= low if low_open else value < low):
            raise ValueError(f"must be {'>' if low_open else '>='} {low:g} (got {text})")
        return value
    parse.__name__ = kind.__name__
    return _parse_with(parse)


def _macs(text: str) -> int:
    from ..search.objectives import parse_macs
    return parse_macs(text)


def _target(text: str):
    from ..costs import parse_target
    return parse_target(text)


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"cannot read seeds {text!r}; write e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds {text!r} must name distinct integers, e.g. 0,1,2")
    return seeds


def _one_seed(text: str) -> int:
    seeds = _seeds(text)
    if len(seeds) != 1:
        raise ValueError(f"this command trains one run: give one seed, not {text!r} (nas compare "
                         "SPEC --seeds 0,1,2 trains several)")
    return seeds[0]


def _seed_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a count: give how many seeds each grid point trains "
                         "(seeds --seed, --seed+1, ...), e.g. 3") from None
    if count < 1:
        raise ValueError(f"must be >= 1 (got {text})")
    return count


def _phis(text: str) -> str:
    from scaling.emit import parse_phis
    parse_phis(text)  # refuse nan, inf and unreadable lists at parse time; commands re-read the text
    return text


POSITIVE_INT = _finite(int, 1)
NON_NEGATIVE_INT = _finite(int, 0)
NUMBER = _finite(float)
POSITIVE = _finite(float, 0, low_open=True)
NON_NEGATIVE = _finite(float, 0)
FRACTION = _finite(float, 0, low_open=True, below=1)
MACS = _parse_with(_macs)
TARGET = _parse_with(_target)
SEEDS = _parse_with(_seeds)
ONE_SEED = _parse_with(_one_seed)
SEED_COUNT = _parse_with(_seed_count)
PHIS = _parse_with(_phis)


@dataclass(frozen=True)
class Opt:
    """One option: its flags, help text and the other argparse keywords."""
    flags: tuple[str, ...]
    help: str
    kwargs: dict = field(default_factory=dict)


def _opt(*flags: str, help: str, **kwargs: Any) -> Opt:
    return Opt(flags, help, kwargs)


OPTIONS: dict[str, Opt] = {
    # data
    "dataset": _opt("--dataset", required=True, help="digits (built in), cifar10, or imagefolder:PATH"),
    "data_dir": _opt("--data-dir", help="where cifar10 lives (default: $NAS_DATA_DIR)"),
    "data_resolution": _opt("--data-resolution", type=POSITIVE_INT,
                            help="decode images at this size (default: the spec's resolution)"),
    "val_fraction": _opt("--val-fraction", type=FRACTION, default=0.1,
                         help="share of the training data held out for validation (default 0.1)"),
    "download": _opt("--download", action="store_true",
                     help="fetch CIFAR-10 with torchvision when no local copy is found (needs internet)"),
    # recipe
    "recipe": _opt("--recipe", default="proxy",
                   help="recipe preset (smoke, demo, proxy, proxy-fast, full, ...) or a YAML file"),
    "epochs": _opt("--epochs", type=POSITIVE_INT, help="override the recipe's epochs"),
    "batch_size": _opt("--batch-size", type=POSITIVE_INT, help="override the recipe's batch size"),
    "lr": _opt("--lr", type=POSITIVE, help="override the recipe's peak learning rate"),
    "seed": _opt("--seed", type=_finite(int), default=0, help="random seed of sampling and training (default 0)"),
    "seeds": _opt("--seeds", "--seed", type=SEEDS, default=(0,),
                  help="comma-separated training seeds, e.g. 0,1,2 (default 0; --seed is the same option)"),
    "grid_seeds": _opt("--grid-seeds", type=SEED_COUNT, default=1,
                       help="seeds trained per grid point: --seed, --seed+1, ... (default 1; 3 or more "
                            "to call a winner)"),
    # runtime
    "device": _opt("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)"),
    "no_cuda_graphs": _opt("--no-cuda-graphs", action="store_true", help="run the GPU training step eagerly"),
    "compile": _opt("--compile", action="store_true",
                    help="torch.compile the model (minutes per architecture; for long runs)"),
    "cudnn_benchmark": _opt("--cudnn-benchmark", action="store_true",
                            help="let cuDNN autotune (13-28 s per new net; for long runs)"),
    "channels_last": _opt("--channels-last", choices=("auto", "on", "off"), default="auto",
                          help="memory layout: auto (the faster one for the device), on or off"),
    "force": _opt("--force", action="store_true",
                  help="when a run folder holds another configuration, train into a fresh sub-folder "
                       "of it (run-2, run-3, ...) instead of refusing; nothing is overwritten"),
    # study runs
    "out": _opt("--out", required=True, help="run folder; re-running the same command resumes it"),
    "storage": _opt("--storage", help="Optuna storage: a journal file path or an RDB URL such as "
                                      "postgresql+psycopg://... (default: OUT/study.journal)"),
    "study_name": _opt("--study-name", help="study name in a shared storage (default: the --out folder name)"),
    "workers": _opt("--workers", type=POSITIVE_INT, default=1,
                    help="worker processes (one per GPU when there are several; default 1)"),
    "heartbeat": _opt("--heartbeat", type=POSITIVE_INT, default=30,
                      help="RDB storages: seconds between a worker's heartbeats; a trial silent for 4 "
                           "heartbeats is from a dead worker and is re-queued (default 30)"),
    "timeout": _opt("--timeout", type=POSITIVE,
                    help="start no new trial after this many seconds; outputs are written, re-run to go on"),
    # search
    "space": _opt("--space", required=True, help="search space: mnasnet, cifar, tiny, or a YAML file"),
    "target_macs": _opt("--target-macs", type=MACS,
                        help="MACs target T (the paper's FLOPs), e.g. 400M, 1.5M or 116167168; the same "
                             "as --cost macs --target 400M"),
    "cost": _opt("--cost", choices=("macs", "params", "latency"), default="macs",
                 help="what the objective weighs against accuracy: analytic MACs or params, or latency "
                      "on --latency-device"),
    "target": _opt("--target", type=TARGET,
                   help="cost target T with its unit: 800k or 1.2M (macs, params), 5ms, 0.5s or 800us (latency)"),
    "latency_device": _opt("--latency-device", choices=("cpu", "cuda"), default="cpu",
                           help="device latency is measured on (--cost latency; torch's CPU threads)"),
    "latency_batch": _opt("--latency-batch", type=POSITIVE_INT, default=1,
                          help="images per timed forward pass (default 1)"),
    "latency_source": _opt("--latency-source", choices=("measured", "predicted"), default="measured",
                           help="measured: build and time each candidate (cached in OUT/latency_cache.json); "
                                "predicted: sum of --latency-table entries"),
    "latency_stat": _opt("--latency-stat", choices=("median", "min"), default="median",
                         help="one number from the timed repeats: median, or min (robust when other jobs "
                              "share the cores; see results/latency-cpu)"),
    "latency_table": _opt("--latency-table",
                          help="lookup table from `nas latency table` (with --latency-source predicted)"),
    "objective": _opt("--objective", choices=("reward", "hard", "pareto"), default="reward",
                      help="reward: ACC*(C/T)^w for the --cost C (default); hard: reject C > T untrained; "
                           "pareto: two objectives"),
    "w": _opt("--w", type=NUMBER, default=-0.07, help="reward exponent w (default -0.07)"),
    "w_above": _opt("--w-above", type=NUMBER, help="exponent above T for an asymmetric reward (default: --w)"),
    "trials": _opt("--trials", type=POSITIVE_INT, default=20, help="candidates to train (default 20)"),
    "evaluator": _opt("--evaluator", help="judge candidates with this evaluator instead of training with "
                                          "--recipe (train:RECIPE, sotl:RECIPE, synflow, naswot, grad_norm, "
                                          "snip, zico, params, macs; `nas fidelity --bench` says which to "
                                          "trust); its score takes the place of validation accuracy"),
    "prefilter": _opt("--prefilter", help="two-stage search: score --prefilter-trials random candidates with "
                                          "this cheap evaluator (e.g. synflow), then train only the best --trials"),
    "prefilter_trials": _opt("--prefilter-trials", type=POSITIVE_INT,
                             help="candidates the --prefilter evaluator scores (default 10 x --trials)"),
    "budget_draws": _opt("--budget-draws", type=NON_NEGATIVE_INT, default=256,
                         help="hard budget: an over-budget sample is redrawn (near the sampler's proposal) up to "
                              "this many times before it becomes a rejected trial; 0 = no redraws (default 256)"),
    "sampler": _opt("--sampler", choices=("tpe", "nsga2", "random"), default="tpe",
                    help="Optuna sampler (default tpe)"),
    "baselines": _opt("--baselines", choices=("none", "as-is", "matched"), default="matched",
                      help="the space's hand-designed baselines, trained first: matched = each rescaled "
                           "by width to --target-macs (an equal-cost seed), as-is = at their own sizes, "
                           "none; in hard mode one over the budget is rescaled below it or skipped"),
    "pruner": _opt("--pruner", choices=("median", "halving", "none"), default="median",
                   help="early stopping on the per-epoch reward; not in pareto mode (default median)"),
    # scaling
    "base": _opt("--base", required=True, help="base spec YAML or preset (e.g. a search's best.yaml)"),
    "step": _opt("--step", type=POSITIVE, default=0.05, help="grid step of alpha, beta, gamma (default 0.05)"),
    "tolerance": _opt("--tolerance", type=POSITIVE, default=0.06,
                      help="allowed |realised MACs ratio - 2| of a grid point (default 0.06: 3 %% of 2x)"),
    "nominal_window": _opt("--nominal-window", type=NON_NEGATIVE, default=0.3,
                           help="candidates considered: |alpha*beta^2*gamma^2 - 2| <= this (default 0.3)"),
    "closest": _opt("--closest", "--grid-closest", type=POSITIVE_INT,
                    help="train only the K points whose realised ratio is closest to 2"),
    "alpha_max": _opt("--alpha-max", type=POSITIVE, default=2.0, help="largest depth coefficient (default 2.0)"),
    "beta_max": _opt("--beta-max", type=POSITIVE, default=1.5, help="largest width coefficient (default 1.5)"),
    "gamma_max": _opt("--gamma-max", type=POSITIVE, default=1.5,
                      help="largest resolution coefficient (default 1.5)"),
    "resolution_multiple": _opt("--resolution-multiple", type=NON_NEGATIVE_INT, default=0,
                                help="round scaled resolutions to this many pixels (default 0: 8 from 64 px, "
                                     "4 from 32 px, 2 below, so gamma ~ 1.1 stays expressible)"),
    "phi": _opt("--phi", default="1..7", type=PHIS,
                help="compound coefficients, e.g. 1..7, 1,2,3 or -1,0.5 (negative and fractional phi too)"),
}


def add(parser: argparse.ArgumentParser, *names: str, helps: Optional[dict[str, str]] = None,
        **defaults: Any) -> None:
    """Add the named options; keyword arguments override an option's default, and `helps` its
    help text where a command gives the option a wider meaning (e.g. per pipeline step)."""
    for name in names:
        opt = OPTIONS[name]
        kwargs = dict(opt.kwargs)
        if name in defaults:
            kwargs["default"] = defaults[name]
            kwargs.pop("required", None)
        help_text = (helps or {}).get(name, opt.help)
        if kwargs.get("default") not in (None, False) and "default" not in help_text:
            help_text += f" (default {kwargs['default']})"
        parser.add_argument(*opt.flags, dest=name, help=help_text, **kwargs)


COST_OPTIONS = ("target_macs", "cost", "target", "latency_device", "latency_batch", "latency_stat",
                "latency_source", "latency_table")


def cost_fields(args: argparse.Namespace) -> dict[str, Any]:
    """target_macs and target for a search config from --cost, --target and --target-macs
    (nas.costs.resolve_target: one line when they are missing, disagree or have the wrong unit)."""
    from ..costs import resolve_target
    target_macs, target = resolve_target(args.cost, args.target, args.target_macs)
    return {"target_macs": target_macs, "target": target}


def config_from(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """Build a config dataclass from the parsed arguments whose names match its fields."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(extra)
    return cls(**values)
