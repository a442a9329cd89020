"""Counts of a built model: its parameters, and fvcore's trace of its MACs (the oracle the
analytic counter of `nas.counting` is checked against)."""
from __future__ import annotations

import warnings

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of parameter elements of a built model (BatchNorm weights and biases included).

    Args:
        model: the network.
    """
    return sum(p.numel() for p in model.parameters())


def _zero(*_args, **_kwargs) -> int:
    return 0


def fvcore_macs(model: nn.Module, resolution: int, in_channels: int = 3) -> int:
    """MACs of conv and FC layers by fvcore's tracer, BatchNorm and pooling excluded.

    fvcore counts one per multiply-add; unsupported elementwise ops count 0. Its
    default BatchNorm and adaptive-pool handles are replaced by zero handles,
    because setting a handle to None does not remove fvcore's default one.

    Args:
        model: the built network; traced in eval mode on its own device, then put back
            in the mode it was in.
        resolution: input side in pixels.
        in_channels: input channels.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # fvcore scripts at import time
        from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = torch.zeros(1, in_channels, resolution, resolution, device=device)
        analysis = FlopCountAnalysis(model, x)
        analysis.set_op_handle("aten::batch_norm", _zero, "aten::adaptive_avg_pool2d", _zero)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with torch.no_grad():
            return int(analysis.total())
    finally:
        model.train(was_training)
