"""Append one JSON line per benchmark run to results/benchmarks/<name>.jsonl."""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(), "host": platform.node()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def record(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    line = {"benchmark": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join([Path(sys.executable).name] + sys.argv), **machine(), **result}
    path = RESULTS / f"{name}.jsonl"
    with path.open("a") as f:
        f.write(json.dumps(line) + "\n")
    return path
