"""The built-in block types: MBConv and its expand-1 spelling ``ds``, plain conv, and the
ResNet basic and bottleneck blocks. Each is one registration (see `nas.registry`).

This half imports no torch: it says what each block is and how its layers are counted.
`nas.blocks` registers how each is built; `nas/__init__` imports this module, so the
built-ins are registered before anything looks one up."""
from __future__ import annotations

from .registry import BlockType, Conv, Layers, out_size, register_block
from .widths import bottleneck_width, expanded_width, se_width


def se_layers(ratio: float, cin: int, channels: int, hw: int) -> Layers:
    """Squeeze-excite on `channels` maps of hw x hw, squeezed from the block *input* width."""
    if ratio <= 0:
        return
    squeezed = se_width(cin, ratio)
    yield None, hw * hw * channels  # spatial mean
    yield Conv(channels, squeezed, 1, 1, 1, bias=True, bn=False), squeezed
    yield Conv(squeezed, channels, 1, 1, 1, bias=True, bn=False), channels  # sigmoid
    yield None, hw * hw * channels  # gating multiply


def residual_ops(skip: bool, stride: int, cin: int, cout: int, hw: int) -> Layers:
    """The identity add of blocks that keep their shape."""
    if skip and stride == 1 and cin == cout:
        yield None, hw * hw * cout


def _mbconv_layers(stage, cin: int, cout: int, stride: int, hw: int) -> Layers:
    out_hw = out_size(hw, stride)
    hidden = expanded_width(cin, stage.expand)
    if stage.expand != 1:
        yield Conv(cin, hidden, 1, 1, hw), hw * hw * hidden
    yield Conv(hidden, hidden, stage.kernel, hidden, out_hw), out_hw ** 2 * hidden
    yield from se_layers(stage.se, cin, hidden, out_hw)
    yield Conv(hidden, cout, 1, 1, out_hw), 0
    yield from residual_ops(stage.skip, stride, cin, cout, out_hw)


def _conv_layers(stage, cin: int, cout: int, stride: int, hw: int) -> Layers:
    out_hw = out_size(hw, stride)
    yield Conv(cin, cout, stage.kernel, 1, out_hw), out_hw ** 2 * cout
    yield from se_layers(stage.se, cin, cout, out_hw)
    yield from residual_ops(stage.skip, stride, cin, cout, out_hw)


def _resnet_tail(stage, cin: int, cout: int, stride: int, out_hw: int) -> Layers:
    yield from se_layers(stage.se, cin, cout, out_hw)
    if stage.skip and (stride != 1 or cin != cout):
        yield Conv(cin, cout, 1, 1, out_hw), 0  # projection shortcut
    yield None, out_hw ** 2 * cout  # activation after the add
    if stage.skip:
        yield None, out_hw ** 2 * cout  # the add


def _basic_layers(stage, cin: int, cout: int, stride: int, hw: int) -> Layers:
    out_hw = out_size(hw, stride)
    yield Conv(cin, cout, stage.kernel, 1, out_hw), out_hw ** 2 * cout
    yield Conv(cout, cout, stage.kernel, 1, out_hw), 0
    yield from _resnet_tail(stage, cin, cout, stride, out_hw)


def _bottleneck_layers(stage, cin: int, cout: int, stride: int, hw: int) -> Layers:
    out_hw = out_size(hw, stride)
    width = bottleneck_width(cout, stage.expand)
    yield Conv(cin, width, 1, 1, hw), hw * hw * width
    yield Conv(width, width, stage.kernel, 1, out_hw), out_hw ** 2 * width
    yield Conv(width, cout, 1, 1, out_hw), 0
    yield from _resnet_tail(stage, cin, cout, stride, out_hw)


register_block(BlockType(
    "mbconv", None, _mbconv_layers, expand="mbconv", searchable=True,
    summary="[1x1 expand] -> depthwise kxk -> [SE] -> linear 1x1 (+ identity)"))
register_block(BlockType(
    "ds", None, _mbconv_layers, searchable=True, same_as="mbconv",
    summary="depthwise-separable: an MBConv with expand 1"))
register_block(BlockType(
    "conv", None, _conv_layers, searchable=True, summary="plain kxk conv + BN + activation [SE] (+ identity)"))
register_block(BlockType("basic", None, _basic_layers, summary="ResNet basic block: two kxk convs"))
register_block(BlockType(
    "bottleneck", None, _bottleneck_layers, expand="bottleneck",
    summary="ResNet bottleneck: 1x1 reduce -> kxk -> 1x1 (expand = ResNet's expansion)"))
