"""Parameters and multiply-accumulates (MACs).

The EfficientNet/MnasNet papers' "FLOPs" are multiply-adds of the conv and FC
layers: that is what `macs` means everywhere in this toolkit. BatchNorm is not
counted (it folds into the conv at inference). Elementwise work -- activations,
SE pooling and gating, residual adds, global pooling -- is reported separately as
`elementwise_ops` rather than silently dropped.

Two counters: `analytic_macs` walks the spec (microseconds, for search loops; this
module imports no torch); `nas.model_counting.fvcore_macs` traces a real forward pass
(the reference oracle, ~0.1 s for B0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

from .registry import Conv, Layers, get_block, out_size
from .spec import ArchSpec, StageSpec, block_configs


@dataclass(frozen=True)
class Count:
    """MACs of conv and FC layers (the paper's FLOPs), plus elementwise ops apart.

    Attributes:
        conv_macs: multiply-adds of the conv layers (stem, blocks, head).
        fc_macs: multiply-adds of the classifier.
        elementwise_ops: activations, SE pooling and gating, residual adds and pooling.
        params: parameters, BatchNorm weights and biases included.
        resolution: the input size counted at.
    """

    conv_macs: int
    fc_macs: int
    elementwise_ops: int
    params: int
    resolution: int

    @property
    def macs(self) -> int:
        """conv_macs + fc_macs: the paper's FLOPs."""
        return self.conv_macs + self.fc_macs




def _layers(spec: ArchSpec, resolution: int) -> Iterator[tuple[Conv | None, int]]:
    """Yield (conv layer or None, elementwise ops) pairs in network order."""
    hw = out_size(resolution, spec.stem.stride)
    yield Conv(spec.in_channels, spec.stem.channels, spec.stem.kernel, 1, hw), hw * hw * spec.stem.channels
    if spec.stem.pool:
        hw = out_size(hw, 2)
    for _, stage, cin, cout, stride in block_configs(spec):
        yield from block_layers(stage, cin, cout, stride, hw)
        hw = out_size(hw, stride)
    last = spec.stages[-1].out
    if spec.head.channels:
        yield Conv(last, spec.head.channels, 1, 1, hw), hw * hw * spec.head.channels
        last = spec.head.channels
    yield None, hw * hw * last  # global average pool


def block_layers(stage: StageSpec, cin: int, cout: int, stride: int, hw: int) -> Layers:
    """The layers of one block of `stage` on a hw x hw input (from its registered type).

    Args:
        stage: the block's stage (block type, kernel, expand, se, ...).
        cin: the block's input channels.
        cout: its output channels.
        stride: its stride.
        hw: side of its input map.
    """
    return get_block(stage.block).layers(stage, cin, cout, stride, hw)


def stage_macs(stage: StageSpec, cin: int, hw: int) -> tuple[int, int]:
    """(MACs of all blocks of `stage` on a cin x hw x hw input, output size).

    Args:
        stage: the stage counted.
        cin: the stage's input channels.
        hw: side of the stage's input map.
    """
    macs = 0
    for i in range(stage.repeats):
        stride = stage.stride if i == 0 else 1
        macs += sum(conv.macs for conv, _ in block_layers(stage, cin, stage.out, stride, hw)
                    if conv is not None)
        cin, hw = stage.out, out_size(hw, stride)
    return macs, hw


def analytic_count(spec: ArchSpec, resolution: Optional[int] = None,
                   num_classes: Optional[int] = None) -> Count:
    """Count from the spec alone, without building the model.

    Args:
        spec: the architecture.
        resolution: input size to count at (default: the spec's).
        num_classes: classifier width to count with (default: the spec's).
    """
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
    """MACs of conv and FC layers from the spec alone: `analytic_count(...).macs`, with the
    same arguments."""
    return analytic_count(spec, resolution, num_classes).macs
