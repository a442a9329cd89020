"""Weights in and out: import torchvision/timm weights onto our presets, fine-tune from
them, and export trained nets to ONNX, TorchScript or a torchvision-layout state_dict.

Modules, one job each: `sources` (which foreign models we know and how to build them),
`mapping` (tensor-by-tensor mapping with shape checks), `check` (output comparison),
`checkpoint` (run folders readable by `nas eval` and `load_checkpoint`), `convert`,
`finetune` and `export`.
"""
from ..errors import NasError


class InteropError(NasError):
    """Foreign weights, a checkpoint or an export that does not fit (one-line message)."""
