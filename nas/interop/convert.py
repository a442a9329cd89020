"""`nas convert`: torchvision/timm weights -> a run folder of the matching preset."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..builder import build
from ..presets import resolve_spec
from ..spec import ArchSpec, BatchNormSpec
from . import InteropError
from .check import TOLERANCE, max_abs_diff, random_input, require_close
from .checkpoint import write_run
from .mapping import map_by_order
from .sources import Source, batchnorm_of, classifier_classes, load_state_dict_file, parse_source


@dataclass
class ConvertResult:
    """What `convert` produced.

    Attributes:
        spec: the spec the weights were mapped onto (with the source's classes and BN).
        checkpoint: path of the written checkpoint.pt.
        max_abs_diff: the largest output difference to the source model on the check batch.
    """

    spec: ArchSpec
    checkpoint: Path
    max_abs_diff: float


def source_spec(base: ArchSpec, source_model: torch.nn.Module, num_classes: int) -> ArchSpec:
    """`base` with the source's class count and BatchNorm eps/momentum (needed for equal outputs).

    Args:
        base: the preset or spec the weights are mapped onto.
        source_model: the built source model, whose first BatchNorm layer is read.
        num_classes: outputs of the source's classifier.
    """
    eps, momentum = batchnorm_of(source_model)
    bn = BatchNormSpec(eps=eps, momentum=base.bn.momentum if momentum is None else momentum)
    return base.replace(num_classes=num_classes, bn=bn)


def convert(weights: str | Path, source: str, out: str | Path, spec: Optional[str] = None,
            check_resolution: Optional[int] = None, tolerance: float = TOLERANCE,
            log: Callable[[str], None] = print) -> ConvertResult:
    """Map a torchvision/timm state_dict onto our net, verify equal outputs, write a run folder.

    Args:
        weights: the .pt/.pth file (a state_dict, or a dict with 'state_dict'/'model').
        source: ``torchvision:NAME`` or ``timm:NAME``.
        out: the run folder to create (spec.yaml, checkpoint.pt, convert.json).
        spec: preset name or YAML path; default: the source's matching preset.
        check_resolution: input size of the output check (default: the spec's resolution).
        tolerance: largest max abs output difference accepted.
        log: where progress lines go.
    """
    src = parse_source(source)
    state = load_state_dict_file(weights)
    base = resolve_spec(spec or src.default_preset())
    num_classes = classifier_classes(state) or base.num_classes
    source_model = src.build(num_classes, device="meta")  # filled from the file below
    target = source_spec(base, source_model, num_classes)
    with torch.device("meta"):
        ours = build(target).eval()
    hint = (f"check --from (and --spec: {base.name} is used)" if spec else
            f"check that the file holds {src} weights, or pass --spec")
    mapped = map_by_order(state, ours.state_dict(), f"{src} weights in {weights}", hint)
    ours.load_state_dict(mapped, assign=True)
    source_model = _load_source(source_model, state, src, weights, num_classes)
    diff = _compare(ours, source_model, target, check_resolution)
    log(f"{src} -> {target.name} ({num_classes} classes, BatchNorm eps {target.bn.eps:g}): "
        f"max abs output difference {diff:.3g}")
    require_close(diff, f"ours vs {src}", tolerance, "the mapping by order is wrong for this model")
    info = {"source": str(src), "weights": str(weights), "spec": target.name,
            "num_classes": num_classes, "bn_eps": target.bn.eps, "max_abs_diff": diff,
            "check_resolution": check_resolution or target.resolution}
    path = write_run(out, target, ours.state_dict(), info)
    log(f"wrote {Path(out) / 'spec.yaml'}, {path} and {Path(out) / 'convert.json'}")
    return ConvertResult(target, path, diff)


def _load_source(model: torch.nn.Module, state: dict, src: Source, weights: str | Path,
                 num_classes: int) -> torch.nn.Module:
    """`model` (built on the meta device) holding `state`; rebuilt on the CPU if the file
    does not cover every tensor (buffers outside the state_dict stay meta otherwise)."""
    expected = model.state_dict()
    for name, tensor in state.items():
        if name not in expected or expected[name].shape != tensor.shape:
            raise InteropError(f"{weights} does not load into {src}: tensor {name} "
                               f"{list(tensor.shape)} is not in the model or has another shape")
    missing = [k for k in expected if k not in state]
    if missing:
        raise InteropError(f"{weights} does not load into {src}: it lacks {missing[0]}")
    ordered = OrderedDict(state)
    # module versions (torchvision's MNASNet insists on one) travel in the state_dict metadata,
    # which a dict read with weights_only lacks: take the built model's
    ordered._metadata = getattr(expected, "_metadata", None)  # type: ignore[attr-defined]
    model.load_state_dict(ordered, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        model = src.build(num_classes)
        model.load_state_dict(ordered)
    return model


def _compare(ours: torch.nn.Module, theirs: torch.nn.Module, spec: ArchSpec,
             resolution: Optional[int]) -> float:
    x = random_input(spec.in_channels, resolution or spec.resolution)
    return max_abs_diff(ours, theirs, x)
