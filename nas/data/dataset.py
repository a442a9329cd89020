"""Dataset and Split containers and the name -> loader dispatch."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import NasError

SPLITS = ("train", "val", "test", "train+val")
VAL_SEED = 20190528  # fixed: the validation split must not depend on a run's seed


class DataError(NasError):
    """A data set cannot be found, read or decoded."""


@dataclass
class Split:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    source: str
    cached: bool = False  # True when decoded arrays came from the cache
    _device_copies: dict = field(default_factory=dict, repr=False)
    _stats: Optional[tuple[list[float], list[float]]] = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def resolution(self) -> int:
        return int(self.train.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])

    def split(self, name: str) -> Split:
        if name == "train+val":
            return Split(torch.cat([self.train.images, self.val.images]),
                         torch.cat([self.train.labels, self.val.labels]))
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel statistics of the training split, in [0, 1] units (computed once:
        every trial of a search asks for them)."""
        if self._stats is None:
            x = self.train.images.float().div_(255)
            self._stats = (x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).tolist())
        return self._stats

    def summary(self) -> str:
        return (f"{self.name}: {self.num_classes} classes, {self.resolution}px, train {len(self.train)}"
                f" / val {len(self.val)} / test {len(self.test)} ({self.source}"
                f"{', from cache' if self.cached else ''})")


def split_off_validation(images: np.ndarray, labels: np.ndarray, fraction: float
                         ) -> tuple[Split, Split]:
    """Hold out `fraction` of the training data, stratified by class, with a fixed seed."""
    rng = np.random.default_rng(VAL_SEED)
    val_idx = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        take = min(len(idx) - 1, max(1, int(round(len(idx) * fraction))))  # keep both sides non-empty
        val_idx.append(rng.permutation(idx)[:take])
    val = np.sort(np.concatenate(val_idx))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return _split(images, labels, train), _split(images, labels, val)


def _split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(images[idx])),
                 torch.from_numpy(labels[idx].astype(np.int64)))


def default_data_dir() -> Optional[Path]:
    env = os.environ.get("NAS_DATA_DIR")
    return Path(env) if env else None


def load_dataset(name: str, data_dir: Optional[str | Path] = None, resolution: Optional[int] = None,
                 val_fraction: float = 0.1, download: bool = False,
                 cache_dir: Optional[str | Path] = None) -> Dataset:
    """Load a data set by name: digits, cifar10 or imagefolder:PATH."""
    from . import cifar, digits, imagefolder

    if not 0 < val_fraction < 1:
        raise DataError(f"val_fraction {val_fraction} must be in (0, 1)")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if name == "digits":
        return digits.load(resolution or 16, val_fraction)
    if name == "cifar10":
        return cifar.load(data_dir, resolution, val_fraction, download, cache_dir)
    if name.startswith("imagefolder:"):
        return imagefolder.load(Path(name.split(":", 1)[1]), resolution or 64, val_fraction, cache_dir)
    raise DataError(f"unknown dataset {name!r}; use digits, cifar10 or imagefolder:PATH")
