"""The block registry: each block type declares, in one place, what its spec fields mean,
how it is built, how its layers are counted and whether the search may pick it.

A new block type is one `register_block(BlockType(...))` call; spec validation, the
builder, the analytic counter and search spaces all look it up here. This module imports
no torch: a block type may be registered without its torch half (``build=None``) and get
it later from `register_builder` -- the built-ins do that (`nas.block_types` describes
them, `nas.blocks` builds them), so specs can be made and counted without loading torch.

    register_block(BlockType(
        name="toy", build=lambda stage, cin, cout, stride, ctx: MyModule(...),
        layers=lambda stage, cin, cout, stride, hw: iter([(Conv(cin, cout, 1, 1, hw), 0)]),
        expand="none", searchable=True))
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from .errors import NasError

EXPAND_KINDS = ("none", "mbconv", "bottleneck")


@dataclass(frozen=True)
class Conv:
    """One conv (or FC as a 1x1 conv) layer, as the analytic counter sees it.

    Attributes:
        cin: input channels.
        cout: output channels.
        kernel: kernel size (square).
        groups: conv groups (cin for a depthwise conv).
        out_hw: side of the (square) output map.
        bias: whether the layer has a bias.
        bn: whether a BatchNorm follows (its weight and bias count as parameters).
    """

    cin: int
    cout: int
    kernel: int
    groups: int
    out_hw: int
    bias: bool = False
    bn: bool = True

    @property
    def macs(self) -> int:
        """Multiply-adds: out_hw^2 * cout * (cin / groups) * kernel^2."""
        return self.out_hw * self.out_hw * self.cout * (self.cin // self.groups) * self.kernel ** 2

    @property
    def params(self) -> int:
        """Weights, plus the bias and the BatchNorm weight and bias when present."""
        weights = self.cout * (self.cin // self.groups) * self.kernel ** 2
        return weights + (self.cout if self.bias else 0) + (2 * self.cout if self.bn else 0)


# (conv layer or None, elementwise ops) pairs, in network order
Layers = Iterator[tuple[Optional[Conv], int]]


def out_size(size: int, stride: int) -> int:
    """Output side of a "same"-padded conv with an odd kernel.

    Args:
        size: input side in pixels.
        stride: the conv's stride.
    """
    return math.ceil(size / stride)


@dataclass(frozen=True)
class BuildContext:
    """What a block needs from the whole spec besides its own stage.

    Attributes:
        activation: the spec's activation name.
        bn: the spec's BatchNormSpec.
        drop_path: this block's stochastic-depth rate.
    """

    activation: str
    bn: Any          # BatchNormSpec
    drop_path: float


@dataclass(frozen=True)
class BlockType:
    """A block type.

    Args:
        name: the token in stage strings (``mbconv_r2_k3_...``).
        build: (stage, cin, cout, stride, BuildContext) -> nn.Module for one block; None
            until `register_builder` supplies it.
        layers: (stage, cin, cout, stride, hw) -> the block's conv layers and elementwise ops,
            for the analytic counter (must agree with fvcore's trace of `build`).
        expand: what the stage's ``expand`` field means: "none" (must be 1), "mbconv"
            (hidden = round(in * expand), >= 1) or "bottleneck" (hidden = out // expand).
        searchable: whether search spaces may offer it.
        same_as: the block type (with expand 1) that builds the identical network, if any;
            canonical arch strings use that name.
        summary: one line for docs and errors.
    """

    name: str
    build: Optional[Callable[..., Any]]
    layers: Callable[..., Layers]
    expand: str = "none"
    searchable: bool = False
    same_as: Optional[str] = None
    summary: str = ""

    def __post_init__(self) -> None:
        if self.expand not in EXPAND_KINDS:
            raise RegistryError(f"block {self.name!r}: expand must be one of {', '.join(EXPAND_KINDS)}")


class RegistryError(NasError):
    """A block type is unknown or registered twice."""


_REGISTRY: dict[str, BlockType] = {}


def register_block(block: BlockType, replace: bool = False) -> BlockType:
    """Add a block type; refuses a second registration of a name unless `replace`.

    Args:
        block: the block type; its name must be lower-case letters and digits.
        replace: overwrite a block type of the same name.

    Returns:
        `block`, so the call can be used as an expression.
    """
    if block.name in _REGISTRY and not replace:
        raise RegistryError(f"block type {block.name!r} is already registered")
    if not block.name.isalnum() or not block.name.islower():
        raise RegistryError(f"block name {block.name!r} must be lower-case letters and digits "
                            "(it is a token of stage strings)")
    _REGISTRY[block.name] = block
    return block


def unregister_block(name: str) -> None:
    """Remove a block type (tests register toy blocks and remove them again).

    Args:
        name: the block type's name; an unknown name is ignored.
    """
    _REGISTRY.pop(name, None)


def get_block(name: str) -> BlockType:
    """The registered block type called `name`.

    Args:
        name: a block name such as mbconv.

    Raises:
        RegistryError listing the known names.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RegistryError(f"unknown block type {name!r}; choose one of {', '.join(block_names())}") from None


def block_names(searchable_only: bool = False) -> tuple[str, ...]:
    """Registered block names, in registration order.

    Args:
        searchable_only: only the types search spaces may offer.
    """
    return tuple(n for n, b in _REGISTRY.items() if b.searchable or not searchable_only)


def register_builder(name: str, build: Callable[..., Any]) -> None:
    """Give a registered block type its torch half.

    Args:
        name: a registered block type.
        build: (stage, cin, cout, stride, BuildContext) -> nn.Module for one block.
    """
    _REGISTRY[name] = dataclasses.replace(get_block(name), build=build)


def block_builder(name: str) -> Callable[..., Any]:
    """The build function of block type `name`.

    Raises:
        RegistryError when the type is unknown or was registered without a builder.
    """
    build = get_block(name).build
    if build is None:
        raise RegistryError(f"block type {name!r} has no builder; register one with "
                            "nas.registry.register_builder before building a net that uses it")
    return build
