"""Inner widths of the built-in blocks: pure functions shared by the builder and the counter."""
from __future__ import annotations


def expanded_width(in_channels: int, expand: float) -> int:
    """MBConv hidden width. Like TF, in * expand is not rounded to 8 (for integer
    ratios, and so for all of B0-B7, this equals timm's and torchvision's rounding).

    Args:
        in_channels: the block's input channels.
        expand: the expansion ratio (1 for a depthwise-separable block).
    """
    return int(round(in_channels * expand))


def se_width(in_channels: int, ratio: float) -> int:
    """SE squeeze width: from the block *input* channels, not the expanded ones.

    Args:
        in_channels: the block's input channels.
        ratio: the SE ratio (e.g. 0.25); the width is at least 1.
    """
    return max(1, int(in_channels * ratio))


def bottleneck_width(out_channels: int, expansion: float) -> int:
    """Inner width of a ResNet bottleneck: out // expansion (64 for out 256, expansion 4).

    Args:
        out_channels: the block's output channels.
        expansion: ratio of output to inner width.
    """
    return int(out_channels // expansion)
