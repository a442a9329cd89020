"""One lifecycle for the commands that train many nets: check -> run(trainer) -> report.

An experiment is built from resolved objects (specs, a recipe, a data request), never from
argparse; `check()` makes every refusal before a folder is locked or a file written;
`run(trainer)` holds its folder's lock, trains or resumes with the trainer it is given (the
shared trainer, or a deterministic fake in tests) and returns what it measured; `report(result)`
writes the tables, plots and Markdown and returns the main output's path. `execute` runs the
three in order; a command is a thin adapter that builds the experiment and calls it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Protocol

Trainer = Callable[..., Any]  # nas.train.train's signature: (spec, dataset, recipe, *, runtime, out_dir, ...)
Log = Callable[[str], None]


class Experiment(Protocol):
    """What every many-net command implements: search, compare, fidelity, bench build
    (nas/experiments/), the scaling grid and study (scaling/experiments.py) and the pipeline
    (scaling/pipeline.py)."""

    def check(self, log: Log) -> None:
        """Every refusal that needs no training, before a lock is taken or a file written."""
        ...

    def run(self, trainer: Optional[Trainer], log: Log) -> Any:
        """Train, resume or reuse every planned net under the folder's lock; return the results.
        `trainer` None: the shared trainer, `nas.train.train`."""
        ...

    def report(self, result: Any, log: Log) -> Path:
        """Write the tables, plots and report of `result`; return the main output's path."""
        ...


def execute(experiment: Experiment, trainer: Optional[Trainer] = None, log: Log = print) -> Path:
    """check -> run(trainer) -> report: the one order every experiment is run in (`trainer`
    None: the shared trainer)."""
    experiment.check(log)
    result = experiment.run(trainer, log)
    return experiment.report(result, log)
