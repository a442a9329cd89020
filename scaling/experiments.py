"""The scaling commands as experiments (nas.experiments): the alpha/beta/gamma grid and the
compound-vs-single-dimension study, each check -> run(trainer) -> report."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from nas.experiments import Log, Trainer
from nas.recipe import Recipe
from nas.settings import DataRequest
from nas.spec import ArchSpec

from .coefficients import Coefficients
from .grid import GridConfig


@dataclass
class GridExperiment:
    """`nas scale grid`: train every admissible (alpha, beta, gamma) at phi = 1, choose one.
    `chosen` (the coefficients, or None when no point finished) is set by `report`."""

    config: GridConfig
    chosen: Optional[dict] = None

    def check(self, log: Log = print) -> None:
        """The base resolves and at least one grid point lands near 2x realised MACs."""
        from nas.presets import resolve_spec

        from .grid import plan_points
        plan_points(resolve_spec(self.config.base), self.config)

    def run(self, trainer: Optional[Trainer], log: Log = print) -> Any:
        """The grid's study once every point is trained (or --timeout stops it)."""
        from .grid import run_grid
        return run_grid(self.config, log, trainer)

    def report(self, study: Any, log: Log = print) -> Path:
        """grid.csv, best_coefficients.yaml, grid.png, and the choice in one line."""
        from .grid_report import write_grid_outputs

        out = Path(self.config.out)
        self.chosen = chosen = write_grid_outputs(study, self.config)
        if chosen is None:
            log("no grid point finished; nothing chosen")
            return out / "grid.csv"
        log(f"chosen: alpha {chosen['alpha']} beta {chosen['beta']} gamma {chosen['gamma']} "
            f"(alpha*beta^2*gamma^2 = {chosen['factor']}, realised MACs ratio {chosen['realised_ratio']}, "
            f"val {chosen['val_acc'] * 100:.2f}% over {chosen['seeds']} seed(s); {chosen['choice']}) "
            f"-> {out}/best_coefficients.yaml, grid.csv, grid.png")
        return out / "best_coefficients.yaml"


@dataclass
class ScalingStudyExperiment:
    """`nas scale study`: compound vs depth-, width- and resolution-only nets at equal realised
    MACs, trained with one recipe and the same seeds (paired)."""

    base: ArchSpec
    coefficients: Coefficients
    targets: Sequence[float]
    data: DataRequest
    recipe: Recipe
    seeds: Sequence[int]
    out: Path
    device: str = "auto"
    resolution_multiple: int = 0
    force: bool = False
    nets: list = field(default_factory=list, init=False)
    dataset: Any = field(default=None, init=False)

    def check(self, log: Log = print) -> None:
        """Plan the nets on the base fitted to the data; resolution and memory checks; the data
        decoded at the largest grown net's input."""
        from nas.data.fit import fit_to_data
        from nas.preflight import check_before_training, check_nets_data_resolution

        from .study import plan_study

        check_nets_data_resolution(self.data.data_resolution, [self.base])  # before the data is loaded
        dataset = self.data.load(self.base.resolution)
        base = fit_to_data(self.base, dataset, log)
        self.nets = plan_study(base, self.coefficients, self.targets, self.resolution_multiple)
        specs = [n.spec for n in self.nets]
        check_before_training(specs, dataset, self.recipe, self.device, self.data.data_resolution)
        self.dataset = self.data.for_nets(specs, dataset)

    def run(self, trainer: Optional[Trainer], log: Log = print) -> tuple[Path, Any]:
        """(the folder written into, the study table): trained and written under the folder's lock
        (runs.csv, study.csv, study.md, study.png)."""
        from nas.compare import fit_of
        from nas.runfolder.folders import run_folder
        from nas.train import Runtime

        from .study import train_study, write_study

        fit = fit_of([(n.spec.name, n.spec) for n in self.nets], self.dataset, self.recipe, self.seeds, "runs")
        with run_folder(Path(self.out), fit, self.force) as out:
            runs = train_study(self.nets, self.dataset, self.recipe, out, self.seeds,
                               Runtime(device=self.device, quiet=True), log, trainer)
            table = write_study(self.nets, runs, self.dataset, self.recipe, out)
        return out, table

    def report(self, result: tuple[Path, Any], log: Log = print) -> Path:
        """study.md printed, and where the outputs are."""
        out, table = result
        log((out / "study.md").read_text())
        log(f"outputs: {out}/study.csv, study.md, study.png ({len(table)} nets)")
        return out / "study.md"
