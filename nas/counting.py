"""Parameters and multiply-accumulates (MACs).

The EfficientNet/MnasNet papers' "FLOPs" are multiply-adds of the conv and FC
layers: that is what `macs` means everywhere in this toolkit. BatchNorm is not
counted (it folds into the conv at inference). Elementwise work -- activations,
SE pooling and gating, residual adds, global pooling -- is reported separately as
`elementwise_ops` rather than silently dropped.

Two counters: `analytic_macs` walks the spec (microseconds, for search loops);
`fvcore_macs` traces a real forward pass (the reference oracle, ~0.1 s for B0).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from torch import nn

from .blocks import bottleneck_width, expanded_width, se_width
from .builder import block_configs
from .spec import ArchSpec, StageSpec


@dataclass(frozen=True)
class Conv:
    cin: int
    cout: int
    kernel: int
    groups: int
    out_hw: int
    bias: bool = False
    bn: bool = True

    @property
    def macs(self) -> int:
        return self.out_hw * self.out_hw * self.cout * (self.cin // self.groups) * self.kernel ** 2

    @property
    def params(self) -> int:
        weights = self.cout * (self.cin // self.groups) * self.kernel ** 2
        return weights + (self.cout if self.bias else 0) + (2 * self.cout if self.bn else 0)


@dataclass(frozen=True)
class Count:
    """MACs of conv and FC layers (the paper's FLOPs), plus elementwise ops apart."""

    conv_macs: int
    fc_macs: int
    elementwise_ops: int
    params: int
    resolution: int

    @property
    def macs(self) -> int:
        return self.conv_macs + self.fc_macs


def _out(size: int, stride: int) -> int:
    return math.ceil(size / stride)  # "same" padding with odd kernels


def _layers(spec: ArchSpec, resolution: int) -> Iterator[tuple[Conv | None, int]]:
    """Yield (conv layer or None, elementwise ops) pairs in network order."""
    hw = _out(resolution, spec.stem.stride)
    yield Conv(spec.in_channels, spec.stem.channels, spec.stem.kernel, 1, hw), hw * hw * spec.stem.channels
    if spec.stem.pool:
        hw = _out(hw, 2)
    for _, stage, cin, cout, stride in block_configs(spec):
        yield from block_layers(stage, cin, cout, stride, hw)
        hw = _out(hw, stride)
    last = spec.stages[-1].out
    if spec.head.channels:
        yield Conv(last, spec.head.channels, 1, 1, hw), hw * hw * spec.head.channels
        last = spec.head.channels
    yield None, hw * hw * last  # global average pool


def block_layers(stage: StageSpec, cin: int, cout: int, stride: int, hw: int
                 ) -> Iterator[tuple[Conv | None, int]]:
    """The layers of one block of `stage` on a hw x hw input."""
    out_hw = _out(hw, stride)
    if stage.block in ("mbconv", "ds"):
        hidden = expanded_width(cin, stage.expand)
        if stage.expand != 1:
            yield Conv(cin, hidden, 1, 1, hw), hw * hw * hidden
        yield Conv(hidden, hidden, stage.kernel, hidden, out_hw), out_hw ** 2 * hidden
        yield from _se(stage.se, cin, hidden, out_hw)
        yield Conv(hidden, cout, 1, 1, out_hw), 0
        residual = stage.skip and stride == 1 and cin == cout
    elif stage.block == "conv":
        yield Conv(cin, cout, stage.kernel, 1, out_hw), out_hw ** 2 * cout
        yield from _se(stage.se, cin, cout, out_hw)
        residual = stage.skip and stride == 1 and cin == cout
    else:  # ResNet blocks: activation after the add, projection shortcut if needed
        if stage.block == "basic":
            yield Conv(cin, cout, stage.kernel, 1, out_hw), out_hw ** 2 * cout
            yield Conv(cout, cout, stage.kernel, 1, out_hw), 0
        else:
            width = bottleneck_width(cout, stage.expand)
            yield Conv(cin, width, 1, 1, hw), hw * hw * width
            yield Conv(width, width, stage.kernel, 1, out_hw), out_hw ** 2 * width
            yield Conv(width, cout, 1, 1, out_hw), 0
        yield from _se(stage.se, cin, cout, out_hw)
        if stage.skip and (stride != 1 or cin != cout):
            yield Conv(cin, cout, 1, 1, out_hw), 0
        residual = stage.skip
        yield None, out_hw ** 2 * cout  # activation after the add
    if residual:
        yield None, out_hw ** 2 * cout


def stage_macs(stage: StageSpec, cin: int, hw: int) -> tuple[int, int]:
    """(MACs of all blocks of `stage` on a cin x hw x hw input, output size)."""
    macs = 0
    for i in range(stage.repeats):
        stride = stage.stride if i == 0 else 1
        macs += sum(conv.macs for conv, _ in block_layers(stage, cin, stage.out, stride, hw)
                    if conv is not None)
        cin, hw = stage.out, _out(hw, stride)
    return macs, hw


def _se(ratio: float, cin: int, channels: int, hw: int) -> Iterator[tuple[Conv | None, int]]:
    if ratio <= 0:
        return
    squeezed = se_width(cin, ratio)
    yield None, hw * hw * channels  # spatial mean
    yield Conv(channels, squeezed, 1, 1, 1, bias=True, bn=False), squeezed
    yield Conv(squeezed, channels, 1, 1, 1, bias=True, bn=False), channels  # sigmoid
    yield None, hw * hw * channels  # gating multiply


def analytic_count(spec: ArchSpec, resolution: Optional[int] = None,
                   num_classes: Optional[int] = None) -> Count:
    """Count from the spec alone, without building the model."""
    resolution = spec.resolution if resolution is None else resolution
    classes = spec.num_classes if num_classes is None else num_classes
    conv_macs = elementwise = params = 0
    for conv, ops in _layers(spec, resolution):
        elementwise += ops
        if conv is not None:
            conv_macs += conv.macs
            params += conv.params
    features = spec.head.channels or spec.stages[-1].out
    fc_macs = features * classes
    return Count(conv_macs, fc_macs, elementwise, params + fc_macs + classes, resolution)


def analytic_macs(spec: ArchSpec, resolution: Optional[int] = None,
                  num_classes: Optional[int] = None) -> int:
    return analytic_count(spec, resolution, num_classes).macs


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _zero(*_args, **_kwargs) -> int:
    return 0


def fvcore_macs(model: nn.Module, resolution: int, in_channels: int = 3) -> int:
    """MACs of conv and FC layers by fvcore's tracer, BatchNorm and pooling excluded.

    fvcore counts one per multiply-add; unsupported elementwise ops count 0. Its
    default BatchNorm and adaptive-pool handles are replaced by zero handles,
    because unsetting them does not remove them (shared/notes/optuna-fvcore-facts.md).
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
