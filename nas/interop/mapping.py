"""Map one state_dict onto another layout by order, checking every tensor's shape."""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional

import torch

from ..presets import load_preset
from ..spec import ArchSpec
from . import InteropError
from .sources import TORCHVISION_PRESETS


def _shape(t: torch.Tensor) -> str:
    return f"[{', '.join(str(d) for d in t.shape)}]"


def first_difference(source: Mapping[str, torch.Tensor],
                     target: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The first tensor pair (by position) that differs in shape or presence, as text; None if all fit.

    Args:
        source: the state_dict being mapped, in its own order.
        target: the state_dict (or shapes) of the model receiving it, in its order.
    """
    src, dst = list(source.items()), list(target.items())
    for (s_name, s), (d_name, d) in zip(src, dst):
        if s.shape != d.shape:
            return f"{s_name} {_shape(s)} vs ours {d_name} {_shape(d)}"
    if len(src) > len(dst):
        name, t = src[len(dst)]
        return f"{name} {_shape(t)} vs ours: nothing (the source has {len(src)} tensors, ours {len(dst)})"
    if len(dst) > len(src):
        name, t = dst[len(src)]
        return (f"nothing vs ours {name} {_shape(t)} (the source has {len(src)} tensors, "
                f"ours {len(dst)})")
    return None


def map_by_order(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                 what: str, hint: str) -> "OrderedDict[str, torch.Tensor]":
    """`source`'s tensors under `target`'s names, position by position.

    Args:
        source: the state_dict to map (e.g. torchvision's).
        target: the receiving model's state_dict; only names, order and shapes are used.
        what: how to name the pair in an error, e.g. "torchvision:resnet50 weights in w.pt".
        hint: how to fix a mismatch, appended to the error.
    Raises:
        InteropError naming the first tensor whose shape or presence differs.
    """
    diff = first_difference(source, target)
    if diff is not None:
        raise InteropError(f"{what} do not fit: first differing tensor {diff}; {hint}")
    return OrderedDict((name, tensor) for name, tensor in zip(target, source.values()))


def _layout(spec: ArchSpec) -> tuple:
    return spec.in_channels, spec.activation, spec.stem, spec.stages, spec.head


def torchvision_name_for(spec: ArchSpec) -> str:
    """The torchvision model with this spec's architecture (any resolution, classes, BN eps).

    Args:
        spec: the architecture to look up.
    """
    for name, preset in TORCHVISION_PRESETS.items():
        if _layout(load_preset(preset)) == _layout(spec):
            return name
    presets = sorted(set(TORCHVISION_PRESETS.values()))
    raise InteropError(f"{spec.name} has no torchvision counterpart; torchvision layouts exist "
                       f"for the presets {', '.join(presets)}: export it as onnx or torchscript")
