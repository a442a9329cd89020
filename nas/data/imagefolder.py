"""Any class-folder data set: PATH/{train,test}/<class>/* or PATH/<class>/*."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .cache import cached_arrays, source_key
from .dataset import DataError, Dataset, Split, split_off_validation
from .images import IMAGE_SUFFIXES, decode_many, stack

TEST_FRACTION = 0.2


def _classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _check_nonempty(folder: Path, classes: list[str]) -> None:
    """Refuse a class folder without images: it would silently become a class never seen."""
    for cls in classes:
        if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in (folder / cls).rglob("*")):
            raise DataError(f"class folder {folder / cls} holds no images (suffixes "
                            f"{', '.join(IMAGE_SUFFIXES)}); add images or remove the folder")


def _read(folder: Path, classes: list[str], resolution: int) -> tuple[np.ndarray, np.ndarray]:
    items, labels = [], []
    for label, cls in enumerate(classes):
        for file in sorted((folder / cls).rglob("*")):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                items.append((file.read_bytes(), str(file)))
                labels.append(label)
    images = decode_many(items, resolution)
    if not images:
        raise DataError(f"no images found under {folder}/<class>/ (suffixes {', '.join(IMAGE_SUFFIXES)})")
    return stack(images, str(folder)), np.array(labels, dtype=np.int64)


def load(path: Path, resolution: int, val_fraction: float, cache_dir) -> Dataset:
    """An image-folder data set (PATH/<class>/* or PATH/{train,test}/<class>/*) decoded at
    `resolution` px and cached; refuses fewer than two classes or an empty class folder."""
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist; use imagefolder:PATH with "
                        "PATH/<class>/ or PATH/train/<class>/ and PATH/test/<class>/")
    has_splits = (path / "train").is_dir() and (path / "test").is_dir()
    classes = _classes(path / "train" if has_splits else path)
    if len(classes) < 2:
        raise DataError(f"{path} has {len(classes)} class folder(s); need at least two")
    for folder in ((path / "train", path / "test") if has_splits else (path,)):
        _check_nonempty(folder, classes)

    def build() -> dict[str, np.ndarray]:
        print(f"decoding images under {path} at {resolution}px (once; cached afterwards)",
              file=sys.stderr)
        if has_splits:
            train_x, train_y = _read(path / "train", classes, resolution)
            test_x, test_y = _read(path / "test", classes, resolution)
        else:
            x, y = _read(path, classes, resolution)
            train, test = split_off_validation(x, y, TEST_FRACTION)
            train_x, train_y = train.images.numpy(), train.labels.numpy()
            test_x, test_y = test.images.numpy(), test.labels.numpy()
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}

    key = source_key(path, dataset="imagefolder", resolution=resolution)
    arrays, hit = cached_arrays(key, build, cache_dir)
    train, val = split_off_validation(arrays["train_x"], arrays["train_y"], val_fraction)
    import torch
    test = Split(torch.from_numpy(arrays["test_x"]), torch.from_numpy(arrays["test_y"]))
    return Dataset(dataset_name(path), classes, train, val, test, str(path), cached=hit)


def dataset_name(path: Path) -> str:
    """The name an image folder's Dataset carries: the folder's own name, not its path."""
    return f"imagefolder:{Path(path).name}"
