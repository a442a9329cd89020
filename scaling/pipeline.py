"""The whole EfficientNet recipe in one resumable command:
search a base -> grid-search (alpha, beta, gamma) -> emit phi = 1..k -> train all with one
recipe (plus hand-designed references) -> report.md and scaling.png.

Every step writes its outputs under OUT/<step>/ and is marked done in OUT/pipeline.json;
re-running skips finished steps and resumes an interrupted one.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from nas.compare import compare, markdown, plot, summarise
from nas.data import load_dataset
from nas.presets import resolve_spec
from nas.recipe import resolve_recipe
from nas.search.engine import SearchConfig, run_search
from nas.search.report import cost_line, write_outputs
from nas.search.space import load_space
from nas.study import RunLock, StudyError as SearchError, pin_settings
from nas.spec import ArchSpec
from nas.train import Runtime

from .coefficients import Coefficients
from .emit import emit_compound, write_emission
from .grid import GridConfig, run_grid
from .grid_report import write_grid_outputs

STEPS = ("search", "grid", "emit", "train", "report")


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of one pipeline run; the fields are also the `nas pipeline` options."""

    space: str
    dataset: str
    target_macs: int
    out: str
    trials: int = 20
    phis: tuple[float, ...] = (1.0, 2.0, 3.0)
    objective: str = "reward"
    sampler: str = "tpe"
    seed: int = 0
    recipe: str = "proxy"
    grid_step: float = 0.05
    grid_tolerance: float = 0.1
    grid_closest: Optional[int] = 6
    grid_seeds: int = 1
    resolution_multiple: int = 0
    final_recipe: Optional[str] = None  # None: the search recipe
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    data_dir: Optional[str] = None
    workers: int = 1
    download: bool = False

    RESUMABLE = ("device", "data_dir", "workers", "download")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["phis"] = list(self.phis)
        d["seeds"] = list(self.seeds)
        return d


class Pipeline:
    def __init__(self, config: PipelineConfig, log: Callable[[str], None] = print) -> None:
        self.config, self.log = config, log
        self.out = Path(config.out)
        self.state_file = self.out / "pipeline.json"

    # ---- bookkeeping -------------------------------------------------------------
    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {"done": []}

    def _mark(self, step: str) -> None:
        state = self._state()
        state["done"] = sorted(set(state["done"]) | {step}, key=STEPS.index)
        self.state_file.write_text(json.dumps(state, indent=2))

    # ---- steps -------------------------------------------------------------------
    def run(self) -> Path:
        with RunLock(self.out):
            pin_settings(self.out, "pipeline.yaml", self.config.to_dict(), PipelineConfig.RESUMABLE,
                         "pipeline run")
            done = set(self._state()["done"])
            for i, step in enumerate(STEPS, 1):
                if step in done:
                    self.log(f"[{i}/{len(STEPS)}] {step}: done earlier, skipped")
                    continue
                self.log(f"[{i}/{len(STEPS)}] {step}")
                getattr(self, f"_{step}")()
                self._mark(step)
        return self.out / "report.md"

    def _search_config(self) -> SearchConfig:
        c = self.config
        return SearchConfig(space=c.space, dataset=c.dataset, target_macs=c.target_macs,
                            out=str(self.out / "search"), objective=c.objective, trials=c.trials,
                            sampler=c.sampler, seed=c.seed, recipe=c.recipe, device=c.device,
                            data_dir=c.data_dir, workers=c.workers, download=c.download)

    def _grid_config(self) -> GridConfig:
        c = self.config
        return GridConfig(base=str(self.out / "search" / "best.yaml"), dataset=c.dataset,
                          out=str(self.out / "grid"), step=c.grid_step, tolerance=c.grid_tolerance,
                          closest=c.grid_closest, recipe=c.recipe, seed=c.seed, device=c.device,
                          data_dir=c.data_dir, workers=c.workers, seeds=c.grid_seeds,
                          resolution_multiple=c.resolution_multiple, download=c.download)

    def _search(self) -> None:
        config = self._search_config()
        study = run_search(config, self.log)
        space = load_space(config.space)
        summary = write_outputs(study, config, space)
        if summary["best"] is None:
            raise SearchError("the search trained no candidate to the end; raise --trials")
        self.log(cost_line(summary["cost"]))

    def _grid(self) -> None:
        config = self._grid_config()
        chosen = write_grid_outputs(run_grid(config, self.log), config)
        if chosen is None:
            raise SearchError("the grid trained no point; see grid/grid.csv")
        self.log(f"chosen coefficients alpha {chosen['alpha']}, beta {chosen['beta']}, gamma "
                 f"{chosen['gamma']} (val {chosen['val_acc'] * 100:.2f}%, realised MACs ratio "
                 f"{chosen['realised_ratio']})")

    def _base(self) -> ArchSpec:
        return resolve_spec(str(self.out / "search" / "best.yaml"))

    def _coefficients(self) -> Coefficients:
        return Coefficients.load(self.out / "grid" / "best_coefficients.yaml")

    def _emit(self) -> None:
        c = self._coefficients()
        models = emit_compound(self._base(), c, list(self.config.phis), self.config.resolution_multiple)
        table = write_emission(self.out / "scaled", self._base(), models, c.factor)
        self.log(table[["name", "phi", "resolution", "macs", "params", "realised_ratio",
                        "formula_ratio"]].to_string(index=False))

    @functools.cached_property
    def dataset(self):
        space = load_space(self.config.space)
        return load_dataset(self.config.dataset, data_dir=self.config.data_dir,
                            resolution=space.base.resolution, download=self.config.download)

    def _models(self) -> tuple[list[tuple[str, ArchSpec]], dict[str, str]]:
        base = self._base()
        emitted = pd.read_csv(self.out / "scaled" / "scaled.csv")
        models = [(base.name, base)]
        labels = {base.name: "searched base, phi = 0"}
        for _, row in emitted.iterrows():
            models.append((row["name"], resolve_spec(str(self.out / "scaled" / f"{row['name']}.yaml"))))
            labels[row["name"]] = f"phi = {row['phi']:g}"
        space = load_space(self.config.space)
        baselines = dict(space.baselines)
        classes = self.dataset.num_classes
        for ref in space.references:
            spec = (space.to_spec(baselines[ref], num_classes=classes, name=ref) if ref in baselines
                    else resolve_spec(ref).replace(num_classes=classes))
            models.append((ref, spec))
            labels[ref] = "hand-designed reference"
        return models, labels

    def _train(self) -> None:
        models, _ = self._models()
        recipe = resolve_recipe(self.config.final_recipe or self.config.recipe)
        runs = compare(models, self.dataset, recipe, self.out / "train", seeds=self.config.seeds,
                       runtime=Runtime(device=self.config.device, quiet=True), log=self.log)
        runs.to_csv(self.out / "train" / "runs.csv", index=False)

    def _report(self) -> None:
        models, labels = self._models()
        runs = pd.read_csv(self.out / "train" / "runs.csv")
        summary = summarise(runs)
        summary.to_csv(self.out / "models.csv", index=False)
        family = [name for name, label in labels.items() if label != "hand-designed reference"]
        plot(summary, self.out / "scaling.png", f"{self.config.dataset}: searched base and its compound "
             "scaling", line_models=family, line_label="searched base + compound scaling")
        c = self._coefficients()
        grid = pd.read_csv(self.out / "grid" / "grid.csv")
        scaled = pd.read_csv(self.out / "scaled" / "scaled.csv")
        search_cost = json.loads((self.out / "search" / "cost.json").read_text())
        text = f"""# Pipeline report: {self.config.space} on {self.config.dataset}

1. **Search** ({self.config.trials} candidates, target {self.config.target_macs:,} MACs, objective
   `{self.config.objective}`): base `search/best.yaml` = `{self._base().arch_string()}`.
   {cost_line(search_cost)}.
2. **Grid** at phi = 1 over {len(grid)} admissible points: alpha = {c.alpha:g}, beta = {c.beta:g},
   gamma = {c.gamma:g} (alpha*beta^2*gamma^2 = {c.factor:.3f}; realised MACs ratio
   {grid.iloc[0]['realised_ratio']:.3f}); full table in `grid/grid.csv`, plot `grid/grid.png`.
3. **Emission** for phi = {', '.join(f'{p:g}' for p in self.config.phis)}: `scaled/scaled.csv`
   (realised vs nominal MACs ratio: {', '.join(f"{r:.2f} vs {f:.2f}" for r, f in zip(scaled['realised_ratio'], scaled['formula_ratio']))}).
4. **Training** with recipe `{self.config.final_recipe or self.config.recipe}`, seeds
   {', '.join(map(str, self.config.seeds))}, the same for every model (selection used the validation
   split only; test accuracy is reported, never used to choose). Each net is compared with the
   searched base by the paired seed difference and its 95 % interval; "not resolved" means the
   interval contains 0 and no winner can be named at this budget.

{markdown(summary, labels)}

![accuracy vs MACs](scaling.png)
"""
        (self.out / "report.md").write_text(text)
        self.log(f"report: {self.out / 'report.md'}")
