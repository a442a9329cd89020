"""The experiment lifecycle (nas.experiments): check -> run(trainer) -> report, with the trainer
passed in: here a deterministic fake, called directly (no monkeypatching of the trainer)."""
import pandas as pd
import pytest

from nas.errors import NasError
from nas.experiments import execute
from nas.experiments.compare import CompareExperiment
from nas.recipe import resolve_recipe
from nas.settings import DataRequest
from nas.search.space import load_space

import fakes

TINY = load_space("tiny")
DIGITS = DataRequest("digits")


class CountingTrainer:
    """The fake trainer, counting its calls: (net name, seed) per training."""

    def __init__(self):
        self.calls, self.archs, self.keys = [], [], []

    def __call__(self, spec, dataset, recipe, **kwargs):
        self.calls.append((spec.name, recipe.seed))
        self.archs.append(spec.arch_string())
        self.keys.append(spec.canonical_string())
        return fakes.fake_train(spec, dataset, recipe, **kwargs)


def _nets():
    return [TINY.to_spec(params, 10, name) for name, params in TINY.baseline_params()]


def _experiment(out, **changes):
    settings = dict(specs=_nets(), data=DIGITS, recipe=resolve_recipe("smoke"), seeds=(0, 1), out=out,
                    device="cpu")
    return CompareExperiment(**{**settings, **changes})


def test_compare_trains_each_net_and_seed_once_with_the_trainer_it_is_given(tmp_path):
    trainer = CountingTrainer()
    report = execute(_experiment(tmp_path / "cmp"), trainer, log=lambda _line: None)
    assert report == tmp_path / "cmp" / "compare.md" and report.is_file()
    names = [s.name for s in _nets()]
    assert sorted(trainer.calls) == sorted((n, s) for n in names for s in (0, 1))
    table = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert list(table["model"]) == names and table.loc[1, "verdict"]  # the second vs the first
    # accuracies are the fake's: the trainer passed in is the one that ran
    runs = pd.read_csv(tmp_path / "cmp" / "runs.csv")
    seed0 = runs[(runs["model"] == names[0]) & (runs["seed"] == 0)]["val_acc"].item()
    assert seed0 == pytest.approx(fakes.fake_accuracy(_nets()[0], 0), abs=0.01)
    again = CountingTrainer()
    execute(_experiment(tmp_path / "cmp"), again, log=lambda _line: None)
    assert again.calls == []  # every run was finished: read back, not retrained


@pytest.mark.parametrize("changes, message", [
    ({"reference": "nope"}, "--reference 'nope' is not among"),
    ({"specs": "twin"}, "share a name"),
    ({"specs": "run-3"}, "may not be named 'run-3'"),
])
def test_compare_refuses_in_check_before_any_folder_or_training(tmp_path, changes, message):
    if changes.get("specs") == "twin":
        changes = {"specs": [_nets()[0], _nets()[0]]}
    elif changes.get("specs") == "run-3":
        changes = {"specs": [_nets()[0].replace(name="run-3"), _nets()[1]]}
    trainer = CountingTrainer()
    with pytest.raises(NasError, match=message):
        execute(_experiment(tmp_path / "cmp", **changes), trainer, log=lambda _line: None)
    assert trainer.calls == [] and not (tmp_path / "cmp").exists()


def test_one_network_under_two_names_is_refused(tmp_path):
    a = _nets()[0]
    with pytest.raises(NasError, match="are one architecture"):
        execute(_experiment(tmp_path / "cmp", specs=[a, a.replace(name="again")]), CountingTrainer(),
                log=lambda _line: None)


def test_search_trains_with_the_trainer_it_is_given(tmp_path):
    from nas.experiments.search import SearchExperiment
    from nas.search.engine import SearchConfig

    trainer = CountingTrainer()
    config = SearchConfig(space="tiny", dataset="digits", target_macs=1_500_000, out=str(tmp_path / "s"),
                          trials=4, recipe="smoke", device="cpu", pruner="none", seed=2)
    lines = []
    experiment = SearchExperiment(config)
    assert execute(experiment, trainer, log=lines.append) == tmp_path / "s" / "summary.md"
    trials = pd.read_csv(tmp_path / "s" / "trials.csv")
    trained = trials[trials["status"] == "trained"]
    assert len(trainer.calls) == len(trained) == 4  # every trained candidate, and only those, by it
    assert sorted(trainer.archs) == sorted(trained["arch"])
    assert experiment.summary["best"] is not None and any(line.startswith("best: trial #") for line in lines)



def test_grid_trains_each_point_and_seed_with_the_trainer_it_is_given(tmp_path):
    from scaling.experiments import GridExperiment
    from scaling.grid import GridConfig

    base = TINY.to_spec(dict(TINY.baselines)["tiny-separable"], 10, "tiny-separable").replace(resolution=16)
    base.save(tmp_path / "base.yaml")
    config = GridConfig(base=str(tmp_path / "base.yaml"), dataset="digits", out=str(tmp_path / "g"), closest=2,
                        recipe="smoke", device="cpu", tolerance=0.3, seeds=2)
    trainer = CountingTrainer()
    lines = []
    experiment = GridExperiment(config)
    assert execute(experiment, trainer, log=lines.append) == tmp_path / "g" / "best_coefficients.yaml"
    grid = pd.read_csv(tmp_path / "g" / "grid.csv")
    assert len(grid) == 2 and len(trainer.calls) == 4  # 2 points x 2 seeds, all by this trainer
    assert sorted(seed for _, seed in trainer.calls) == [0, 0, 1, 1]
    assert experiment.chosen is not None and any(line.startswith("chosen: alpha") for line in lines)
    again = CountingTrainer()
    execute(GridExperiment(config), again, log=lines.append)
    assert again.calls == []  # a finished grid is read back


def test_grid_with_no_point_near_2x_is_refused_in_check(tmp_path):
    from nas.errors import NasError as Refusal
    from scaling.experiments import GridExperiment
    from scaling.grid import GridConfig

    base = TINY.to_spec(dict(TINY.baselines)["tiny-separable"], 10, "tiny-separable").save(tmp_path / "base.yaml")
    config = GridConfig(base=str(base), dataset="digits", out=str(tmp_path / "g"), tolerance=1e-9, step=0.2)
    trainer = CountingTrainer()
    with pytest.raises(Refusal, match="no grid point"):
        execute(GridExperiment(config), trainer, log=lambda _line: None)
    assert trainer.calls == [] and not (tmp_path / "g").exists()


def test_bench_trains_each_planned_run_with_the_trainer_it_is_given(tmp_path):
    from nas.bench.build import BenchConfig
    from nas.experiments.bench import BenchExperiment

    config = BenchConfig(space="tiny", dataset="digits", recipe="smoke", candidates=3, seeds=2, seed_candidates=1,
                         macs_low=300_000, macs_high=2_500_000, out=str(tmp_path / "b"), device="cpu")
    trainer = CountingTrainer()
    experiment = BenchExperiment(config)
    assert execute(experiment, trainer, log=lambda _line: None) == tmp_path / "b" / "bench.md"
    bench = pd.read_csv(tmp_path / "b" / "bench.csv")
    assert len(bench) == len(trainer.calls) == 6  # 3 sampled + 2 references, one of them with 2 seeds
    assert sorted(trainer.keys) == sorted(bench["arch"])  # the bench records canonical strings
    assert experiment.summary["runs"] == 6


def test_scaling_study_trains_each_net_and_seed_with_the_trainer_it_is_given(tmp_path):
    from scaling import Coefficients
    from scaling.experiments import ScalingStudyExperiment

    base = TINY.to_spec(dict(TINY.baselines)["tiny-separable"], 10, "tiny-separable").replace(resolution=16)
    trainer = CountingTrainer()
    experiment = ScalingStudyExperiment(base=base, coefficients=Coefficients(1.2, 1.1, 1.15), targets=[2.0],
                                        data=DIGITS, recipe=resolve_recipe("smoke"), seeds=(0, 1),
                                        out=tmp_path / "study", device="cpu")
    assert execute(experiment, trainer, log=lambda _line: None) == tmp_path / "study" / "study.md"
    study = pd.read_csv(tmp_path / "study" / "study.csv")
    nets = {n.spec.name for n in experiment.nets}
    assert set(study["model"]) == nets and set(study["strategy"]) == {"base", "compound", "depth", "width", "resolution"}
    assert sorted(trainer.calls) == sorted((n, s) for n in nets for s in (0, 1))


def test_fidelity_retrains_the_search_candidates_with_the_trainer_it_is_given(tmp_path):
    from nas.experiments.fidelity import FidelityExperiment
    from nas.experiments.search import SearchExperiment
    from nas.fidelity import FidelityPlan
    from nas.search.engine import SearchConfig

    search = SearchConfig(space="tiny", dataset="digits", target_macs=1_500_000, out=str(tmp_path / "s"),
                          trials=9, recipe="smoke", device="cpu", pruner="none", baselines="none")
    execute(SearchExperiment(search), CountingTrainer(), log=lambda _line: None)
    trainer = CountingTrainer()
    plan = FidelityPlan(recipe="smoke", seeds=(0,), noise_seeds=0, candidates=8)
    report = execute(FidelityExperiment(tmp_path / "s", plan, device="cpu"), trainer, log=lambda _line: None)
    assert report == tmp_path / "s" / "fidelity" / "fidelity.md"
    table = pd.read_csv(tmp_path / "s" / "fidelity" / "fidelity.csv")
    assert len(table) == len(trainer.calls) == 8 and {seed for _, seed in trainer.calls} == {0}


def test_pipeline_trains_every_step_with_the_trainer_it_is_given(tmp_path):
    """The pipeline is an experiment of experiments: search, grid, final training, study and
    fidelity each train with the trainer the pipeline is given, and a finished pipeline run
    again trains nothing."""
    from scaling.pipeline import STEPS, Pipeline, PipelineConfig

    config = PipelineConfig(space="tiny", dataset="digits", target_macs=1_500_000, out=str(tmp_path / "p"),
                            trials=4, recipe="smoke", grid_closest=2, grid_seeds=1, phis=(1.0,), seeds=(0, 1),
                            fidelity_top=1, fidelity_random=1, device="cpu", pruner="none")
    trainer, lines = CountingTrainer(), []
    report = execute(Pipeline(config, log=lines.append), trainer)
    assert report == tmp_path / "p" / "report.md" and report.is_file()
    assert lines[-1] == report.read_text()  # report() prints it
    out = tmp_path / "p"
    search = pd.read_csv(out / "search" / "trials.csv")
    grid = pd.read_csv(out / "grid" / "grid.csv")
    train = pd.read_csv(out / "train" / "runs.csv")
    study = pd.read_csv(out / "study" / "runs.csv")
    assert (search["status"] == "trained").sum() == 4 and len(grid) == 2
    assert len(train) == 2 * 4 and len(study) == 2 * 5  # (base, phi 1, two references); base + 4 strategies
    # the search's and grid's trials keep no run folder; every later training writes result.json
    folders = [p for step in ("train", "study", "fidelity") for p in (out / step).rglob("result.json")]
    assert sum(p.relative_to(out).parts[0] == "fidelity" for p in folders) >= 4  # long runs, proxy noise
    assert len(trainer.calls) == 4 + 2 + len(folders)  # every step's trainings, all by this trainer
    # the fake's accuracies: the trainer passed in is the one that ran
    base = train[(train["model"] == "searched") & (train["seed"] == 0)]
    spec = Pipeline(config).base_spec()
    assert base["val_acc"].item() == pytest.approx(fakes.fake_accuracy(spec, 0), abs=0.01)
    again, lines = CountingTrainer(), []
    execute(Pipeline(config, log=lines.append), again)
    assert again.calls == [] and sum("done earlier, skipped" in line for line in lines) == len(STEPS)
