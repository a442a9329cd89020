"""CIFAR-10 from a class-folder directory, a .tar.gz of one, the pickled batches, or a download."""
from __future__ import annotations

import pickle
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

import numpy as np

from .cache import cached_arrays, source_key
from .dataset import DataError, Dataset, Split, split_off_validation
from .images import IMAGE_SUFFIXES, decode_many, stack

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CANDIDATES = ("cifar10-jpeg.tar.gz", "cifar10.tar.gz", "cifar10", "cifar10-jpeg",
              "cifar-10-batches-py")


def find_source(data_dir: Optional[Path]) -> Optional[Path]:
    """The first CIFAR-10 copy in a known layout at or under `data_dir`.

    `data_dir` itself counts when it is a file or a layout folder; else the names in
    CANDIDATES are tried inside it.

    Args:
        data_dir: where to look; None finds nothing.
    """
    if data_dir is None:
        return None
    if data_dir.is_file() or _is_layout_dir(data_dir):
        return data_dir
    for name in CANDIDATES:
        path = data_dir / name
        if path.is_file() or _is_layout_dir(path):
            return path
    return None


def _is_layout_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "train").is_dir() and (path / "test").is_dir()
                              or (path / "data_batch_1").is_file())


def load(data_dir: Optional[Path], resolution: Optional[int], val_fraction: float,
         download: bool, cache_dir) -> Dataset:
    """CIFAR-10 as a Dataset: the 50,000 training images (less a validation part) and the
    10,000 test images, decoded once and cached.

    Args:
        data_dir: where to look (see `find_source`); None when neither --data-dir nor
            NAS_DATA_DIR is set.
        resolution: decode image files at this size (resize and centre crop); None or 32
            keeps the native 32 px (the pickled batches accept nothing else).
        val_fraction: share of each training class held out for validation.
        download: fetch the pickled batches with torchvision when no copy is found.
        cache_dir: the decoded-array cache (default: see `nas.data.cache.cache_root`).
    """
    source = find_source(data_dir)
    if source is None and download:
        source = _download(data_dir or Path("data"))
    if source is None:
        where = str(data_dir) if data_dir else "(no --data-dir and NAS_DATA_DIR unset)"
        raise DataError(f"no CIFAR-10 found in {where}: looked for {', '.join(CANDIDATES)} or a "
                        "folder with train/<class>/ and test/<class>/; pass --data-dir DIR (or set "
                        "NAS_DATA_DIR), or add --download to fetch it with torchvision")
    if resolution == 32:
        resolution = None  # native size: one cache entry, no resampling
    key = source_key(source, dataset="cifar10", resolution=resolution)
    arrays, hit = cached_arrays(key, lambda: _decode(source, resolution), cache_dir)
    train, val = split_off_validation(arrays["train_x"], arrays["train_y"], val_fraction)
    test = Split(*_tensors(arrays["test_x"], arrays["test_y"]))
    return Dataset("cifar10", list(CLASSES), train, val, test, str(source), cached=hit, native=32)


def _tensors(x: np.ndarray, y: np.ndarray):
    import torch
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def _decode(source: Path, resolution: Optional[int]) -> dict[str, np.ndarray]:
    if source.is_dir() and (source / "data_batch_1").is_file():
        arrays = _read_pickles(source)
        if resolution not in (None, 32):
            raise DataError("the pickled CIFAR-10 batches are 32 px; resize in the trainer "
                            "(the spec's resolution) instead of at load time")
        return arrays
    files = list(_iter_tar(source) if source.is_file() else _iter_dir(source))
    out: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    print(f"decoding {len(files):,} CIFAR-10 images from {source} (once; cached afterwards)",
          file=sys.stderr)
    for split, cls, where, _ in files:
        if cls not in CLASSES:
            raise DataError(f"{where}: unknown CIFAR-10 class folder {cls!r}")
    images = decode_many([(data, where) for _, _, where, data in files], resolution)
    for (split, cls, _, _), image in zip(files, images):
        out[split][0].append(image)
        out[split][1].append(CLASSES.index(cls))
    for split, (images, _) in out.items():
        if not images:
            raise DataError(f"{source} has no {split}/<class>/ images")
    return {"train_x": stack(out["train"][0], str(source)), "train_y": np.array(out["train"][1]),
            "test_x": stack(out["test"][0], str(source)), "test_y": np.array(out["test"][1])}


def _layout_parts(relpath: str) -> Optional[tuple[str, str]]:
    """'[prefix/]train/cat/0001.jpg' -> ('train', 'cat'); anything else -> None."""
    parts = PurePosixPath(relpath).parts
    if len(parts) < 3 or PurePosixPath(relpath).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    split, cls = parts[-3], parts[-2]
    return (split, cls) if split in ("train", "test") else None


def _iter_tar(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                parts = _layout_parts(member.name) if member.isfile() else None
                if parts:
                    f = tar.extractfile(member)
                    yield parts[0], parts[1], f"{member.name} in {path}", f.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"cannot read archive {path}: {exc}") from exc


def _iter_dir(path: Path) -> Iterator[tuple[str, str, str, bytes]]:
    for file in sorted(path.rglob("*")):
        parts = _layout_parts(file.relative_to(path).as_posix()) if file.is_file() else None
        if parts:
            yield parts[0], parts[1], str(file), file.read_bytes()


# the globals a real CIFAR-10 batch (a dict of a numpy array and lists) may name: numpy's array
# reconstruction, and the codec Python 3 uses for bytes in protocol 2
BATCH_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class BatchUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain data only: any other global a file names (the way a
    crafted pickle runs code) is refused before it is called."""

    def find_class(self, module: str, name: str):
        if (module, name) not in BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 3 x 32 x 32 uint8, labels) of one pickled CIFAR-10 batch, read without
    running code; anything else is one line naming the file."""
    try:
        with path.open("rb") as f:
            batch = BatchUnpickler(f, encoding="latin1").load()
        images = np.asarray(batch["data"]).reshape(-1, 3, 32, 32).astype(np.uint8)
        return images, np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read CIFAR-10 batch {path}: {reason[:200]}; give the "
                        "cifar-10-batches-py folder of the official python archive") from None


def _read_pickles(folder: Path) -> dict[str, np.ndarray]:
    train = [read_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = read_batch(folder / "test_batch")
    return {"train_x": np.concatenate([x for x, _ in train]),
            "train_y": np.concatenate([y for _, y in train]), "test_x": test_x, "test_y": test_y}


def _download(root: Path) -> Path:
    """torchvision's downloader, for users with internet; it writes cifar-10-batches-py."""
    from torchvision.datasets import CIFAR10

    root.mkdir(parents=True, exist_ok=True)
    try:
        CIFAR10(str(root), train=True, download=True)
    except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataError(f"downloading CIFAR-10 into {root} failed ({reason}); the download needs "
                        "internet: place a copy there and pass --data-dir") from None
    return root / "cifar-10-batches-py"
