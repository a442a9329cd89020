"""Option groups and helpers shared by several sub-commands."""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional

from ..data import Dataset, load_dataset
from ..data.fit import check_data_resolution, native_resolution_note  # noqa: F401 (re-exported)
from ..recipe import Recipe, resolve_recipe
from ..spec import ArchSpec
from ..train import Runtime
from ..study import RunLock, check_unlocked
from .options import ONE_SEED, add

if TYPE_CHECKING:
    from ..train.runfolder import FitOf

DATA = ("dataset", "data_dir", "data_resolution", "val_fraction", "download")
RUNTIME = ("device", "no_cuda_graphs", "compile", "cudnn_benchmark", "channels_last")
RECIPE_OVERRIDES = ("epochs", "batch_size", "lr")


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--dataset, --data-dir, --data-resolution, --val-fraction, --download."""
    add(p, *DATA)


def dataset_for_nets(args: argparse.Namespace, nets: list[ArchSpec],
                     loaded: Optional[Dataset] = None) -> Dataset:
    """The data set decoded for `nets` (nas.preflight.decode_resolution); `loaded` is reused
    when it already has that size."""
    from ..preflight import decode_resolution

    size = decode_resolution(nets, args.data_resolution)
    if loaded is not None and loaded.resolution == size:
        return loaded
    return dataset_from_args(args, resolution=size)


def dataset_from_args(args: argparse.Namespace, resolution: Optional[int] = None) -> Dataset:
    """Load the data set the options name, at `--data-resolution` or `resolution`."""
    return load_dataset(args.dataset, data_dir=args.data_dir,
                        resolution=args.data_resolution or resolution,
                        val_fraction=args.val_fraction, download=args.download)


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


def fit_to_data(spec: ArchSpec, dataset: Dataset, log: Callable[[str], None] = print) -> ArchSpec:
    """The spec with its classifier and input channels set for `dataset`, saying so when it
    changes them (e.g. an ImageNet preset trained on CIFAR-10)."""
    if spec.num_classes == dataset.num_classes and spec.in_channels == dataset.channels:
        return spec
    log(f"note: {spec.name}: classifier set to {dataset.num_classes} classes and input to "
        f"{dataset.channels} channels for {dataset.name} (the spec had {spec.num_classes} and "
        f"{spec.in_channels})")
    return spec.replace(num_classes=dataset.num_classes, in_channels=dataset.channels)


@contextlib.contextmanager
def run_folder(out: Path, fit: "FitOf", force: bool) -> Iterator[Path]:
    """Hold --out's lock and yield the folder a training command writes into: --out, or with
    --force a fresh --out/run-N when --out holds runs of another configuration (an earlier
    forced run of the same command is found again). Refusals come before anything is written;
    a forced folder is locked too, so `--out OUT/run-N` from elsewhere waits its turn."""
    from ..train.runfolder import choose_out

    check_unlocked(out)  # another process may be writing the run files read below
    chosen = choose_out(out, fit, force)
    with locked_folders(out, chosen):
        if chosen != out:
            print(f"{out} holds runs of another configuration; writing into {chosen}")
        yield chosen


@contextlib.contextmanager
def locked_folders(out: Path, chosen: Path) -> Iterator[None]:
    """Lock --out and, when a command writes into a sub-folder of it, that folder as well
    (made and marked as forced when it is new)."""
    from ..train.runfolder import mark_forced

    with RunLock(out), contextlib.ExitStack() as stack:
        if chosen != out:
            if not chosen.exists():
                mark_forced(chosen)
            stack.enter_context(RunLock(chosen))
        yield
