"""Analytic MAC counter vs fvcore's traced count, on EfficientNet-B0, in one run.

    python benchmarks/counting.py [--preset efficientnet-b0] [--repeats 20]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import record  # noqa: E402
from nas.builder import build  # noqa: E402
from nas.counting import analytic_macs  # noqa: E402
from nas.model_counting import fvcore_macs  # noqa: E402
from nas.presets import load_preset  # noqa: E402


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="efficientnet-b0")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    spec = load_preset(args.preset)
    model = build(spec)
    assert analytic_macs(spec) == fvcore_macs(model, spec.resolution)  # warm-up and check
    analytic = _median_seconds(lambda: analytic_macs(spec), args.repeats * 50)
    fvcore = _median_seconds(lambda: fvcore_macs(model, spec.resolution), args.repeats)
    ratio = fvcore / analytic
    print(f"{args.preset}: analytic {analytic * 1e6:.1f} us, fvcore {fvcore * 1e3:.1f} ms "
          f"(model already built), analytic is {ratio:,.0f}x faster")
    path = record("counting", {"preset": args.preset, "analytic_s": analytic, "fvcore_s": fvcore,
                               "speedup": ratio})
    print(f"recorded in {path}")


if __name__ == "__main__":
    main()
