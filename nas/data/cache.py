"""A disk cache of decoded arrays, keyed by the source file(s) and the resolution."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..atomic import replace_atomically

CACHE_VERSION = 1


def cache_root(cache_dir: Optional[str | Path] = None) -> Path:
    """The cache folder: `cache_dir`, else $NAS_CACHE_DIR, else $XDG_CACHE_HOME/nas-toolkit
    (~/.cache/nas-toolkit when XDG_CACHE_HOME is unset).

    Args:
        cache_dir: an explicit folder, which overrides the environment.
    """
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("NAS_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nas-toolkit"


def source_key(path: Path, **extra) -> str:
    """Identity of a source: resolved path, size and mtime (of every file in a folder).

    A changed file therefore misses the cache instead of returning stale arrays.

    Args:
        path: the source file or folder.
        **extra: further parts of the key (e.g. dataset, resolution); JSON-serialisable.

    Returns:
        a 20-character hex digest, used as the cache file's name.
    """
    path = path.resolve()
    if path.is_dir():
        stats = sorted((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                       for p in path.rglob("*") if p.is_file())
        fingerprint = hashlib.sha1(json.dumps(stats).encode()).hexdigest()
    else:
        st = path.stat()
        fingerprint = f"{st.st_size}:{st.st_mtime_ns}"
    payload = json.dumps({"path": str(path), "fp": fingerprint, "v": CACHE_VERSION, **extra},
                         sort_keys=True)
    return hashlib.sha1(payload.encode()).hexdigest()[:20]


def cached_arrays(key: str, build: Callable[[], dict[str, np.ndarray]],
                  cache_dir: Optional[str | Path] = None) -> tuple[dict[str, np.ndarray], bool]:
    """Return (arrays, hit). On a miss, build them and store them atomically.

    A cache file that cannot be read is deleted and rebuilt.

    Args:
        key: the cache entry's name (see `source_key`).
        build: makes the arrays on a miss (e.g. decodes the images).
        cache_dir: the cache folder (default: see `cache_root`).
    """
    path = cache_root(cache_dir) / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}, True
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # a torn or stale cache file: rebuild it
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda f: np.savez(f, **arrays))
    return arrays, False
