"""Checks of a data set against the net's input size, shared by every command that trains."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..errors import NasError
from .dataset import Dataset

if TYPE_CHECKING:
    from ..spec import ArchSpec

NATIVE_RATIO = 4  # warn when the spec's input is this many times the data's own image size


def check_data_resolution(data_resolution: Optional[int], resolution: int, what: str,
                          fix: Optional[str] = None) -> None:
    """Refuse `--data-resolution` below the net's input size: the trainer would upsample the
    images back to `resolution` (the net trains, and is counted, at `resolution`), which is
    never what asking for small images means. To train small, scale the spec's resolution.
    `fix` replaces that advice (commands that train several nets at several sizes)."""
    if data_resolution is not None and data_resolution < resolution:
        fix = fix or (f"to train at {data_resolution} px set the spec's resolution to {data_resolution} "
                      f"(see nas flops SPEC --resolution {data_resolution} for its MACs)")
        raise NasError(f"--data-resolution {data_resolution} is below {what}'s {resolution} px input: the "
                       f"images would be upsampled back to {resolution} px and the net would still run "
                       f"(and count MACs) at {resolution} px; {fix}")


def native_resolution_note(dataset: Dataset, resolution: int) -> Optional[str]:
    """A one-line warning when the net's input is far above the data's own image size
    (e.g. digits' 8 px images at 224 px: compute spent on upsampled pixels)."""
    if dataset.native and resolution > NATIVE_RATIO * dataset.native:
        return (f"warning: {dataset.name} images are {dataset.native} px natively; training at "
                f"{resolution} px ({resolution / dataset.native:.0f}x) spends compute on upsampled "
                "pixels; a spec near the native size trains far faster")
    return None


DECODE_BYTES_PER_PIXEL = 3  # the uint8 RGB arrays kept: a floor (decoding needs more)
KNOWN_IMAGES = {"digits": 1797, "cifar10": 60000}


def check_decode_memory(name: str, resolution: Optional[int], available: Optional[int] = None) -> None:
    """Refuse, before anything is allocated, a decode size whose arrays cannot fit the memory
    (`--data-resolution 100000` would ask for ~70 TB). `available` overrides the measured
    free memory (for tests)."""
    if resolution is None:
        return
    from ..train.memory import available_bytes
    import torch

    count = KNOWN_IMAGES.get(name) or _image_count(name)
    need = count * resolution ** 2 * DECODE_BYTES_PER_PIXEL
    free = available if available is not None else available_bytes(torch.device("cpu"))
    if free is None or need <= free:
        return
    raise NasError(f"decoding {count:,} images of {name} at {resolution:,} px needs at least "
                   f"{need / 2**30:,.0f} GiB but the machine has {free / 2**30:,.1f} GiB available; "
                   "use a smaller --data-resolution (by default the spec's resolution)")


def _image_count(name: str) -> int:
    from .images import IMAGE_SUFFIXES

    folder = Path(name.split(":", 1)[-1])
    return sum(1 for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else 0


def fit_to_data(spec: "ArchSpec", dataset: Dataset, log: Callable[[str], None] = print) -> "ArchSpec":
    """The spec with its classifier and input channels set for `dataset`, saying so when it
    changes them (e.g. an ImageNet preset trained on CIFAR-10)."""
    if spec.num_classes == dataset.num_classes and spec.in_channels == dataset.channels:
        return spec
    log(f"note: {spec.name}: classifier set to {dataset.num_classes} classes and input to "
        f"{dataset.channels} channels for {dataset.name} (the spec had {spec.num_classes} and "
        f"{spec.in_channels})")
    return spec.replace(num_classes=dataset.num_classes, in_channels=dataset.channels)
