"""Per-image outcomes of one evaluation: which images a run got right, bit-packed.

A run's result.json stores them as "N:BASE64" (N images, numpy.packbits of the correct flags,
base64): 10,000 CIFAR-10 test images take 1,674 characters. Older results have none; the
statistics then fall back to seed-only intervals and say so.
"""
from __future__ import annotations

import base64
from typing import Any, Optional

import numpy as np


def pack(correct: Any) -> str:
    """'N:BASE64' of a boolean vector (one flag per image, in split order)."""
    flags = np.asarray(correct, dtype=bool).ravel()
    return f"{len(flags)}:" + base64.b64encode(np.packbits(flags).tobytes()).decode("ascii")


def unpack(text: Any) -> Optional[np.ndarray]:
    """The boolean vector of a `pack` string; None for a missing or empty value (older runs,
    a run that was not evaluated, NaN read back from a CSV)."""
    if not isinstance(text, str) or ":" not in text:
        return None
    n, data = text.split(":", 1)
    bits = np.unpackbits(np.frombuffer(base64.b64decode(data), dtype=np.uint8))
    return bits[:int(n)].astype(bool)
