"""Arguments shared by several sub-commands."""
from __future__ import annotations

import argparse
from typing import Optional

from ..data import Dataset, load_dataset
from ..recipe import Recipe, resolve_recipe
from ..train import Runtime


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--dataset", required=required,
                   help="digits (built in), cifar10, or imagefolder:PATH")
    p.add_argument("--data-dir", help="where cifar10 lives (default: $NAS_DATA_DIR)")
    p.add_argument("--data-resolution", type=int,
                   help="decode image folders at this size (default: the spec's resolution)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training data held out for validation (default 0.1)")
    p.add_argument("--download", action="store_true",
                   help="fetch CIFAR-10 with torchvision when no local copy is found")


def dataset_from_args(args: argparse.Namespace, resolution: Optional[int] = None) -> Dataset:
    return load_dataset(args.dataset, data_dir=args.data_dir,
                        resolution=args.data_resolution or resolution,
                        val_fraction=args.val_fraction, download=args.download)


def add_recipe_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--recipe", default=default,
                   help=f"recipe preset (smoke, proxy, full) or YAML file (default {default})")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    p.add_argument("--lr", type=float, help="override the recipe's peak learning rate")
    p.add_argument("--seed", type=int, help="override the recipe's seed")


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    recipe = resolve_recipe(args.recipe)
    overrides = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "seed")
                 if getattr(args, k, None) is not None}
    return recipe.replace(**overrides) if overrides else recipe


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--no-cuda-graphs", action="store_true", help="run the GPU step eagerly")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (minutes per architecture; for long runs)")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="let cuDNN autotune (13-28 s per new net; for long runs)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")


def runtime_from_args(args: argparse.Namespace, quiet: bool = False) -> Runtime:
    return Runtime(device=args.device, cuda_graphs=not args.no_cuda_graphs, compile=args.compile,
                   cudnn_benchmark=args.cudnn_benchmark, channels_last=args.channels_last, quiet=quiet)
