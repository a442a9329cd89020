"""`nas bench build` as an experiment: train every sampled candidate of a space (and its
references) with one recipe and seeds, then bench.csv/.md/.png (the ground truth evaluators are
ranked against)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..bench.build import BenchConfig
from . import Log, Trainer


@dataclass
class BenchExperiment:
    """One benchmark build (its settings: `BenchConfig`); `summary` is set by `report`."""

    config: BenchConfig
    summary: Optional[dict] = None

    def check(self, log: Log = print) -> None:
        """The space resolves and --data-resolution is not below its input."""
        from ..bench.build import check_bench
        check_bench(self.config)

    def run(self, trainer: Optional[Trainer], log: Log = print) -> Any:
        """The benchmark's study once every (candidate, seed) run is trained (or --timeout)."""
        from ..bench.build import run_bench
        return run_bench(self.config, log, trainer)

    def report(self, study: Any, log: Log = print) -> Path:
        """bench.csv, bench.md, bench.png; the size and seed noise in a line."""
        from ..bench.report import write_bench

        self.summary = summary = write_bench(self.config, study)
        noise = summary["pooled_seed_sd_pts"]
        log(f"benchmark: {summary['candidates']} networks, {summary['runs']} runs"
            + (f"; ground-truth seed sd {noise:.2f} pts" if noise is not None else ""))
        log(f"outputs: {self.config.out}/bench.csv, bench.md, bench.png")
        return Path(self.config.out) / "bench.md"
