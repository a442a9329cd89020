"""`nas train` and `nas eval`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from ..data import dataset_name
from ..errors import Interrupted, NasError
from ..presets import resolve_spec
from ..settings import DataRequest
from ..study import check_unlocked
from ..train import CHECKPOINT, evaluate_checkpoint, load_checkpoint, train
from ..runfolder.fingerprint import run_fingerprint
from ..train.memory import check_memory
from ..runfolder.runs import train_folder
from ..data.fit import check_data_resolution, fit_to_data, native_resolution_note
from ..runfolder.folders import locked_folders
from .common import (DATA, add_data_args, add_recipe_args, add_runtime_args, dataset_from_args, recipe_from_args,
                     runtime_from_args)
from .options import POSITIVE_INT, add


def register(sub: argparse._SubParsersAction) -> None:
    """Add `nas train` and `nas eval`."""
    p = sub.add_parser("train", help="train a spec or preset with the shared trainer")
    p.add_argument("spec", metavar="SPEC_OR_PRESET", help="a spec YAML file or a preset name")
    add_data_args(p)
    add_recipe_args(p, default="full")
    add_runtime_args(p)
    p.add_argument("--resolution", type=POSITIVE_INT,
                   help="train the net at this input size instead of its spec's (as `nas flops "
                        "--resolution`; the images are decoded at it unless --data-resolution is larger)")
    add(p, "out", helps={"out": "run folder: checkpoint.pt, metrics.csv, result.json, spec.yaml"})
    p.add_argument("--resume", action="store_true",
                   help="continue the run of this configuration in --out (or in the --force sub-folder "
                        "that holds it)")
    p.add_argument("--force", action="store_true",
                   help="when --out holds a run, start over in a fresh sub-folder (run-2, run-3, ...) "
                        "instead of refusing; nothing is overwritten")
    p.add_argument("--no-test", action="store_true", help="skip the final test-split evaluation")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start from these weights (a `nas convert`/`nas train` run or checkpoint)")
    p.add_argument("--reset-classifier", action="store_true",
                   help="with --init: re-initialise the classifier even if the class count fits")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a data split")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="run directory or checkpoint.pt")
    add(p, *DATA, dataset=None, val_fraction=None,
        helps={"dataset": "digits, cifar10 or imagefolder:PATH (default: the one the run trained on)",
               "data_dir": "where cifar10 lives (default: the copy the run trained on, else $NAS_DATA_DIR)",
               "val_fraction": "share held out for validation (default: the run's own, so --split val "
                               "is the split it was validated on)"})
    p.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="the split to evaluate (default test)")
    add(p, "device")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)


def cmd_train(args: argparse.Namespace) -> int:
    """Run `nas train`."""
    recipe = recipe_from_args(args)
    spec = resolve_spec(args.spec)
    if args.resolution is not None:
        spec = spec.replace(resolution=args.resolution)
    check_data_resolution(args.data_resolution, spec.resolution, spec.name)
    check_memory(spec, recipe.batch_size, args.device)
    dataset = dataset_from_args(args, resolution=spec.resolution)
    spec = fit_to_data(spec, dataset)
    print(dataset.summary())
    note = native_resolution_note(dataset, spec.resolution)
    if note:
        print(note, file=sys.stderr)
    init = init_weights_from_args(args, spec, dataset)
    out = Path(args.out)
    check_unlocked(out)  # before reading the run files another process may be writing
    folder, resume = train_folder(out, run_fingerprint(spec, recipe, dataset), args.resume, args.force)
    if folder != out:
        print(f"resuming the run of this configuration in {folder}" if resume else
              f"{out} holds a run; --force: starting over in {folder}")
    with locked_folders(out, folder):
        try:
            result = train(spec, dataset, recipe, runtime=runtime_from_args(args), out_dir=folder,
                           resume=resume, evaluate_test=not args.no_test, init_weights=init)
        except KeyboardInterrupt:
            raise Interrupted(interrupted_line(folder, out, resume)) from None
    test = f", test {result.test_acc:.4f}" if result.test_acc is not None else ""
    val = f"{result.val_acc:.4f}" if result.val_acc is not None else "-"
    print(f"{result.status}: {result.epochs_run} epochs, val {val}{test}, "
          f"{result.images_per_s:,.0f} img/s, {result.train_seconds:.1f} s training "
          f"({result.wall_seconds:.1f} s wall) -> {folder}")
    return 0 if result.status == "completed" else 1


def interrupted_line(folder: Path, out: Path, resumed: bool) -> str:
    """What a Ctrl-C'd `nas train` into `folder` saved, and how to go on. Epochs are counted
    from metrics.csv, written beside each checkpoint (no checkpoint load in a Ctrl-C handler)."""
    metrics = folder / "metrics.csv"
    epochs = max(0, len(metrics.read_text().splitlines()) - 1) if metrics.is_file() else 0
    if not epochs and not resumed:
        return ("interrupted before the first epoch ended; nothing saved: re-run the same command "
                "to start again")
    how = "the same command with --resume" if folder == out else f"with --resume --out {folder}"
    return f"interrupted; {folder / CHECKPOINT} holds epoch {epochs}: re-run {how} to go on from there"


SPLITS = ("train", "val", "test")


def data_request_from_run(args: argparse.Namespace, saved: dict,
                          val_fraction: Optional[float]) -> tuple[DataRequest, bool]:
    """The data `nas eval DIR` evaluates on: the options given, and for those left out what the
    run recorded (its data fingerprint), so a run is evaluated on its own data, decoded as it
    was. Also whether the validation share had to be guessed from the split sizes (checkpoints
    that do not record it)."""
    source = saved.get("source")
    dataset = args.dataset
    if dataset is None:
        dataset = saved.get("name")
        if dataset is None:
            raise NasError(f"{args.checkpoint} does not record its data set (an older or converted "
                           "checkpoint); pass --dataset")
        if dataset.startswith("imagefolder:"):  # the name keeps the folder's name only
            if not (source and Path(source).is_dir()):
                raise NasError(f"{args.checkpoint} was trained on the image folder {source}, which is "
                               "not here; pass --dataset imagefolder:PATH")
            dataset = f"imagefolder:{source}"
    elif saved.get("name") not in (None, dataset_name(dataset)):  # before loading it
        raise NasError(f"{args.checkpoint} was trained on {saved['name']}, not {dataset}; leave "
                       "--dataset out (the run knows its data) or fine-tune first (nas train --init)")
    data_dir = args.data_dir
    if data_dir is None and dataset == saved.get("name") == "cifar10" and source and Path(source).exists():
        data_dir = source
    resolution = args.data_resolution
    if resolution is None and dataset_name(dataset) == saved.get("name"):
        resolution = saved.get("resolution")
    sizes = saved.get("sizes")
    guessed = args.val_fraction is None and val_fraction is None
    share = (args.val_fraction or val_fraction if not guessed
             else round(sizes[1] / (sizes[0] + sizes[1]), 3) if sizes else 0.1)
    return DataRequest(dataset, data_dir, resolution, share, args.download), guessed


def check_split_as_trained(saved: dict, dataset, split: str, checkpoint: str, guessed: bool) -> None:
    """Refuse a split whose size differs from the run's own (another --val-fraction, another
    copy of the data): its accuracy would not be the one the run reported."""
    sizes = saved.get("sizes")
    if not sizes or saved.get("name") != dataset.name:
        return  # another data set: evaluate_checkpoint refuses it by name and class count
    now = [len(dataset.train), len(dataset.val), len(dataset.test)]
    i = SPLITS.index(split)
    if now[i] != sizes[i]:
        fix = ("this checkpoint does not record its validation share: pass the --val-fraction it "
               "trained with" if guessed else "leave --data-dir and --val-fraction out to use the "
               "run's own, or give the copy and share it trained with")
        raise NasError(f"{checkpoint}: the {split} split has {now[i]:,} images here but {sizes[i]:,} "
                       f"when the run trained; {fix}")


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
    saved = (state.get("fingerprint") or {}).get("data") or {}
    request, guessed = data_request_from_run(args, saved, state.get("val_fraction"))
    dataset = request.load(spec.resolution)
    check_split_as_trained(saved, dataset, args.split, args.checkpoint, guessed)
    report = evaluate_checkpoint(args.checkpoint, dataset, args.split, args.device)
    print(json.dumps(report) if args.json else
          f"{report['spec']} on {dataset.name} {args.split} ({report['images']} images): accuracy "
          f"{report['accuracy']:.4f}, loss {report['loss']:.4f}")
    return 0
