"""ArchSpec -> nn.Module."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .blocks import ConvBNAct  # importing nas.blocks also registers the built-in builders
from .registry import BuildContext, block_builder
from .spec import ArchSpec, StageSpec, block_configs

__all__ = ["Net", "block_configs", "build", "drop_path_rate", "init_weights"]


def drop_path_rate(spec: ArchSpec, index: int, override: Optional[float] = None) -> float:
    """Stochastic depth grows linearly with the global block index (0 for the first).

    Args:
        spec: the architecture; its drop_path and block count are used.
        index: the block's global index (see `block_configs`).
        override: a rate to use instead of the spec's drop_path.
    """
    rate = spec.drop_path if override is None else override
    return rate * index / spec.blocks


def _make_block(spec: ArchSpec, stage: StageSpec, cin: int, cout: int, stride: int,
                drop_path: float) -> nn.Module:
    context = BuildContext(activation=spec.activation, bn=spec.bn, drop_path=drop_path)
    return block_builder(stage.block)(stage, cin, cout, stride, context)


class Net(nn.Module):
    """A network built from an ArchSpec; `spec` travels with the module.

    Stem conv (+ max-pool), the blocks, an optional 1x1 head conv, global average pool,
    dropout and the linear classifier, initialised by `init_weights`.

    Args:
        spec: the architecture.
        drop_path: overrides the spec's stochastic-depth rate (None: the spec's).
        dropout: overrides the spec's classifier dropout (None: the spec's).
    """

    def __init__(self, spec: ArchSpec, drop_path: Optional[float] = None,
                 dropout: Optional[float] = None) -> None:
        super().__init__()
        self.spec = spec
        stem = [ConvBNAct(spec.in_channels, spec.stem.channels, spec.stem.kernel,
                          spec.stem.stride, spec.bn, spec.activation)]
        if spec.stem.pool:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        self.blocks = nn.Sequential(*[
            _make_block(spec, stage, cin, cout, stride, drop_path_rate(spec, index, drop_path))
            for index, stage, cin, cout, stride in block_configs(spec)])
        last = spec.stages[-1].out
        if spec.head.channels:
            self.head = ConvBNAct(last, spec.head.channels, 1, 1, spec.bn, spec.activation)
            last = spec.head.channels
        else:
            self.head = nn.Identity()
        self.dropout = nn.Dropout(spec.dropout if dropout is None else dropout)
        self.classifier = nn.Linear(last, spec.num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps before pooling: stem -> blocks -> head."""
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N x num_classes) of an N x C x H x W batch."""
        x = self.features(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(self.dropout(x))


def init_weights(model: nn.Module) -> None:
    """TF/timm initialisation: conv normal(0, sqrt(2/fan_out)), fan_out = k*k*out/groups;
    the classifier uniform(+-1/sqrt(classes)); BN weight 1, bias 0.

    Args:
        model: initialised in place, every Conv2d, BatchNorm2d and Linear in it.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def build(spec: ArchSpec, *, drop_path: Optional[float] = None,
          dropout: Optional[float] = None) -> Net:
    """Build the model; `drop_path`/`dropout` override the spec's rates (e.g. a proxy recipe).

    Args:
        spec: the architecture.
        drop_path: stochastic-depth rate instead of the spec's (None: the spec's).
        dropout: classifier dropout instead of the spec's (None: the spec's).
    """
    return Net(spec, drop_path=drop_path, dropout=dropout)
