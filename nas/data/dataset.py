"""Dataset and Split containers and the split helpers the loaders share.

The name -> loader dispatch lives in the package's ``__init__`` so that loaders can
import these types without an import circle."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import NasError

SPLITS = ("train", "val", "test", "train+val")
VAL_SEED = 20190528  # fixed: the validation split must not depend on a run's seed
STAGED_COPIES = 6     # device copies kept per data set (splits x resolutions x devices)


class DataError(NasError):
    """A data set cannot be found, read or decoded."""


@dataclass
class Split:
    """Images and labels of one split.

    Attributes:
        images: uint8, N x C x H x W.
        labels: int64, N.
    """

    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class Dataset:
    """A loaded data set: its splits and where they came from.

    Attributes:
        name: the data set's name (digits, cifar10, ...).
        classes: class names; a label is an index into this list.
        train: the training split.
        val: the validation split (held out of the training data).
        test: the test split.
        source: where the data came from, for messages.
        cached: True when decoded arrays came from the cache.
    """

    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    source: str
    cached: bool = False  # True when decoded arrays came from the cache
    native: Optional[int] = None  # the source images' own side length, when known (digits: 8)
    val_fraction: Optional[float] = None  # the share held out as `val` (set by load_dataset)
    _staged: dict = field(default_factory=dict, repr=False)
    _stats: Optional[tuple[list[float], list[float]]] = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def resolution(self) -> int:
        """Side of the stored images in pixels (as loaded, before any staging)."""
        return int(self.train.images.shape[-1])

    @property
    def channels(self) -> int:
        """Image channels (3 for RGB)."""
        return int(self.train.images.shape[1])

    def split(self, name: str) -> Split:
        """The split called `name`; train+val joins the training and validation splits.

        Args:
            name: train, val, test or train+val.
        """
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

    def staged(self, split: str, device: torch.device | str, resolution: int,
               fraction: float = 1.0) -> Split:
        """The split as uint8 tensors on `device`, resized to `resolution`; memoised.

        Args:
            split: train, val, test or train+val.
            device: where the copy lives (a GPU keeps the whole split resident).
            resolution: side length the images are resized to (bilinear, antialiased).
            fraction: keep this share of the split, the same fixed subset in every run.
        """
        key = (split, fraction, str(device), resolution)
        if key not in self._staged:
            if len(self._staged) >= STAGED_COPIES:
                self._staged.pop(next(iter(self._staged)))
            self._staged[key] = _stage(self.split(split), device, resolution, fraction)
        return self._staged[key]

    def summary(self) -> str:
        """One line: name, classes, resolution, split sizes and the source."""
        return (f"{self.name}: {self.num_classes} classes, {self.resolution}px, train {len(self.train)}"
                f" / val {len(self.val)} / test {len(self.test)} ({self.source}"
                f"{', from cache' if self.cached else ''})")


def split_off_validation(images: np.ndarray, labels: np.ndarray, fraction: float
                         ) -> tuple[Split, Split]:
    """Hold out `fraction` of the training data, stratified by class, with a fixed seed.

    Each class keeps at least one image on both sides.

    Args:
        images: uint8 N x C x H x W.
        labels: int N.
        fraction: share of each class held out.

    Returns:
        (train, held-out) splits.
    """
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


def _stage(data: Split, device: torch.device | str, resolution: int, fraction: float) -> Split:
    images, labels = data.images, data.labels
    if fraction < 1.0:
        g = torch.Generator().manual_seed(VAL_SEED + 1)  # one fixed subset for every run
        keep = torch.randperm(len(labels), generator=g)[:max(1, int(len(labels) * fraction))].sort().values
        images, labels = images[keep], labels[keep]
    images = resize(images.to(device, non_blocking=True), resolution)
    return Split(images, labels.to(device))


def resize(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """uint8 N x C x H x W -> uint8 N x C x size x size (bilinear, antialiased).

    Args:
        images: the batch; returned unchanged when already size x size.
        size: the new side in pixels.
        chunk: images resized at once (bounds the float copy's memory).
    """
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8,
                      device=images.device)
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out
