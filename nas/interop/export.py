"""`nas export`: a trained or imported net -> ONNX, TorchScript or a torchvision state_dict."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..atomic import replace_atomically
from ..builder import Net, build
from ..spec import ArchSpec
from . import InteropError
from .check import TOLERANCE, max_abs_diff, random_input, require_close
from ..train.checkpoint import save_atomic
from .checkpoint import read_checkpoint
from .mapping import map_by_order, torchvision_name_for
from .sources import Source, batchnorm_of

FORMATS = ("onnx", "torchscript", "torchvision")


@dataclass
class ExportResult:
    """What `export` produced.

    Attributes:
        path: the written file.
        format: onnx, torchscript or torchvision.
        max_abs_diff: the largest output difference to the eager model on the check batch.
    """

    path: Path
    format: str
    max_abs_diff: float


def load_model(checkpoint: str | Path) -> Net:
    """Our model in eval mode from a run folder or checkpoint that records its spec.

    Args:
        checkpoint: a `nas train`/`nas convert` run folder or checkpoint.pt.
    """
    spec, weights = read_checkpoint(checkpoint)
    if spec is None:
        raise InteropError(f"{checkpoint} is a bare state_dict without a spec; export a run "
                           "folder made by `nas train` or `nas convert`")
    model = build(spec).eval()
    model.load_state_dict(weights)
    return model


def export(checkpoint: str | Path, fmt: str, out: str | Path, tolerance: float = TOLERANCE,
           log: Callable[[str], None] = print) -> ExportResult:
    """Write `checkpoint`'s net in `fmt` to `out` and verify it against the eager model.

    Args:
        checkpoint: a run folder or checkpoint.pt (ours, with its spec).
        fmt: onnx (dynamic batch axis, the spec's resolution; checked with onnxruntime),
            torchscript (traced; checked after reloading) or torchvision (a state_dict in
            torchvision's layout; checked in the torchvision model).
        out: the file to write.
        tolerance: largest max abs output difference accepted.
        log: where the result line goes.
    """
    if fmt not in FORMATS:
        raise InteropError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    model = load_model(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = {"onnx": _onnx, "torchscript": _torchscript, "torchvision": _torchvision}[fmt]
    x = random_input(model.spec.in_channels, model.spec.resolution, batch=3)
    diff = writer(model, out, x, tolerance)
    log(f"wrote {out} ({fmt}, {model.spec.name} at {model.spec.resolution}px): max abs "
        f"output difference to the eager model {diff:.3g}")
    return ExportResult(out, fmt, diff)


def _onnx(model: Net, out: Path, x: torch.Tensor, tolerance: float) -> float:
    try:
        import onnxruntime
    except ImportError as exc:
        raise InteropError("onnxruntime is not installed; pip install 'nas-toolkit[interop]'") from exc
    with warnings.catch_warnings():  # the TorchScript-based exporter needs no onnxscript
        warnings.simplefilter("ignore")
        replace_atomically(out, lambda f: torch.onnx.export(
            model, (x[:1],), f, dynamo=False, input_names=["input"], output_names=["logits"],
            opset_version=17, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])

    def run(batch: torch.Tensor) -> torch.Tensor:  # another batch size than traced: dynamic axis
        return torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])

    diff = max_abs_diff(model, run, x)
    _refuse(out, diff, "onnx vs eager", tolerance)
    return diff


def _torchscript(model: Net, out: Path, x: torch.Tensor, tolerance: float) -> float:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x[:1])
        replace_atomically(out, lambda f: torch.jit.save(traced, f))
        loaded = torch.jit.load(str(out), map_location="cpu")
    diff = max_abs_diff(model, loaded, x)
    _refuse(out, diff, "torchscript vs eager", tolerance)
    return diff


def _torchvision(model: Net, out: Path, x: torch.Tensor, tolerance: float) -> float:
    spec: ArchSpec = model.spec
    name = torchvision_name_for(spec)
    reference = Source("torchvision", name).build(spec.num_classes)
    mapped = map_by_order(model.state_dict(), reference.state_dict(),
                          f"{spec.name} weights for torchvision:{name}",
                          "the spec no longer matches the torchvision layout")
    reference.load_state_dict(mapped)
    diff = max_abs_diff(model, reference, x)
    eps, _ = batchnorm_of(reference)
    hint = (f"torchvision:{name} uses BatchNorm eps {eps:g}, this spec {spec.bn.eps:g}: "
            "fine-tune from a converted run's spec.yaml" if eps != spec.bn.eps else "")
    require_close(diff, f"torchvision:{name} vs ours", tolerance, hint)
    save_atomic(reference.state_dict(), out)  # keeps the module versions torchvision checks
    return diff


def _refuse(out: Path, diff: float, what: str, tolerance: float) -> None:
    try:
        require_close(diff, what, tolerance)
    except InteropError:
        out.unlink(missing_ok=True)
        raise
