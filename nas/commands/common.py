"""Option groups and helpers shared by several sub-commands."""
from __future__ import annotations

import argparse
from typing import Optional

from ..data import Dataset
from ..recipe import Recipe, resolve_recipe
from ..settings import DataRequest
from ..train import Runtime
from .options import ONE_SEED, add

DATA = ("dataset", "data_dir", "data_resolution", "val_fraction", "download")
RUNTIME = ("device", "no_cuda_graphs", "compile", "cudnn_benchmark", "channels_last")
RECIPE_OVERRIDES = ("epochs", "batch_size", "lr")


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--dataset, --data-dir, --data-resolution, --val-fraction, --download."""
    add(p, *DATA)


def dataset_from_args(args: argparse.Namespace, resolution: Optional[int] = None) -> Dataset:
    """Load the data set the options name, at `--data-resolution` or `resolution`."""
    return DataRequest.from_args(args).load(resolution)


def add_recipe_args(p: argparse.ArgumentParser, default: str) -> None:
    """--recipe (with this command's default) and the per-run overrides."""
    add(p, "recipe", *RECIPE_OVERRIDES, recipe=default)
    add(p, "seed", seed=None)
    p.add_argument("--seeds", dest="seed", type=ONE_SEED, default=None,
                   help="the same as --seed (one run, so one seed), for the flag of nas compare")


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """The recipe with any --epochs/--batch-size/--lr/--seed overrides applied."""
    recipe = resolve_recipe(args.recipe)
    overrides = {k: getattr(args, k) for k in (*RECIPE_OVERRIDES, "seed")
                 if getattr(args, k, None) is not None}
    return recipe.replace(**overrides) if overrides else recipe


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    """--device and the speed switches."""
    add(p, *RUNTIME)


def runtime_from_args(args: argparse.Namespace, quiet: bool = False) -> Runtime:
    """The Runtime the speed options describe."""
    return Runtime(device=args.device, cuda_graphs=not args.no_cuda_graphs, compile=args.compile,
                   cudnn_benchmark=args.cudnn_benchmark, channels_last=args.channels_last, quiet=quiet)
