"""`nas supernet train | eval | extract`: one weight-sharing supernet per space and data set."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..settings import DataRequest
from .common import DATA, add_recipe_args, add_runtime_args, dataset_from_args, recipe_from_args, runtime_from_args
from .options import POSITIVE_INT, add


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas supernet` and its three steps."""
    p = sub.add_parser("supernet", help="train one weight-sharing supernet of a space, then judge or extract "
                                        "any subnet in seconds")
    steps = p.add_subparsers(dest="supernet_command", required=True, metavar="STEP")
    t = steps.add_parser("train", help="train the space's supernet (sandwich rule, in-place distillation; "
                                       "resumable)")
    add(t, "space", *DATA, "out")
    add_recipe_args(t, default="cifar16-supernet")
    add_runtime_args(t)
    t.add_argument("--sampled", type=POSITIVE_INT, default=2,
                   help="random subnets a step besides the largest and the smallest (default 2)")
    t.add_argument("--resume", action="store_true", help="continue the supernet in --out")
    t.set_defaults(func=cmd_train)
    for name, helptext in (("eval", "accuracy of a subnet with inherited weights and precise BN"),
                           ("extract", "write a subnet as a standalone run folder (spec.yaml, checkpoint.pt) "
                                       "for `nas train --init` and `nas export`")):
        e = steps.add_parser(name, help=helptext)
        e.add_argument("supernet", metavar="DIR", help="a `nas supernet train` folder")
        e.add_argument("arch", metavar="ARCH_OR_SPEC",
                       help="a spec YAML file, a preset, or the stages as one quoted line "
                            "(e.g. 'ds_r1_k3_s1_e1_c16 mbconv_r2_k5_s2_e6_c24 ...')")
        add(e, *DATA, "device", dataset=None,
            helps={"dataset": "the data (default: the one the supernet trained on)"})
        if name == "eval":
            e.add_argument("--split", choices=("val", "test"), default="val", help="split to score (default val)")
        else:
            add(e, "out")
        e.set_defaults(func=cmd_eval if name == "eval" else cmd_extract)
    r = steps.add_parser("predictor", help="judge random subnets with the supernet and fit an accuracy predictor "
                                           "(for --evaluator predictor:DIR: thousands of trials in minutes)")
    r.add_argument("supernet", metavar="DIR", help="a `nas supernet train` folder")
    r.add_argument("--samples", type=POSITIVE_INT, default=300,
                   help="distinct random subnets judged (default 300; re-running with more goes on)")
    add(r, *DATA, "device", "seed", dataset=None,
        helps={"dataset": "the data (default: the one the supernet trained on)"})
    r.set_defaults(func=cmd_predictor)


def cmd_train(args: argparse.Namespace) -> int:
    """Train or resume the supernet; print where it went."""
    from ..search.space import load_space
    from ..supernet.train import train_supernet

    space = load_space(args.space)
    recipe = recipe_from_args(args)
    dataset = dataset_from_args(args, resolution=space.base.resolution)
    run = train_supernet(space, dataset, recipe, args.out, runtime_from_args(args), args.resume, args.sampled)
    last = run.history[-1]
    print(f"supernet trained: {run.epochs} epochs in {run.train_seconds / 60:.1f} min; largest subnet val "
          f"{last['val_largest'] * 100:.2f}%, smallest {last['val_smallest'] * 100:.2f}%")
    print(f"outputs: {args.out}/supernet.pt, supernet.json, history.csv; judge subnets with "
          f"--evaluator supernet:{args.out}")
    return 0


def _loaded(args: argparse.Namespace):
    from ..supernet.judge import load_supernet

    loaded = load_supernet(args.supernet, args.device)  # auto: the GPU when there is one
    request = DataRequest(args.dataset or loaded.meta["dataset"], args.data_dir, args.data_resolution,
                          args.val_fraction, args.download)
    dataset = request.load(loaded.space.base.resolution)
    loaded.check_data(dataset)
    return loaded, dataset


def cmd_predictor(args: argparse.Namespace) -> int:
    """Judge --samples subnets, fit the predictor and print its out-of-fold agreement."""
    from ..supernet.judge import judge_dataset
    from ..supernet.predictor import build_predictor

    loaded, dataset = _loaded(args)
    summary = build_predictor(loaded.folder, lambda spec: judge_dataset(loaded, spec, dataset), loaded.plan,
                              dataset.num_classes, args.samples, args.seed)
    print(f"predictor fitted on {summary['samples']} judged subnets: out-of-fold Kendall tau "
          f"{summary['oof_kendall_tau']:.2f}, Spearman rho {summary['oof_spearman_rho']:.2f}, mean abs error "
          f"{summary['oof_mae_pts']:.2f} pts; search with --evaluator predictor:{args.supernet}")
    return 0


def _subnet(args: argparse.Namespace):
    from ..counting import analytic_count
    from ..supernet.specs import subnet_spec

    loaded, dataset = _loaded(args)
    spec = subnet_spec(loaded.plan, args.arch, dataset)
    loaded.plan.check_runs(spec)
    return loaded, dataset, spec, analytic_count(spec)


def cmd_eval(args: argparse.Namespace) -> int:
    """Print the subnet's accuracy, MACs, params and the seconds the judgement took."""
    from ..supernet.judge import judge_dataset

    loaded, dataset, spec, count = _subnet(args)
    acc, seconds = judge_dataset(loaded, spec, dataset, args.split)
    print(f"{spec.name}: {args.split} {acc * 100:.2f}% with inherited weights (precise BN), "
          f"{count.macs / 1e6:.2f} M MACs, {count.params / 1e3:.1f} k params, judged in {seconds:.2f} s")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    """Write the subnet (BN recalibrated) as a run folder that `nas train --init` and `nas export` read."""
    from ..supernet.judge import extract_calibrated
    from ..interop.checkpoint import write_run

    loaded, dataset, spec, count = _subnet(args)
    net, acc = extract_calibrated(loaded, spec, dataset)
    write_run(Path(args.out), spec, net.state_dict(),
              {"source": f"supernet:{args.supernet}", "arch": spec.arch_string(), "val_acc": acc,
               "macs": count.macs, "params": count.params})
    print(f"extracted {spec.name} ({count.macs / 1e6:.2f} M MACs, val {acc * 100:.2f}% with inherited weights) "
          f"to {args.out}: fine-tune with `nas train {args.out}/spec.yaml --init {args.out}`")
    return 0
