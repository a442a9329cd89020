"""Decoding image files to uint8 arrays, with errors that name the file."""
from __future__ import annotations

import io
import os
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from .dataset import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff")


def decode(data: bytes, where: str, resolution: Optional[int] = None) -> np.ndarray:
    """Bytes of an image file -> H x W x 3 uint8, optionally resized (short side) and centre-cropped.

    Args:
        data: the file's bytes (any format PIL reads).
        where: the file's name, for the error message.
        resolution: the square side to resize and crop to; None keeps the size.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            if resolution is not None and img.size != (resolution, resolution):
                img = _resize_center_crop(img, resolution)
            return np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:  # its message names the in-memory buffer, not the file
        raise DataError(f"cannot decode image {where}: not an image file PIL can read; replace "
                        "or remove it") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot decode image {where}: {reason}; replace or remove it") from None


def _decode_chunk(items: list[tuple[bytes, str]], resolution: Optional[int]) -> list[np.ndarray]:
    return [decode(data, where, resolution) for data, where in items]


def decode_many(items: list[tuple[bytes, str]], resolution: Optional[int] = None,
                chunk: int = 2000) -> list[np.ndarray]:
    """Decode (bytes, name) pairs, in worker processes when there are many and cores to spare.

    Args:
        items: (file bytes, file name) pairs.
        resolution: as for `decode`.
        chunk: images per worker task; below two chunks everything runs in this process.

    Returns:
        the arrays, in the order of `items`.
    """
    workers = min(os.cpu_count() or 1, 16)
    if len(items) < 2 * chunk or workers < 2:
        return _decode_chunk(items, resolution)
    from concurrent.futures import ProcessPoolExecutor

    parts = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    with ProcessPoolExecutor(workers) as pool:
        return [img for part in pool.map(_decode_chunk, parts, [resolution] * len(parts)) for img in part]


def _resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def stack(arrays: list[np.ndarray], where: str) -> np.ndarray:
    """H x W x C arrays -> N x C x H x W, refusing mixed sizes with a clear message.

    Args:
        arrays: the decoded images.
        where: the source, for the error message.
    """
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images in {where} have different sizes {sorted(shapes)[:3]}; "
                        "give a --data-resolution to resize them")
    return np.stack(arrays).transpose(0, 3, 1, 2).copy()
