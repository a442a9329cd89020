"""`nas search --evaluator NAME` and the two-stage `--prefilter NAME --prefilter-trials M`."""
import json

import optuna
import pandas as pd
import pytest

from nas.cli import main
from nas.counting import analytic_count
from nas.search.space import load_space

from conftest import journal_storage, smoke_recipe_file

BASE = ["search", "--space", "tiny", "--dataset", "digits", "--target-macs", "2M", "--pruner", "none",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return ["--recipe", str(smoke_recipe_file(tmp_path_factory, "quick", epochs=1, train_fraction=0.25,
                                              precise_bn=0))]


def _study(out):
    return optuna.load_study(study_name=out.name, storage=journal_storage(out / "study.journal"))


def test_two_stage_search_trains_exactly_trials_candidates_the_best_scored_first(tmp_path, quick):
    out = tmp_path / "two-stage"
    assert main(BASE + quick + ["--trials", "3", "--prefilter", "params", "--prefilter-trials", "6", "--out", str(out)]) == 0
    df = pd.read_csv(out / "trials.csv")
    assert (df["status"] == "trained").sum() == 3 and len(df) == 3  # 2 baselines + the best prefiltered
    study = _study(out)
    picked = [t for t in study.trials if "prefilter_score" in t.user_attrs]
    assert len(picked) == 1 and picked[0].user_attrs["prefilter_rank"] == 1
    space = load_space("tiny")
    params = analytic_count(space.to_spec(picked[0].params, num_classes=10)).params
    assert picked[0].user_attrs["prefilter_score"] == params  # scored by its parameter count
    cost = json.loads((out / "cost.json").read_text())
    assert cost["prefilter"]["evaluator"] == "params" and cost["prefilter"]["scored"] == 6
    assert main(BASE + quick + ["--trials", "3", "--prefilter", "params", "--prefilter-trials", "6", "--out", str(out)]) == 0
    assert len(_study(out).trials) == 3  # resumed: nothing scored or trained again


def test_a_two_stage_search_stopped_by_its_timeout_counts_only_started_trials(tmp_path, fake_trainer):
    """The prefilter's picks wait in the queue; those the timeout leaves are not trials of the
    cost card (they were counted, 483 of 500, in a real 0.8 M search) and params stay integers."""
    out = tmp_path / "stopped"
    assert main(BASE + ["--trials", "5", "--prefilter", "params", "--prefilter-trials", "6", "--timeout", "0.001",
                        "--out", str(out)]) == 0
    states = [t.state for t in _study(out).trials]
    started = sum(s != optuna.trial.TrialState.WAITING for s in states)
    cost = json.loads((out / "cost.json").read_text())
    assert 1 <= started < len(states) and cost["trials"] == started and cost["queued"] == len(states) - started
    summary = (out / "summary.md").read_text()
    assert f"{cost['queued']} queued, not started" in summary
    best_row = next(line for line in summary.splitlines() if line.startswith("| best"))
    assert ".0 |" not in best_row.split("|")[4]  # the params cell


def test_search_with_an_evaluator_trains_nothing(tmp_path):
    out = tmp_path / "zero-cost"
    assert main(BASE + ["--trials", "4", "--evaluator", "macs", "--objective", "pareto", "--out", str(out)]) == 0
    df = pd.read_csv(out / "trials.csv")
    trained = df[df["status"] == "trained"]
    assert len(trained) == 4 and (trained["val_acc"] == trained["macs"]).all()
    assert json.loads((out / "cost.json").read_text())["training_images_seen"] == 0


def test_unknown_prefilter_is_one_line_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(BASE + ["--trials", "3", "--prefilter", "synflo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "synflow" in err and not out.exists()
    assert main(BASE + ["--trials", "3", "--prefilter-trials", "9", "--out", str(out)]) == 2
    assert "--prefilter" in capsys.readouterr().err and not out.exists()


def test_pipeline_passes_the_evaluator_and_prefilter_to_its_search(tmp_path):
    from nas.cli import build_parser
    from nas.commands.options import config_from
    from scaling.pipeline import Pipeline, PipelineConfig

    args = build_parser().parse_args(["pipeline", "--space", "tiny", "--dataset", "digits", "--target-macs", "2M",
                                      "--prefilter", "synflow", "--prefilter-trials", "40", "--evaluator",
                                      "train:smoke", "--out", str(tmp_path / "p")])
    search = Pipeline(config_from(PipelineConfig, args, phis=(1.0,)))._search_config()
    assert (search.prefilter, search.prefilter_trials, search.evaluator) == ("synflow", 40, "train:smoke")


def test_fewer_trials_than_baselines_queue_no_prefiltered_candidate(tmp_path, fake_trainer):
    out = tmp_path / "few"
    assert main(BASE + ["--recipe", "smoke", "--trials", "1", "--prefilter", "params", "--prefilter-trials", "4",
                        "--out", str(out)]) == 0
    assert not [t for t in _study(out).trials if "prefilter_score" in t.user_attrs]
    assert json.loads((out / "cost.json").read_text())["prefilter"]["queued"] == 0


def test_a_score_that_is_not_an_accuracy_needs_the_pareto_objective(tmp_path, capsys):
    out = tmp_path / "reward"
    assert main(BASE + ["--recipe", "smoke", "--trials", "2", "--evaluator", "sotl:smoke", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use --objective pareto" in err[0] and not out.exists()
