"""Measured inference latency on the current device (MACs are a poor proxy for speed)."""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def measure_latency_ms(model: nn.Module, resolution: int, device: torch.device, batch: int = 1,
                       repeats: int = 10, warmup: int = 3, in_channels: int = 3) -> float:
    """Median milliseconds of one eval-mode forward pass of `batch` images.

    The model is put back in the mode it was in; CUDA work is synchronised around each pass.

    Args:
        model: the network, already on `device`.
        resolution: input side in pixels.
        device: where the random input is made.
        batch: images per pass.
        repeats: timed passes (the median is returned).
        warmup: untimed passes first.
        in_channels: input channels.
    """
    was_training = model.training
    model.eval()
    x = torch.randn(batch, in_channels, resolution, resolution, device=device)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    model.train(was_training)
    return statistics.median(times) * 1e3
