"""`nas train` and `nas eval`."""
from __future__ import annotations

import argparse
import json
from typing import Optional

import torch

from ..builder import build
from ..errors import NasError
from ..presets import resolve_spec
from ..train import evaluate, load_checkpoint, train
from ..train.augment import Normalize
from ..train.runtime import amp_dtype, resolve_device
from ..train.trainer import staged_split
from ..recipe import Recipe
from .common import (add_data_args, add_recipe_args, add_runtime_args, dataset_from_args,
                     recipe_from_args, runtime_from_args)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a spec or preset with the shared trainer")
    p.add_argument("spec", metavar="SPEC_OR_PRESET")
    add_data_args(p)
    add_recipe_args(p, default="full")
    add_runtime_args(p)
    p.add_argument("--out", required=True, help="run directory (checkpoint, metrics, result)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-test", action="store_true", help="skip the final test-split evaluation")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights (a `nas convert`/`nas train` run or checkpoint)")
    p.add_argument("--reset-classifier", action="store_true",
                   help="with --init: re-initialise the classifier even if the class count fits")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a data split")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="run directory or checkpoint.pt")
    add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)


def cmd_train(args: argparse.Namespace) -> int:
    spec = resolve_spec(args.spec)
    recipe = recipe_from_args(args)
    dataset = dataset_from_args(args, resolution=spec.resolution)
    print(dataset.summary())
    init = init_weights_from_args(args, spec, dataset)
    result = train(spec, dataset, recipe, runtime=runtime_from_args(args), out_dir=args.out,
                   resume=args.resume, evaluate_test=not args.no_test, init_weights=init)
    test = f", test {result.test_acc:.4f}" if result.test_acc is not None else ""
    print(f"{result.status}: {result.epochs_run} epochs, val {result.val_acc:.4f}{test}, "
          f"{result.images_per_s:,.0f} img/s, {result.train_seconds:.1f} s training "
          f"({result.wall_seconds:.1f} s wall) -> {args.out}")
    return 0 if result.status == "completed" else 1


def init_weights_from_args(args: argparse.Namespace, spec, dataset) -> Optional[dict]:
    if args.init is None:
        if args.reset_classifier:
            raise NasError("--reset-classifier needs --init CHECKPOINT")
        return None
    from ..interop.finetune import init_weights_for

    target = spec.replace(num_classes=dataset.num_classes, in_channels=dataset.channels)
    return init_weights_for(target, args.init, reset_classifier=args.reset_classifier)


def cmd_eval(args: argparse.Namespace) -> int:
    spec, state = load_checkpoint(args.checkpoint)
    recipe = Recipe.from_dict(state["recipe"])
    dataset = dataset_from_args(args, resolution=spec.resolution)
    device = resolve_device(args.device)
    model = build(spec).to(device)
    model.load_state_dict(state["weights"])
    mean, std = dataset.mean_std()
    data = staged_split(dataset, args.split, 1.0, device, spec.resolution)
    acc, loss = evaluate(model, data, Normalize(mean, std, False).to(device),
                         amp_dtype(recipe.precision, device), 1024)
    report = {"checkpoint": str(args.checkpoint), "spec": spec.name, "split": args.split,
              "images": len(data), "accuracy": acc, "loss": loss}
    print(json.dumps(report) if args.json else
          f"{spec.name} on {dataset.name} {args.split} ({len(data)} images): accuracy {acc:.4f}, "
          f"loss {loss:.4f}")
    return 0
