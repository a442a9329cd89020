"""The whole EfficientNet recipe in one resumable command:
search a base -> grid-search (alpha, beta, gamma) at equal realised MACs -> emit phi = 1..k ->
train the base, its scaled family and the hand-designed references (rescaled to the base's
MACs) with one final recipe and seeds -> scaling study (compound vs single dimensions) ->
proxy fidelity -> report.md stating each claim as resolved or not.

Every step writes its outputs under OUT/<step>/ and is marked done in OUT/pipeline.json;
re-running skips finished steps and resumes an interrupted one.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd
import yaml
from optuna.trial import TrialState

from nas.atomic import write_csv, write_text
from nas.compare import compare
from nas.data import Dataset, load_dataset
from nas.fidelity import MIN_CANDIDATES, FidelityPlan, check_fidelity, fidelity_inputs, run_fidelity
from nas.preflight import check_before_training, decode_resolution, native_notes
from nas.presets import resolve_spec
from nas.recipe import Recipe, resolve_recipe
from nas.experiments import Trainer
from nas.experiments.search import SearchExperiment
from nas.search.engine import NON_TRAINING_CAP, SearchConfig, check_search, trained_count
from nas.search.report import SAMPLED_FILE, cost_line
from nas.search.space import SearchSpace, load_space
from nas.settings import DataSettings, StudySettings, shared_settings
from nas.spec import ArchSpec
from nas.study import RunLock, pin_settings
from nas.study import StudyError as SearchError
from nas.train import Runtime

from .coefficients import Coefficients
from .emit import emit_compound, write_emission
from .experiments import GridExperiment
from .grid import GridConfig, plan_points
from .pipeline_report import SAMPLED
from .single import match_to_macs
from .study import plan_study, run_study

STEPS = ("search", "grid", "emit", "train", "study", "fidelity", "report")


@dataclass(frozen=True)
class PipelineConfig(StudySettings, DataSettings):
    """Every setting of one pipeline run; the fields are also the `nas pipeline` options."""

    space: str
    dataset: str
    target_macs: Optional[int]  # the search's MACs target; None when it searches another cost
    out: str
    trials: int = 20
    baselines: str = "matched"  # the search's --baselines (none, as-is, matched)
    phis: tuple[float, ...] = (1.0, 2.0, 3.0)
    objective: str = "reward"
    sampler: str = "tpe"
    recipe: str = "proxy"
    grid_step: float = 0.05
    grid_tolerance: float = 0.06       # 3 % of 2x
    grid_closest: Optional[int] = None  # every distinct network within the tolerance
    grid_seeds: int = 2
    resolution_multiple: int = 0
    final_recipe: Optional[str] = None  # None: the search recipe
    seeds: tuple[int, ...] = (0,)
    study_targets: tuple[float, ...] = ()  # () : 2^phi for each emitted phi > 0
    fidelity_top: int = 3       # the older pick, used only when fidelity_candidates is 0
    fidelity_random: int = 3
    fidelity_candidates: int = 10  # evenly spaced ranks of the proxy's ranking
    train_scaled: bool = True   # train the emitted family in the final comparison
    data_resolution: Optional[int] = None
    pruner: str = "median"
    evaluator: Optional[str] = None         # the search's --evaluator (None: train with --recipe)
    prefilter: Optional[str] = None         # the search's two-stage --prefilter
    prefilter_trials: Optional[int] = None
    cost: str = "macs"  # the search's cost and its target (nas.costs; see SearchConfig)
    target: Optional[float] = None
    latency_device: str = "cpu"
    latency_batch: int = 1
    latency_source: str = "measured"
    latency_table: Optional[str] = None
    latency_stat: str = "median"
    budget_draws: int = 256  # the search's hard-budget redraws (nas.search.budget_sampler)

    RESUMABLE = ("device", "data_dir", "workers", "download", "timeout", "heartbeat", "budget_draws")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (what is pinned in pipeline.yaml)."""
        d = dataclasses.asdict(self)
        for key in ("phis", "seeds", "study_targets"):
            d[key] = list(d[key])
        return d

    def resumable_in(self, saved: dict) -> tuple[str, ...]:
        """RESUMABLE, plus the settings an earlier pipeline.yaml (`saved`) predates that are at
        their defaults here: a run made before an option existed resumes with it left out."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        new = self.to_dict()
        added = tuple(k for k in new if saved and k not in saved and new[k] == defaults[k])
        return self.RESUMABLE + added

    def study_name(self, step: str) -> Optional[str]:
        """The name of the search or grid study in a shared --storage: unique to this pipeline
        (its folder name), so pipelines sharing one storage never collide. Without --storage
        each study has its own journal file and keeps its default name."""
        return None if self.storage is None else f"{Path(self.out).resolve().name}-{step}"

    @property
    def targets(self) -> list[float]:
        """MACs ratios of the scaling study."""
        return list(self.study_targets) or [2 ** p for p in self.phis if p > 0]


class Pipeline:
    """Runs the steps in order, each once: an experiment (nas.experiments) made of experiments,
    `check` -> `run(trainer)` -> `report`. Each step that trains passes `trainer` on (None: the
    shared trainer), so the whole pipeline runs on a fake in tests."""

    def __init__(self, config: PipelineConfig, log: Callable[[str], None] = print) -> None:
        self.config, self._print = config, log
        self.out = Path(config.out)
        self.state_file = self.out / "pipeline.json"
        self._warned: set[str] = set()
        self._datasets: dict[int, Dataset] = {}

    def log(self, line: str) -> None:
        """Print a progress line; each distinct warning only once per run (several steps
        train nets at the same input size and would repeat its data warning)."""
        if line.startswith("warning: "):
            if line in self._warned:
                return
            self._warned.add(line)
        self._print(line)

    def _state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {"done": []}

    def _mark(self, step: str) -> None:
        state = self._state()
        state["done"] = sorted(set(state["done"]) | {step}, key=STEPS.index)
        write_text(self.state_file, json.dumps(state, indent=2))

    def run(self, trainer: Optional[Trainer] = None, log: Optional[Callable[[str], None]] = None) -> Optional[Path]:
        """Run every step not done yet, in order, training with `trainer`; return the report's
        path, or None when the search or grid step stopped at --timeout (re-running goes on from
        there). `log` is the pipeline's own (given at construction)."""
        with RunLock(self.out):
            saved = self.out / "pipeline.yaml"
            before = (yaml.safe_load(saved.read_text()) or {}) if saved.is_file() else {}
            pin_settings(self.out, "pipeline.yaml", self.config.to_dict(),
                         self.config.resumable_in(before), "pipeline run")
            done = set(self._state()["done"])
            for i, (step, run_step) in enumerate(self.steps(), 1):
                if step in done:
                    self.log(f"[{i}/{len(STEPS)}] {step}: done earlier, skipped")
                    continue
                self.log(f"[{i}/{len(STEPS)}] {step}")
                stopped = run_step(trainer)
                if stopped:
                    self.log(f"[{i}/{len(STEPS)}] {step}: {stopped}; re-run the same command to go on")
                    return None
                self._mark(step)
        return self.out / "report.md"

    def report(self, result: Optional[Path], log: Optional[Callable[[str], None]] = None) -> Optional[Path]:
        """report.md printed (nothing when a step stopped at --timeout: it said so)."""
        if result is not None:
            self._print(result.read_text())
        return result

    def steps(self) -> list[tuple[str, Callable[[Optional[Trainer]], Optional[str]]]]:
        """(name, method) of each step, in order; a method takes the trainer and returns None
        when its step is done, or why it stopped early (a --timeout)."""
        steps = [("search", self._search), ("grid", self._grid), ("emit", self._emit), ("train", self._train),
                 ("study", self._study), ("fidelity", self._fidelity), ("report", self._report)]
        assert tuple(name for name, _ in steps) == STEPS
        return steps

    def check(self, log: Optional[Callable[[str], None]] = None) -> None:
        """What can be checked before the lock: the search's refusals (the space's input against
        --data-resolution, its baselines' memory) and the data warning at the space's input.
        Nets made later (grid points, the scaled family, the study) are checked in their steps.
        `log` is the pipeline's own (given at construction)."""
        config = self._search_config()
        space = self.space
        check_search(config, space)
        for note in native_notes(self.dataset, [space.base]):
            self.log(note)

    # ---- configs and shared pieces -------------------------------------------------
    def _search_config(self) -> SearchConfig:
        c = self.config
        return SearchConfig(space=c.space, dataset=c.dataset, target_macs=c.target_macs,
                            out=str(self.out / "search"), objective=c.objective, trials=c.trials,
                            baselines=c.baselines, sampler=c.sampler, pruner=c.pruner, recipe=c.recipe,
                            study_name=c.study_name("search"), data_resolution=c.data_resolution,
                            evaluator=c.evaluator, prefilter=c.prefilter, prefilter_trials=c.prefilter_trials,
                            cost=c.cost, target=c.target, latency_device=c.latency_device,
                            latency_batch=c.latency_batch, latency_source=c.latency_source,
                            latency_table=c.latency_table, latency_stat=c.latency_stat,
                            budget_draws=c.budget_draws, **shared_settings(c))

    def _grid_config(self) -> GridConfig:
        c = self.config
        return GridConfig(base=str(self.out / "search" / "best.yaml"), dataset=c.dataset,
                          out=str(self.out / "grid"), step=c.grid_step, tolerance=c.grid_tolerance,
                          closest=c.grid_closest or None, recipe=c.recipe, study_name=c.study_name("grid"),
                          seeds=c.grid_seeds, resolution_multiple=c.resolution_multiple, **shared_settings(c))

    def base_spec(self) -> ArchSpec:
        """The searched base (search/best.yaml), named `searched`."""
        return resolve_spec(str(self.out / "search" / "best.yaml")).replace(name="searched")

    def coefficients(self) -> Coefficients:
        """The grid's chosen (alpha, beta, gamma)."""
        return Coefficients.load(self.out / "grid" / "best_coefficients.yaml")

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The search space, loaded once per run."""
        return load_space(self.config.space)

    @property
    def dataset(self) -> Dataset:
        """The data set as the search decodes it (the space's input, or --data-resolution)."""
        return self.data_for([self.space.base])

    def data_for(self, nets: list[ArchSpec]) -> Dataset:
        """The data set decoded for the nets a step trains: at their largest input, or at
        --data-resolution when that is larger (nas.preflight.decode_resolution), so the nets
        grown in resolution see real detail. Loaded once per size and run."""
        size = decode_resolution(nets, self.config.data_resolution)
        if size not in self._datasets:
            self._datasets[size] = load_dataset(
                self.config.dataset, data_dir=self.config.data_dir, download=self.config.download,
                resolution=size, val_fraction=self.config.val_fraction)
        return self._datasets[size]

    def _final_recipe(self):
        return resolve_recipe(self.config.final_recipe or self.config.recipe)

    def _runtime(self) -> Runtime:
        return Runtime(device=self.config.device, quiet=True)

    def _check(self, nets: list[ArchSpec], recipe: Recipe) -> Dataset:
        """nas.preflight's warning and memory checks for the nets one step trains, then their data,
        decoded at their largest input (so never too small for any of them)."""
        check_before_training(nets, self.dataset, recipe, self.config.device, None, self.log)
        return self.data_for(nets)

    # ---- steps ---------------------------------------------------------------------
    def _search(self, trainer: Optional[Trainer]) -> Optional[str]:
        search = SearchExperiment(self._search_config(), space=self.space)
        search.check(self.log)
        study = search.run(trainer, self.log)
        search.report(study, log=lambda _line: None)  # its files; the pipeline says it in its own lines
        config = search.config
        trained, other = trained_count(study)
        if trained < config.trials and other < NON_TRAINING_CAP * config.trials:
            return f"stopped at --timeout with {trained}/{config.trials} candidates trained"
        if search.summary["best"] is None:
            raise SearchError("the search trained no candidate to the end; raise --trials")
        self.log(cost_line(search.summary["cost"]))
        return None

    def _grid(self, trainer: Optional[Trainer]) -> Optional[str]:
        grid = GridExperiment(self._grid_config())
        base = resolve_spec(grid.config.base)
        # the grid decodes its data at its largest point's input (filled in the cache here)
        self._check([base, *(p.spec for p in plan_points(base, grid.config))], resolve_recipe(grid.config.recipe))
        study = grid.run(trainer, self.log)
        grid.report(study, log=lambda _line: None)  # its files; the pipeline says it in its own lines
        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        if waiting:
            return f"stopped at --timeout with {waiting} grid point(s) left"
        chosen = grid.chosen
        if chosen is None:
            raise SearchError("the grid trained no point; see grid/grid.csv")
        self.log(f"chosen coefficients alpha {chosen['alpha']}, beta {chosen['beta']}, gamma "
                 f"{chosen['gamma']} (val {chosen['val_acc'] * 100:.2f}%, realised MACs ratio "
                 f"{chosen['realised_ratio']}; {chosen['choice']})")
        return None

    def _emit(self, _trainer: Optional[Trainer]) -> None:
        c = self.coefficients()
        models = emit_compound(self.base_spec(), c, list(self.config.phis), self.config.resolution_multiple)
        table = write_emission(self.out / "scaled", self.base_spec(), models, c.factor)
        self.log(table[["name", "phi", "resolution", "macs", "params", "realised_ratio",
                        "formula_ratio"]].to_string(index=False))

    def searched_baseline(self) -> Optional[str]:
        """The baseline's name when the search's best (the base) is one of the space's baselines
        (search/summary.json; None for a search written before that file existed)."""
        path = self.out / "search" / "summary.json"
        best = json.loads(path.read_text()).get("best") if path.is_file() else None
        return (best or {}).get("baseline")

    def searched_baseline_size(self) -> str:
        """Where the base baseline's size came from, in words (see `searched_baseline`)."""
        path = self.out / "search" / "summary.json"
        best = (json.loads(path.read_text()).get("best") if path.is_file() else None) or {}
        return "rescaled to the target's MACs" if best.get("baseline_mode") == "matched" else "at its own size"

    def models(self) -> tuple[list[tuple[str, ArchSpec]], dict[str, str]]:
        """The searched base, its scaled family, and the space's references rescaled (by width)
        to the base's MACs, with a label each. When the base is a baseline, that reference would
        be the base again: it is left out, and the search's best sampled candidate
        (search/best_sampled.yaml, at its own MACs) is trained instead, named SAMPLED, so the
        report can say what the search found against that baseline."""
        base = self.base_spec()
        models, labels = [(base.name, base)], {base.name: "searched base, phi = 0"}
        won = self.searched_baseline()
        if won:
            labels[base.name] = f"searched base = baseline {won} {self.searched_baseline_size()}, phi = 0"
        emitted = pd.read_csv(self.out / "scaled" / "scaled.csv")
        for _, row in (emitted.iterrows() if self.config.train_scaled else ()):
            models.append((row["name"], resolve_spec(str(self.out / "scaled" / f"{row['name']}.yaml"))))
            labels[row["name"]] = f"phi = {row['phi']:g}"
        space = self.space
        baselines, classes = dict(space.baselines), self.dataset.num_classes
        from nas.counting import analytic_macs
        for ref in (r for r in space.references if r != won):
            spec = (space.to_spec(baselines[ref], num_classes=classes, name=ref) if ref in baselines
                    else resolve_spec(ref).replace(num_classes=classes, resolution=base.resolution))
            matched = match_to_macs(spec, analytic_macs(base), "width").spec
            models.append((matched.name, matched))
            labels[matched.name] = "hand-designed reference, width-matched to the base's MACs"
        sampled = self.out / "search" / SAMPLED_FILE
        if won and sampled.is_file():
            models.append((SAMPLED, resolve_spec(str(sampled)).replace(name=SAMPLED)))
            labels[SAMPLED] = "best sampled candidate of the search, at its own MACs"
        return models, labels

    def _train(self, trainer: Optional[Trainer]) -> None:
        models, _ = self.models()
        data = self._check([spec for _, spec in models], self._final_recipe())
        runs = compare(models, data, self._final_recipe(), self.out / "train", seeds=self.config.seeds,
                       runtime=self._runtime(), log=self.log, trainer=trainer)
        write_csv(self.out / "train" / "runs.csv", runs)

    def _study(self, trainer: Optional[Trainer]) -> None:
        out = self.out / "study"
        out.mkdir(parents=True, exist_ok=True)
        if not self.config.targets:
            write_text(out / "study.md", "No scaling study: no phi > 0 was emitted.\n")
            return
        nets = plan_study(self.base_spec(), self.coefficients(), self.config.targets,
                          self.config.resolution_multiple)
        data = self._check([n.spec for n in nets], self._final_recipe())
        run_study(nets, data, self._final_recipe(), out, self.config.seeds, self._runtime(), self.log, trainer)

    def _fidelity(self, trainer: Optional[Trainer]) -> None:
        c = self.config
        retrained = c.fidelity_candidates or c.fidelity_top + c.fidelity_random
        # two long-recipe seeds when a tau will be stated; below 8 candidates it is refused anyway
        seeds = tuple(c.seeds[:2]) if retrained >= MIN_CANDIDATES else tuple(c.seeds[:1])
        plan = FidelityPlan(top=self.config.fidelity_top, random=self.config.fidelity_random,
                            candidates=self.config.fidelity_candidates,
                            recipe=self.config.final_recipe or self.config.recipe, seeds=seeds,
                            noise_seeds=min(3, len(self.config.seeds)) if len(self.config.seeds) > 1 else 0,
                            seed=self.config.seed)
        inputs = fidelity_inputs(self.out / "search", plan)
        check_fidelity(inputs, plan, self.config.device, self.log)
        run_fidelity(inputs, plan, self.out / "fidelity", self._runtime(), self.log, trainer)

    def _report(self, _trainer: Optional[Trainer]) -> None:
        from .pipeline_report import write_report
        write_report(self)


def phi_label(phi: float) -> str:
    """'phi = 1' for a table label."""
    return f"phi = {phi:g}" if math.isfinite(phi) else "phi = ?"
