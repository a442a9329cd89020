"""Building blocks: MBConv / depthwise-separable, plain conv, ResNet basic and bottleneck."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .registry import register_builder
from .spec import BatchNormSpec
from .widths import bottleneck_width, expanded_width, se_width

ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "silu": lambda: nn.SiLU(inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
}


class ConvBNAct(nn.Sequential):
    """Conv (no bias, "same" padding for odd kernels) -> BatchNorm -> optional activation.

    Args:
        cin: input channels.
        cout: output channels.
        kernel: kernel size (odd).
        stride: conv stride.
        bn: BatchNorm eps and momentum.
        activation: a key of ACTIVATION_LAYERS, or None for a linear output (projections).
        groups: conv groups (the channel count for a depthwise conv).
    """
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bn: BatchNormSpec,
                 activation: str | None, groups: int = 1) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=bn.eps, momentum=bn.momentum),
        ]
        if activation is not None:
            layers.append(ACTIVATION_LAYERS[activation]())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global average pool -> 1x1 reduce -> activation -> 1x1 expand
    -> sigmoid, a gate per channel.

    Args:
        channels: channels gated (the block's hidden width).
        squeezed: width of the reduction (see `se_width`).
        activation: a key of ACTIVATION_LAYERS, used between the two 1x1 convs.
    """
    def __init__(self, channels: int, squeezed: int, activation: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1, bias=True)
        self.act = ACTIVATION_LAYERS[activation]()
        self.expand = nn.Conv2d(squeezed, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` (N x C x H x W) with each channel scaled by its gate in (0, 1)."""
        scale = x.mean((2, 3), keepdim=True)
        scale = self.expand(self.act(self.reduce(scale)))
        return x * torch.sigmoid(scale)


class StochasticDepth(nn.Module):
    """Drops the whole residual branch per sample, rescaling survivors by 1/keep.

    Args:
        rate: probability of dropping a sample's branch during training (keep = 1 - rate).
    """

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` with whole samples zeroed at `rate` in training; unchanged in eval mode."""
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        """The drop rate, shown when the module is printed."""
        return f"rate={self.rate:.4f}"


class MBConv(nn.Module):
    """[1x1 expand] -> depthwise kxk -> [SE] -> 1x1 linear projection (+ identity).

    With expand == 1 there is no expansion conv: that is the depthwise-separable
    block of MobileNetV2's first stage and MnasNet's first layer ("ds").

    Args:
        cin: input channels.
        cout: output channels.
        kernel: depthwise kernel size.
        stride: depthwise stride.
        expand: hidden width as a multiple of cin (see `expanded_width`).
        se: SE ratio of the input channels; 0 for no SE.
        skip: add the identity when stride is 1 and cin == cout.
        activation: a key of ACTIVATION_LAYERS.
        bn: BatchNorm eps and momentum.
        drop_path: stochastic-depth rate of the residual branch.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: float, se: float,
                 skip: bool, activation: str, bn: BatchNormSpec, drop_path: float) -> None:
        super().__init__()
        hidden = expanded_width(cin, expand)
        self.expand = ConvBNAct(cin, hidden, 1, 1, bn, activation) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(hidden, hidden, kernel, stride, bn, activation, groups=hidden)
        self.se = SqueezeExcite(hidden, se_width(cin, se), activation) if se > 0 else nn.Identity()
        self.project = ConvBNAct(hidden, cout, 1, 1, bn, None)
        self.use_residual = skip and stride == 1 and cin == cout
        self.drop_path = StochasticDepth(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output; with the identity, the branch passes stochastic depth first."""
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.use_residual:
            out = self.drop_path(out) + x
        return out


class PlainConv(nn.Module):
    """A regular kxk conv + BN + activation (MnasNet's "conv" op), optional SE and identity.

    Arguments as `MBConv`'s (without `expand`): `kernel` and `stride` are the conv's.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, se: float, skip: bool,
                 activation: str, bn: BatchNormSpec, drop_path: float) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, cout, kernel, stride, bn, activation)
        self.se = SqueezeExcite(cout, se_width(cin, se), activation) if se > 0 else nn.Identity()
        self.use_residual = skip and stride == 1 and cin == cout
        self.drop_path = StochasticDepth(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output; with the identity, the branch passes stochastic depth first."""
        out = self.se(self.conv(x))
        if self.use_residual:
            out = self.drop_path(out) + x
        return out


class _ResNetBlock(nn.Module):
    """Shared tail of the ResNet blocks: projection shortcut, add, then activation."""

    def _init_shortcut(self, cin: int, cout: int, stride: int, skip: bool, bn: BatchNormSpec,
                       activation: str, drop_path: float) -> None:
        self.use_residual = skip
        needs_projection = skip and (stride != 1 or cin != cout)
        self.shortcut = ConvBNAct(cin, cout, 1, stride, bn, None) if needs_projection else nn.Identity()
        self.drop_path = StochasticDepth(drop_path) if skip else nn.Identity()
        self.act = ACTIVATION_LAYERS[activation]()

    def _finish(self, branch: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.use_residual:
            branch = self.drop_path(branch) + self.shortcut(x)
        return self.act(branch)


class BasicBlock(_ResNetBlock):
    """ResNet basic block: kxk conv (stride) -> kxk conv -> [SE] -> + shortcut -> activation.

    The shortcut is a strided 1x1 conv + BN when the stride or width changes.

    Arguments as `MBConv`'s (without `expand`): `kernel` is both convs', `stride` the first's,
    and `skip` adds the shortcut (without it the block is a plain two-conv stack).
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, se: float, skip: bool,
                 activation: str, bn: BatchNormSpec, drop_path: float) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(cin, cout, kernel, stride, bn, activation)
        self.conv2 = ConvBNAct(cout, cout, kernel, 1, bn, None)
        self.se = SqueezeExcite(cout, se_width(cin, se), activation) if se > 0 else nn.Identity()
        self._init_shortcut(cin, cout, stride, skip, bn, activation, drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output: activation of the branch plus the shortcut."""
        return self._finish(self.se(self.conv2(self.conv1(x))), x)


class Bottleneck(_ResNetBlock):
    """1x1 reduce -> kxk (stride, as in ResNet v1.5) -> 1x1 expand to out.

    Then [SE], + shortcut (a strided 1x1 conv + BN when the stride or width changes) and
    the activation.

    Arguments as `MBConv`'s, except that `kernel` and `stride` apply to the middle conv,
    `expansion` is the ratio of cout to the inner width (`bottleneck_width`) and `skip`
    always adds the shortcut.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: float, se: float,
                 skip: bool, activation: str, bn: BatchNormSpec, drop_path: float) -> None:
        super().__init__()
        width = bottleneck_width(cout, expansion)
        self.conv1 = ConvBNAct(cin, width, 1, 1, bn, activation)
        self.conv2 = ConvBNAct(width, width, kernel, stride, bn, activation)
        self.conv3 = ConvBNAct(width, cout, 1, 1, bn, None)
        self.se = SqueezeExcite(cout, se_width(cin, se), activation) if se > 0 else nn.Identity()
        self._init_shortcut(cin, cout, stride, skip, bn, activation, drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output: activation of the branch plus the shortcut."""
        return self._finish(self.se(self.conv3(self.conv2(self.conv1(x)))), x)


# The torch half of the built-in block types (their torch-free half, the descriptions and
# layer formulas the counter uses, is registered by `nas.block_types`).
def _mbconv(s, cin: int, cout: int, stride: int, ctx) -> MBConv:
    return MBConv(cin, cout, s.kernel, stride, s.expand, s.se, s.skip, ctx.activation, ctx.bn, ctx.drop_path)


register_builder("mbconv", _mbconv)
register_builder("ds", _mbconv)
register_builder("conv", lambda s, cin, cout, stride, ctx: PlainConv(
    cin, cout, s.kernel, stride, s.se, s.skip, ctx.activation, ctx.bn, ctx.drop_path))
register_builder("basic", lambda s, cin, cout, stride, ctx: BasicBlock(
    cin, cout, s.kernel, stride, s.se, s.skip, ctx.activation, ctx.bn, ctx.drop_path))
register_builder("bottleneck", lambda s, cin, cout, stride, ctx: Bottleneck(
    cin, cout, s.kernel, stride, s.expand, s.se, s.skip, ctx.activation, ctx.bn, ctx.drop_path))
