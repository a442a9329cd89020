"""The checks a command makes before it trains: the same three for every command.

1. A `--data-resolution` below the input of any net the command will train is refused,
   naming the net with the largest input (the one that decides the fix).
2. The far-upsampled-data warning is printed once per distinct input size.
3. The net needing the most training memory is checked against what the device has free.

Commands call these before they take their folder lock, so a refusal writes nothing.
"""
from __future__ import annotations

import sys
from typing import Callable, Optional, Sequence

from .data import Dataset
from .data.fit import check_data_resolution, native_resolution_note
from .recipe import Recipe
from .spec import ArchSpec
from .train.memory import check_memory, training_bytes

RECIPE_BATCH = "a recipe with batch_size:"  # how commands without --batch-size set their batch


def to_stderr(line: str) -> None:
    """Print a warning line on stderr (the default destination of the checks' warnings)."""
    print(line, file=sys.stderr)


def check_nets_data_resolution(data_resolution: Optional[int], nets: Sequence[ArchSpec]) -> None:
    """Refuse a `--data-resolution` below the input of any of `nets`, naming the net with the
    largest input; with several nets the fix is a data resolution that serves them all."""
    if data_resolution is None or not nets:
        return
    largest = max(nets, key=lambda spec: spec.resolution)
    fix = None
    if len({spec.resolution for spec in nets}) > 1:
        fix = (f"pass --data-resolution {largest.resolution} or more (the largest input among the "
               f"{len(nets)} nets this command trains; smaller nets get the images downsampled)")
    check_data_resolution(data_resolution, largest.resolution, largest.name, fix)


def decode_resolution(nets: Sequence[ArchSpec], data_resolution: Optional[int] = None) -> int:
    """The size to decode the images at for `nets`: the largest input among them, or a larger
    `--data-resolution`. Every net then gets images at least its own size (downsampled for the
    smaller ones), so a net grown in resolution sees real detail, up to the data's native size,
    rather than an upsampled copy of a smaller decode."""
    return max([data_resolution or 0, *(spec.resolution for spec in nets)])


def native_notes(dataset: Dataset, nets: Sequence[ArchSpec]) -> list[str]:
    """The far-upsampled-data warning of each distinct input size among `nets`, smallest first."""
    notes = (native_resolution_note(dataset, r) for r in sorted({spec.resolution for spec in nets}))
    return [note for note in notes if note]


def hungriest(nets: Sequence[ArchSpec], batch: int) -> ArchSpec:
    """The net whose training step needs the most memory at `batch` (the memory estimate's)."""
    return max(nets, key=lambda spec: training_bytes(spec, batch))


def check_memory_of(nets: Sequence[ArchSpec], batch: int, device: str,
                    batch_option: str = RECIPE_BATCH) -> None:
    """Refuse when the hungriest of `nets` does not fit the device's free memory at `batch`."""
    if nets:
        check_memory(hungriest(nets, batch), batch, device, batch_option=batch_option)


def training_batch(recipe: Recipe, dataset: Dataset) -> int:
    """The batch the trainer will use: the recipe's, capped by the training images it stages."""
    images = len(dataset.split(recipe.train_split))
    if recipe.train_fraction < 1.0:
        images = max(1, int(images * recipe.train_fraction))
    return min(recipe.batch_size, images)


def check_before_training(nets: Sequence[ArchSpec], dataset: Dataset, recipe: Recipe, device: str,
                          data_resolution: Optional[int] = None,
                          warn: Callable[[str], None] = to_stderr) -> None:
    """All three checks for the nets one command (or pipeline step) will train.

    Args:
        nets: every net it will train.
        dataset: the loaded data set (its native image size, its number of training images).
        recipe: the recipe they train with (its batch size).
        device: where they train (auto, cpu, cuda, ...).
        data_resolution: the `--data-resolution` asked for (None: the command's default).
        warn: where the warnings go.
    """
    check_nets_data_resolution(data_resolution, nets)
    for note in native_notes(dataset, nets):
        warn(note)
    check_memory_of(nets, training_batch(recipe, dataset), device)
