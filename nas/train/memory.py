"""A memory estimate before training, so a net too big for the machine is refused in one line
instead of thrashing the swap or dying with an out-of-memory traceback."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from ..counting import _layers
from ..errors import NasError
from ..spec import ArchSpec
from .runtime import resolve_device

BYTES = 4            # fp32 activations
BACKWARD = 3         # activations kept for backward, their gradients, and workspace
PARAM_COPIES = 4     # weights, gradients, optimizer state, EMA or a spare copy


def activation_elements(spec: ArchSpec) -> int:
    """Sum of all conv output elements of one image (the analytic counter's layers)."""
    return sum(conv.out_hw * conv.out_hw * conv.cout for conv, _ in _layers(spec, spec.resolution)
               if conv is not None)


def training_bytes(spec: ArchSpec, batch: int) -> int:
    """Rough bytes one training step needs: activations x batch x 4 B x 3, plus parameters."""
    from ..counting import analytic_count

    params = analytic_count(spec).params
    return activation_elements(spec) * batch * BYTES * BACKWARD + params * BYTES * PARAM_COPIES


def available_bytes(device: torch.device) -> Optional[int]:
    """Free memory of the device: torch.cuda.mem_get_info on a GPU, /proc/meminfo's
    MemAvailable on Linux; None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(spec: ArchSpec, batch: int, device: str = "auto",
                 available: Optional[int] = None, batch_option: str = "--batch-size") -> None:
    """Refuse (NasError, one line) when the estimate exceeds the available memory, suggesting a
    smaller batch or resolution. `available` overrides the measured free memory (for tests);
    `batch_option` is how the command sets its batch (commands without --batch-size name their
    recipe instead)."""
    where = resolve_device(device)
    free = available if available is not None else available_bytes(where)
    need = training_bytes(spec, batch)
    if free is None or need <= free:
        return
    per_image = max(1, activation_elements(spec) * BYTES * BACKWARD)
    fits = max(0, (free - (need - per_image * batch)) // per_image)
    hint = (f"use {batch_option} {fits} or less, or lower the spec's resolution" if fits >= 1 else
            "even batch 1 does not fit: lower the spec's resolution or width")
    raise NasError(f"training {spec.name} at {spec.resolution} px with batch {batch} needs about "
                   f"{need / 2**30:,.1f} GiB but {where.type} has {free / 2**30:,.1f} GiB available; {hint}")
