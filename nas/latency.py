"""Measured inference latency on the current device (MACs are a poor proxy for speed).

`measure_latency_ms` times a module; `LatencyMeter` times an ArchSpec the way the trainer
runs it (eval mode, channels_last where the trainer uses it) and caches the result per
canonical arch string and device fingerprint (CPU model, torch threads and version; the GPU
name on CUDA) in a small JSON file.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from functools import lru_cache
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .spec import ArchSpec

WARMUP, REPEATS = 5, 30  # a 16-px net at batch 1 takes ~1 ms: 30 repeats cost ~35 ms
STATS = {"median": statistics.median, "min": min}  # how repeats become one number


@torch.no_grad()
def measure_latency_ms(model: nn.Module, resolution: int, device: torch.device, batch: int = 1,
                       repeats: int = 10, warmup: int = 3, in_channels: int = 3,
                       channels_last: bool = False) -> float:
    """Median milliseconds of one eval-mode forward pass of `batch` images.

    The model is put back in the mode it was in; CUDA work is synchronised around each pass.

    Args:
        model: the network, already on `device`.
        resolution: input side in pixels.
        device: where the random input is made.
        batch: images per pass.
        repeats: timed passes (the median is returned).
        warmup: untimed passes first.
        in_channels: input channels.
        channels_last: feed the input in the channels_last layout (the model's own layout is
            the caller's).
    """
    x = torch.randn(batch, in_channels, resolution, resolution, device=device)
    return time_forward_ms(model, x.contiguous(memory_format=torch.channels_last) if channels_last else x,
                           device, repeats, warmup)


@torch.no_grad()
def time_forward_ms(model: nn.Module, x: torch.Tensor, device: torch.device, repeats: int = REPEATS,
                    warmup: int = WARMUP, stat: str = "median") -> float:
    """Median (or minimum) milliseconds of `model(x)` in eval mode over `repeats` passes after
    `warmup`. The minimum is the load-robust choice on a shared machine: other jobs only ever
    add time to a pass.

    Args:
        model: any module on `device` (its train/eval mode is restored afterwards).
        x: the input, on `device`.
        device: CUDA work is synchronised around each pass.
        repeats: timed passes.
        warmup: untimed passes first.
        stat: median or min (see STATS).
    """
    was_training = model.training
    model.eval()
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    model.train(was_training)
    return STATS[stat](times) * 1e3


def trainer_layout(device: torch.device) -> bool:
    """Whether the trainer runs nets channels_last on `device` (its --channels-last auto)."""
    from .train.runtime import Runtime, use_channels_last
    return use_channels_last(Runtime(), device)


def as_timed(model: nn.Module, x: torch.Tensor, device: torch.device) -> tuple[nn.Module, torch.Tensor]:
    """`model` and `x` on `device`, in eval mode and the layout the trainer uses there."""
    model = model.to(device).eval()
    x = x.to(device)
    if trainer_layout(device):
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, x


def measure_spec_ms(spec: ArchSpec, device: torch.device, batch: int = 1, repeats: int = REPEATS,
                    warmup: int = WARMUP, stat: str = "median") -> float:
    """Median milliseconds of one eval-mode forward pass of the network `spec` builds.

    Args:
        spec: the network (built with fresh weights; timing does not depend on them).
        device: where it runs.
        batch: images per pass.
        repeats: timed passes.
        warmup: untimed passes first.
        stat: median or min of the repeats.
    """
    from .builder import build
    model, x = as_timed(build(spec), torch.randn(batch, spec.in_channels, spec.resolution,
                                                 spec.resolution), device)
    return time_forward_ms(model, x, device, repeats, warmup, stat)


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_fingerprint(device: torch.device) -> dict:
    """What a latency depends on besides the net: the CPU model and torch threads, or the GPU
    name and CUDA version; and torch's version.

    Args:
        device: the device latencies are measured on.
    """
    if device.type == "cuda":
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
                "torch": torch.__version__}
    return {"device": "cpu", "cpu": cpu_model(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def fingerprint_id(fingerprint: dict) -> str:
    """A fingerprint as one line, e.g. 'cpu: AMD EPYC 7B13, 2 threads, torch 2.14.1'."""
    if fingerprint.get("device") == "cuda":
        return f"cuda: {fingerprint['gpu']}, CUDA {fingerprint['cuda']}, torch {fingerprint['torch']}"
    return f"cpu: {fingerprint['cpu']}, {fingerprint['threads']} threads, torch {fingerprint['torch']}"


class LatencyCache:
    """Measured latencies in a JSON file: {fingerprint line: {"b<batch> <stat> <canonical arch>": ms}}.

    Every write re-reads the file, merges and replaces it atomically (temp file + os.replace),
    so a crash never leaves half a file; two workers writing at once may drop each other's
    newest entry, which is only re-measured later.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._data: Optional[dict] = None

    def _read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, device_id: str, key: str) -> Optional[float]:
        """The cached milliseconds, or None."""
        if self._data is None:
            self._data = self._read()
        return self._data.get(device_id, {}).get(key)

    def put(self, device_id: str, key: str, ms: float) -> None:
        """Record one measurement (the file is created with its folder when missing)."""
        from .atomic import write_text
        data = self._read()
        data.setdefault(device_id, {})[key] = ms
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps(data, indent=1, sort_keys=True))
        self._data = data


class LatencyMeter:
    """Times ArchSpecs on one device at one batch size, through an optional cache.

    Args:
        device: cpu, cuda or cuda:N (resolved on first use).
        batch: images per pass.
        cache: the cache file (None: measure every time).
        stat: median or min of the repeats.
    """

    def __init__(self, device: str = "cpu", batch: int = 1, cache: Optional[Path] = None,
                 stat: str = "median") -> None:
        self.device_name, self.batch, self.stat = device, batch, stat
        self.cache = LatencyCache(cache) if cache is not None else None

    @property
    def device(self) -> torch.device:
        """The torch device (refuses an absent GPU in one line)."""
        from .train.runtime import resolve_device
        return resolve_device(self.device_name)

    def measure(self, spec: ArchSpec) -> float:
        """Milliseconds of one forward pass of `spec` (from the cache when measured before)."""
        device = self.device
        device_id = fingerprint_id(device_fingerprint(device))
        key = f"b{self.batch} {self.stat} {spec.canonical_string()}"
        cached = self.cache.get(device_id, key) if self.cache else None
        if cached is not None:
            return cached
        ms = measure_spec_ms(spec, device, self.batch, stat=self.stat)
        if self.cache:
            self.cache.put(device_id, key, ms)
        return ms
