"""How (not what) a run computes: device, CUDA graphs, compile, cuDNN autotuning, layout."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import NasError

# Measured on an H200 with our trainer, cudnn.benchmark off (results/benchmarks/trainer.jsonl):
# channels_last ran B0 2.6x faster at 224 px and 2.35x faster at 32 px (CIFAR stride plan)
# than NCHW. (A slowdown at 32 px seen elsewhere came from ImageNet strides with
# cudnn.benchmark on.) So "auto" means channels_last on every CUDA device. On a 2-core CPU
# (oneDNN) it trained 16-px nets 1.2-1.8x faster, every block type, step-by-step paired
# (benchmarks/cpu_trainer.py, results/benchmarks/cpu_trainer.jsonl): "auto" is on there too.


@dataclass(frozen=True)
class Runtime:
    """How a run computes, apart from what it computes (the recipe): never changes results'
    meaning, only speed and device.

    Attributes:
        device: auto, cpu, cuda or cuda:N.
        cuda_graphs: capture the training step in a CUDA graph (GPU only).
        compile: torch.compile the model: minutes per new architecture, worth it for long runs.
        cudnn_benchmark: cuDNN autotuning; costs 13-28 s per new net, so off for searches.
        channels_last: auto, on or off (see `use_channels_last`).
        eval_batch_size: images per forward pass when evaluating.
        threads: CPU threads (default: all cores).
        quiet: print no progress lines (unless the caller passes its own log).
    """

    device: str = "auto"            # auto | cpu | cuda | cuda:N
    cuda_graphs: bool = True        # capture the training step (GPU only)
    compile: bool = False           # torch.compile: minutes per new architecture, for long runs
    cudnn_benchmark: bool = False   # autotuning costs 13-28 s per new net: off for searches
    channels_last: str = "auto"     # auto | on | off
    eval_batch_size: int = 1024
    threads: Optional[int] = None   # CPU threads (default: all cores)
    quiet: bool = False


def resolve_device(name: str) -> torch.device:
    """The torch device for a --device value, refusing unknown names and absent GPUs.

    Args:
        name: auto (a GPU when torch sees one, else the CPU), cpu, cuda or cuda:N.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise NasError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NasError(f"device {name} asked for, but torch sees no CUDA GPU; use --device cpu")
    return device


def amp_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for mixed precision, or None for full fp32.

    Args:
        precision: the recipe's: auto (bfloat16 on CUDA, fp32 elsewhere), fp32 or bf16.
        device: the device the run uses.
    """
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    return torch.bfloat16


def use_channels_last(runtime: Runtime, device: torch.device) -> bool:
    """Whether to train in the channels_last memory layout.

    Args:
        runtime: its channels_last setting; "auto" means on for CUDA and CPU devices
            (faster on both; see the measurements at the top of this module).
        device: the device the run uses.
    """
    if runtime.channels_last != "auto":
        return runtime.channels_last == "on"
    return device.type in ("cuda", "cpu")


def configure(runtime: Runtime, device: torch.device) -> None:
    """Set the process-wide torch switches for a run: CPU thread count, or cuDNN autotuning
    and TF32 matmuls on CUDA.

    Args:
        runtime: threads and cudnn_benchmark are used.
        device: the device the run uses.
    """
    if device.type == "cpu":
        torch.set_num_threads(runtime.threads or os.cpu_count() or 1)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = runtime.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
