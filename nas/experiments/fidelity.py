"""`nas fidelity SEARCH_DIR` as an experiment: retrain a search's candidates with a longer
recipe and state how well the search's proxy ranked them (Kendall tau, with its interval)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..fidelity import FidelityPlan
from . import Log, Trainer


@dataclass
class FidelityExperiment:
    """The fidelity of one finished search's proxy (`plan`: which candidates, recipe, seeds).
    `out` None: SEARCH_DIR/fidelity."""

    search_dir: Path
    plan: FidelityPlan
    out: Optional[Path] = None
    device: str = "auto"
    force: bool = False
    inputs: Any = field(default=None, init=False)

    def check(self, log: Log = print) -> None:
        """The search is finished and holds enough candidates; the long runs fit in memory."""
        from ..fidelity import check_fidelity, fidelity_inputs

        self.inputs = fidelity_inputs(Path(self.search_dir), self.plan)
        check_fidelity(self.inputs, self.plan, self.device)  # its warnings go to stderr

    def run(self, trainer: Optional[Trainer], log: Log = print) -> tuple[Path, dict]:
        """(the folder written into, the summary) once the long runs are trained and ranked."""
        from ..fidelity import fidelity_fit, run_fidelity
        from ..train import Runtime
        from ..runfolder.folders import run_folder

        given = self.out or Path(self.search_dir) / "fidelity"
        with run_folder(given, fidelity_fit(self.inputs, self.plan), self.force) as out:
            summary = run_fidelity(self.inputs, self.plan, out, Runtime(device=self.device, quiet=True), log,
                                   trainer)
        return out, summary

    def report(self, result: tuple[Path, dict], log: Log = print) -> Path:
        """The verdict in words (fidelity.* are written as the runs are ranked)."""
        from ..fidelity import describe

        out, summary = result
        log(describe(summary))
        log(f"outputs: {out}/fidelity.csv, fidelity.md, fidelity.png, fidelity.json")
        return out / "fidelity.md"
