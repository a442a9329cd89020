"""Option groups and helpers shared by several sub-commands."""
from __future__ import annotations

import argparse
from typing import Callable, Optional

from ..data import Dataset, load_dataset
from ..errors import NasError
from ..recipe import Recipe, resolve_recipe
from ..spec import ArchSpec
from ..train import Runtime
from .options import add

DATA = ("dataset", "data_dir", "data_resolution", "val_fraction", "download")
RUNTIME = ("device", "no_cuda_graphs", "compile", "cudnn_benchmark", "channels_last")
RECIPE_OVERRIDES = ("epochs", "batch_size", "lr")


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--dataset, --data-dir, --data-resolution, --val-fraction, --download."""
    add(p, *DATA)


def dataset_from_args(args: argparse.Namespace, resolution: Optional[int] = None) -> Dataset:
    """Load the data set the options name, at `--data-resolution` or `resolution`."""
    return load_dataset(args.dataset, data_dir=args.data_dir,
                        resolution=args.data_resolution or resolution,
                        val_fraction=args.val_fraction, download=args.download)


NATIVE_RATIO = 4  # warn when the spec's input is this many times the data's own image size


def check_data_resolution(data_resolution: Optional[int], resolution: int, what: str) -> None:
    """Refuse `--data-resolution` below the net's input size: the trainer would upsample the
    images back to `resolution` (the net trains, and is counted, at `resolution`), which is
    never what asking for small images means. To train small, scale the spec's resolution."""
    if data_resolution is not None and data_resolution < resolution:
        raise NasError(f"--data-resolution {data_resolution} is below {what}'s {resolution} px input: the "
                       f"images would be upsampled back to {resolution} px and the net would still run "
                       f"(and count MACs) at {resolution} px; to train at {data_resolution} px set the "
                       f"spec's resolution to {data_resolution} (see nas flops SPEC --resolution "
                       f"{data_resolution} for its MACs)")


def native_resolution_note(dataset: Dataset, resolution: int) -> Optional[str]:
    """A one-line warning when the net's input is far above the data's own image size
    (e.g. digits' 8 px images at 224 px: compute spent on upsampled pixels)."""
    if dataset.native and resolution > NATIVE_RATIO * dataset.native:
        return (f"warning: {dataset.name} images are {dataset.native} px natively; training at "
                f"{resolution} px ({resolution / dataset.native:.0f}x) spends compute on upsampled "
                "pixels; a spec near the native size trains far faster")
    return None


def add_recipe_args(p: argparse.ArgumentParser, default: str) -> None:
    """--recipe (with this command's default) and the per-run overrides."""
    add(p, "recipe", *RECIPE_OVERRIDES, recipe=default)
    add(p, "seed", seed=None)


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


def fit_to_data(spec: ArchSpec, dataset: Dataset, log: Callable[[str], None] = print) -> ArchSpec:
    """The spec with its classifier and input channels set for `dataset`, saying so when it
    changes them (e.g. an ImageNet preset trained on CIFAR-10)."""
    if spec.num_classes == dataset.num_classes and spec.in_channels == dataset.channels:
        return spec
    log(f"note: {spec.name}: classifier set to {dataset.num_classes} classes and input to "
        f"{dataset.channels} channels for {dataset.name} (the spec had {spec.num_classes} and "
        f"{spec.in_channels})")
    return spec.replace(num_classes=dataset.num_classes, in_channels=dataset.channels)
