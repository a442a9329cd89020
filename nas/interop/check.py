"""Compare two models' outputs on one random batch."""
from __future__ import annotations

from typing import Callable

import torch

from . import InteropError

TOLERANCE = 1e-4


def random_input(channels: int, resolution: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A fixed random batch (N(0, 1), like normalised images).

    Args:
        channels: image channels.
        resolution: image side in pixels.
        batch: number of images.
        seed: seed of the generator (the same seed gives the same batch).
    """
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, resolution, resolution, generator=g)


@torch.no_grad()
def max_abs_diff(a: Callable[[torch.Tensor], torch.Tensor],
                 b: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    """max |a(x) - b(x)| over all outputs.

    Args:
        a, b: callables returning tensors (models in eval mode, a session wrapper, ...).
        x: the input batch.
    """
    out_a, out_b = a(x), b(x)
    if out_a.shape != out_b.shape:
        raise InteropError(f"outputs differ in shape: {tuple(out_a.shape)} vs {tuple(out_b.shape)}")
    return float((out_a.float() - out_b.float()).abs().max())


def require_close(diff: float, what: str, tolerance: float = TOLERANCE, hint: str = "") -> None:
    """Refuse (InteropError) when `diff` exceeds `tolerance` or is not finite.

    Args:
        diff: the measured max abs difference.
        what: the comparison, e.g. "ours vs torchvision:resnet18".
        tolerance: the largest difference accepted.
        hint: how to fix it, appended to the message.
    """
    if not diff <= tolerance:  # also catches NaN
        raise InteropError(f"{what}: outputs differ by {diff:.3g} > {tolerance:g}; refusing"
                           + (f" ({hint})" if hint else ""))
