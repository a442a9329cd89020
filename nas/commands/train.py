"""`nas train` and `nas eval`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from ..errors import NasError
from ..presets import resolve_spec
from ..study import RunLock
from ..train import evaluate_checkpoint, load_checkpoint, train
from ..train.memory import check_memory
from .common import (DATA, add_data_args, add_recipe_args, add_runtime_args, check_data_resolution,
                     dataset_from_args, fit_to_data, native_resolution_note, recipe_from_args,
                     runtime_from_args)
from .options import add


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas train` and `nas eval`."""
    p = sub.add_parser("train", help="train a spec or preset with the shared trainer")
    p.add_argument("spec", metavar="SPEC_OR_PRESET", help="a spec YAML file or a preset name")
    add_data_args(p)
    add_recipe_args(p, default="full")
    add_runtime_args(p)
    add(p, "out")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-test", action="store_true", help="skip the final test-split evaluation")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights (a `nas convert`/`nas train` run or checkpoint)")
    p.add_argument("--reset-classifier", action="store_true",
                   help="with --init: re-initialise the classifier even if the class count fits")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a data split")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="run directory or checkpoint.pt")
    add(p, *DATA, dataset=None)
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="the split to evaluate (default test)")
    add(p, "device")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)


def cmd_train(args: argparse.Namespace) -> int:
    """Run `nas train`."""
    recipe = recipe_from_args(args)
    spec = resolve_spec(args.spec)
    check_data_resolution(args.data_resolution, spec.resolution, spec.name)
    check_memory(spec, recipe.batch_size, args.device)
    dataset = dataset_from_args(args, resolution=spec.resolution)
    spec = fit_to_data(spec, dataset)
    print(dataset.summary())
    note = native_resolution_note(dataset, spec.resolution)
    if note:
        print(note, file=sys.stderr)
    init = init_weights_from_args(args, spec, dataset)
    with RunLock(Path(args.out)):
        result = train(spec, dataset, recipe, runtime=runtime_from_args(args), out_dir=args.out,
                       resume=args.resume, evaluate_test=not args.no_test, init_weights=init)
    test = f", test {result.test_acc:.4f}" if result.test_acc is not None else ""
    val = f"{result.val_acc:.4f}" if result.val_acc is not None else "-"
    print(f"{result.status}: {result.epochs_run} epochs, val {val}{test}, "
          f"{result.images_per_s:,.0f} img/s, {result.train_seconds:.1f} s training "
          f"({result.wall_seconds:.1f} s wall) -> {args.out}")
    return 0 if result.status == "completed" else 1


def init_weights_from_args(args: argparse.Namespace, spec, dataset) -> Optional[dict]:
    """The state_dict `--init` names, fitted to `spec` (classifier reset when asked or needed)."""
    if args.init is None:
        if args.reset_classifier:
            raise NasError("--reset-classifier needs --init CHECKPOINT")
        return None
    from ..interop.finetune import init_weights_for

    return init_weights_for(spec, args.init, reset_classifier=args.reset_classifier)


def cmd_eval(args: argparse.Namespace) -> int:
    """Run `nas eval`."""
    spec, state = load_checkpoint(args.checkpoint)
    if args.dataset is None:  # the run folder knows its data set
        saved = (state.get("fingerprint") or {}).get("data") or {}
        args.dataset = saved.get("name")
        if args.dataset is None or args.dataset.startswith("imagefolder:"):
            raise NasError(f"{args.checkpoint} does not record a loadable data set; pass --dataset")
    dataset = dataset_from_args(args, resolution=spec.resolution)
    report = evaluate_checkpoint(args.checkpoint, dataset, args.split, args.device)
    print(json.dumps(report) if args.json else
          f"{report['spec']} on {dataset.name} {args.split} ({report['images']} images): accuracy "
          f"{report['accuracy']:.4f}, loss {report['loss']:.4f}")
    return 0
