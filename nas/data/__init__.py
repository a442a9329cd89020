"""Data sets as uint8 image tensors with named train / validation / test splits.

    load_dataset("digits")                         # scikit-learn's bundled digits, no download
    load_dataset("cifar10", data_dir="../shared/data")
    load_dataset("imagefolder:/data/flowers", resolution=128)

The validation split is carved from the training data with a fixed seed, so every
run of every command sees the same split; search and scaling select on it only.
Types and split helpers live in `dataset`, one loader per module beside it, and the
name dispatch here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from . import cifar, digits, imagefolder
from .dataset import DataError, Dataset, Split
from .fit import check_decode_memory

__all__ = ["DataError", "Dataset", "Split", "dataset_name", "load_dataset", "default_data_dir"]


def default_data_dir() -> Optional[Path]:
    """`$NAS_DATA_DIR` as a path, or None when unset."""
    env = os.environ.get("NAS_DATA_DIR")
    return Path(env) if env else None


def load_dataset(name: str, data_dir: Optional[str | Path] = None, resolution: Optional[int] = None,
                 val_fraction: float = 0.1, download: bool = False,
                 cache_dir: Optional[str | Path] = None) -> Dataset:
    """Load a data set by name.

    Args:
        name: ``digits``, ``cifar10`` or ``imagefolder:PATH``.
        data_dir: where cifar10 lives (default ``$NAS_DATA_DIR``).
        resolution: decode size in pixels (digits: 16, image folders: 64, cifar10: 32 by default).
        val_fraction: share of the training data held out, stratified, as the validation split.
        download: let torchvision fetch CIFAR-10 when no local copy is found.
        cache_dir: where decoded arrays are cached (default ``$NAS_CACHE_DIR`` or ~/.cache).
    """
    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction {val_fraction} must be in (0, 1)")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    check_decode_memory(name, resolution)
    if name == "digits":
        dataset = digits.load(resolution or 16, val_fraction)
    elif name == "cifar10":
        dataset = cifar.load(data_dir, resolution, val_fraction, download, cache_dir)
    elif name.startswith("imagefolder:"):
        dataset = imagefolder.load(Path(name.split(":", 1)[1]), resolution or 64, val_fraction, cache_dir)
    else:
        raise DataError(f"unknown dataset {name!r}; use digits, cifar10 or imagefolder:PATH")
    dataset.val_fraction = val_fraction
    return dataset


def dataset_name(option: str) -> str:
    """The name the Dataset of a --dataset value will carry (image folders: the folder's own
    name), without loading it."""
    if option.startswith("imagefolder:"):
        return imagefolder.dataset_name(Path(option.split(":", 1)[1]))
    return option
