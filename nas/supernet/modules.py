"""The weight-sharing supernet as PyTorch modules, and extraction of a standalone subnet.

Every shared layer runs a subnet through one slicing function, `_Shared*.tensors`, that
both `forward` and `export` call: an extracted `nas.builder.Net` therefore holds exactly
the tensors the supernet used, and gives the same outputs (same BatchNorm statistics).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import ConvBNAct
from ..builder import Net, build, init_weights
from ..spec import ArchSpec, BatchNormSpec, StageSpec
from ..widths import expanded_width, se_width
from .plan import SupernetPlan, op_of

_ACT = {"silu": F.silu, "relu": F.relu, "relu6": F.relu6}


class SharedConvBN(nn.Module):
    """A conv and BatchNorm of the largest shape; a subnet uses the first channels and the
    centre of the kernel. Depthwise when `depthwise` (one filter per channel)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bn: BatchNormSpec,
                 activation: Optional[str], depthwise: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.depthwise, self.activation = kernel, stride, depthwise, activation
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=cout if depthwise else 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=bn.eps, momentum=bn.momentum)

    def tensors(self, cin: int, cout: int, kernel: int) -> dict[str, torch.Tensor]:
        """The slices a (cin -> cout, kernel) layer uses, named as in `ConvBNAct`'s state_dict."""
        off = (self.kernel - kernel) // 2
        weight = self.conv.weight[:cout, :1 if self.depthwise else cin, off:off + kernel, off:off + kernel]
        bn = self.bn
        return {"0.weight": weight, "1.weight": bn.weight[:cout], "1.bias": bn.bias[:cout],
                "1.running_mean": bn.running_mean[:cout], "1.running_var": bn.running_var[:cout],
                "1.num_batches_tracked": bn.num_batches_tracked}

    def forward(self, x: torch.Tensor, cout: int, kernel: int) -> torch.Tensor:
        """The layer at input width x.shape[1], `cout` outputs and `kernel`."""
        t = self.tensors(x.shape[1], cout, kernel)
        x = F.conv2d(x, t["0.weight"], None, self.stride, kernel // 2, groups=cout if self.depthwise else 1)
        bn = self.bn
        x = F.batch_norm(x, t["1.running_mean"], t["1.running_var"], t["1.weight"], t["1.bias"],
                         self.training, 0.1 if bn.momentum is None else bn.momentum, bn.eps)
        return x if self.activation is None else _ACT[self.activation](x)


class SharedSE(nn.Module):
    """Squeeze-excite of the largest widths (as `nas.blocks.SqueezeExcite`)."""

    def __init__(self, channels: int, squeezed: int, activation: str) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1, bias=True)
        self.expand = nn.Conv2d(squeezed, channels, 1, bias=True)
        self.activation = activation

    def tensors(self, channels: int, squeezed: int) -> dict[str, torch.Tensor]:
        """The slices a (channels, squeezed) SE uses, named as in SqueezeExcite's state_dict."""
        return {"reduce.weight": self.reduce.weight[:squeezed, :channels],
                "reduce.bias": self.reduce.bias[:squeezed],
                "expand.weight": self.expand.weight[:channels, :squeezed],
                "expand.bias": self.expand.bias[:channels]}

    def forward(self, x: torch.Tensor, squeezed: int) -> torch.Tensor:
        """`x` gated per channel."""
        t = self.tensors(x.shape[1], squeezed)
        s = F.conv2d(x.mean((2, 3), keepdim=True), t["reduce.weight"], t["reduce.bias"])
        s = F.conv2d(_ACT[self.activation](s), t["expand.weight"], t["expand.bias"])
        return x * torch.sigmoid(s)


class MBConvOp(nn.Module):
    """MBConv at one block position: with `expanding`, 1x1 expand -> depthwise -> [SE] ->
    project; without, the depthwise-separable form (no expansion, as `ds` / MBConv e1)."""

    def __init__(self, cin: int, cout: int, hidden: int, kernel: int, stride: int, squeezed: int,
                 expanding: bool, activation: str, bn: BatchNormSpec) -> None:
        super().__init__()
        hidden = hidden if expanding else cin
        self.stride = stride
        self.expand = SharedConvBN(cin, hidden, 1, 1, bn, activation) if expanding else None
        self.depthwise = SharedConvBN(hidden, hidden, kernel, stride, bn, activation, depthwise=True)
        self.se = SharedSE(hidden, squeezed, activation) if squeezed else None
        self.project = SharedConvBN(hidden, cout, 1, 1, bn, None)

    def export(self, stage: StageSpec, cin: int) -> dict[str, torch.Tensor]:
        """The tensors of the equivalent `nas.blocks.MBConv`, named as its state_dict."""
        hidden = expanded_width(cin, stage.expand)
        out = {}
        if self.expand is not None:
            out.update(_prefixed("expand.", self.expand.tensors(cin, hidden, 1)))
        out.update(_prefixed("depthwise.", self.depthwise.tensors(hidden, hidden, stage.kernel)))
        if stage.se > 0:
            out.update(_prefixed("se.", self.se.tensors(hidden, se_width(cin, stage.se))))
        out.update(_prefixed("project.", self.project.tensors(hidden, stage.out, 1)))
        return out

    def forward(self, x: torch.Tensor, stage: StageSpec) -> torch.Tensor:
        """The block `stage` describes, at input width x.shape[1]."""
        cin = x.shape[1]
        hidden = expanded_width(cin, stage.expand)
        out = self.expand(x, hidden, 1) if self.expand is not None else x
        out = self.depthwise(out, hidden, stage.kernel)
        if stage.se > 0:
            out = self.se(out, se_width(cin, stage.se))
        out = self.project(out, stage.out, 1)
        return out + x if stage.skip and self.stride == 1 and cin == stage.out else out


class ConvOp(nn.Module):
    """A plain kxk conv + BN + activation at one block position, optional SE and identity."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, squeezed: int, activation: str,
                 bn: BatchNormSpec) -> None:
        super().__init__()
        self.stride = stride
        self.conv = SharedConvBN(cin, cout, kernel, stride, bn, activation)
        self.se = SharedSE(cout, squeezed, activation) if squeezed else None

    def export(self, stage: StageSpec, cin: int) -> dict[str, torch.Tensor]:
        """The tensors of the equivalent `nas.blocks.PlainConv`."""
        out = _prefixed("conv.", self.conv.tensors(cin, stage.out, stage.kernel))
        if stage.se > 0:
            out.update(_prefixed("se.", self.se.tensors(stage.out, se_width(cin, stage.se))))
        return out

    def forward(self, x: torch.Tensor, stage: StageSpec) -> torch.Tensor:
        """The block `stage` describes, at input width x.shape[1]."""
        cin = x.shape[1]
        out = self.conv(x, stage.out, stage.kernel)
        if stage.se > 0:
            out = self.se(out, se_width(cin, stage.se))
        return out + x if stage.skip and self.stride == 1 and cin == stage.out else out


def _prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in tensors.items()}


class Supernet(nn.Module):
    """All candidates of a space in one module: `forward(x, spec)` runs the subnet `spec`.

    Args:
        plan: the supernet's shape (`plan_supernet`).
        num_classes: classifier width (the data set's).
        dropout: classifier dropout while training.
    """

    def __init__(self, plan: SupernetPlan, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        base = plan.base
        self.plan, self.num_classes = plan, num_classes
        act, bn = base.activation, base.bn
        self.stem = nn.Sequential(ConvBNAct(base.in_channels, base.stem.channels, base.stem.kernel,
                                            base.stem.stride, bn, act))
        if base.stem.pool:
            self.stem.append(nn.MaxPool2d(3, 2, 1))
        self.stages = nn.ModuleList()
        for i, (st, first_in) in enumerate(zip(plan.stages, plan.stage_inputs())):
            positions = nn.ModuleList()
            for j in range(st.max_repeats):
                cin, stride = (first_in, st.stride) if j == 0 else (st.max_out, 1)
                squeezed = se_width(cin, st.max_se) if st.max_se > 0 else 0
                ops = nn.ModuleDict()
                if "mbconv" in st.ops:
                    ops["mbconv"] = MBConvOp(cin, st.max_out, expanded_width(cin, st.max_expand), st.max_kernel,
                                             stride, squeezed, True, act, bn)
                if "ds" in st.ops:
                    ops["ds"] = MBConvOp(cin, st.max_out, cin, st.max_kernel, stride, squeezed, False, act, bn)
                if "conv" in st.ops:
                    ops["conv"] = ConvOp(cin, st.max_out, st.max_kernel, stride, squeezed, act, bn)
                positions.append(ops)
            self.stages.append(positions)
        last = plan.stages[-1].max_out
        self.head = SharedConvBN(last, base.head.channels, 1, 1, bn, act) if base.head.channels else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(base.head.channels or last, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, spec: ArchSpec) -> torch.Tensor:
        """Logits of the subnet `spec` (checked once with `plan.check_runs` by the caller)."""
        x = self.stem(x)
        for positions, stage in zip(self.stages, spec.stages):
            op = op_of(stage)
            for j in range(stage.repeats):
                x = positions[j][op](x, stage)
        if self.head is not None:
            x = self.head(x, self.head.conv.out_channels, 1)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        weight, bias = self.classifier.weight[:, :x.shape[1]], self.classifier.bias
        return F.linear(self.dropout(x), weight, bias)

    def subnet_state(self, spec: ArchSpec) -> dict[str, torch.Tensor]:
        """The state_dict of `build(spec)` holding this supernet's slices for `spec`."""
        state = {f"stem.{k}": v for k, v in self.stem.state_dict().items()}
        index, cin = 0, spec.stem.channels
        for positions, stage in zip(self.stages, spec.stages):
            op = op_of(stage)
            for j in range(stage.repeats):
                state.update(_prefixed(f"blocks.{index}.", positions[j][op].export(stage, cin)))
                index, cin = index + 1, stage.out
        if self.head is not None:
            state.update(_prefixed("head.", self.head.tensors(cin, self.head.conv.out_channels, 1)))
        state["classifier.weight"] = self.classifier.weight[:, :spec.head.channels or cin]
        state["classifier.bias"] = self.classifier.bias
        return {k: v.detach().clone().contiguous() for k, v in state.items()}


def extract(supernet: Supernet, spec: ArchSpec) -> Net:
    """A standalone network of `spec` with the supernet's weights and BatchNorm statistics,
    on the supernet's device, in eval mode (the caller checks `spec` with `check_runs`)."""
    device = next(supernet.parameters()).device
    with torch.device("meta"):
        net = build(spec, drop_path=0.0)
    net.load_state_dict(supernet.subnet_state(spec), strict=True, assign=True)
    return net.to(device).eval()
