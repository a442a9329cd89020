"""`nas bench build`: a stratified, resumable benchmark of a space on digits."""
import json
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from nas.bench.sample import plan_candidates, planned_runs, strata_edges, stratum_of
from nas.cli import main
from nas.search.space import load_space

from conftest import ROOT, journal_storage, kill_mid_study, smoke_recipe_file


@pytest.fixture(scope="module")
def quick_recipe(tmp_path_factory):
    return smoke_recipe_file(tmp_path_factory, "bench-test", epochs=1, train_fraction=0.25, precise_bn=0)


def test_plan_is_stratified_distinct_and_holds_the_references():
    space = load_space("tiny")
    low, high = space.macs_range(10)
    cands = plan_candidates(space, 10, 8, (low, high), 4, 2, 3, seed=0)
    assert [c.name for c in cands[:2]] == ["tiny-mbconv", "tiny-separable"]
    assert len({c.spec.canonical_string() for c in cands}) == len(cands) == 10
    sampled = [c for c in cands if c.kind == "sampled"]
    assert sorted({c.stratum for c in sampled}) == [0, 1, 2, 3]  # every band is sampled
    assert [c.macs for c in sampled] == sorted(c.macs for c in sampled)
    assert sum(c.seeds == 2 for c in cands) == 3 and len(planned_runs(cands)) == 13
    assert cands == plan_candidates(space, 10, 8, (low, high), 4, 2, 3, seed=0)  # a pure function
    edges = strata_edges(100, 10_000, 2)
    assert [stratum_of(m, edges) for m in (99, 100, 999, 1001, 10_000, 10_001)] == [-1, 0, 0, 1, 1, -1]


def _args(out, recipe):
    return ["bench", "build", "--space", "tiny", "--dataset", "digits", "--recipe", str(recipe),
            "--candidates", "4", "--seeds", "2", "--seed-candidates", "1", "--macs-range", "0.3M,2.5M",
            "--device", "cpu", "--out", str(out)]


@pytest.mark.slow
def test_bench_builds_and_resumes_after_sigkill(tmp_path, quick_recipe):
    out = tmp_path / "bench"
    proc = subprocess.Popen([sys.executable, "-m", "nas", *_args(out, quick_recipe)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = lambda: journal_storage(out / "study.journal")  # noqa: E731
    done = kill_mid_study(proc, out / "study.journal", "bench-bench", finished=2)
    assert len(done) >= 2, "the benchmark did not get going"
    finished = {t.user_attrs["bench_run"]: t.user_attrs["val_acc"] for t in done}
    assert main(_args(out, quick_recipe)) == 0
    runs = pd.read_csv(out / "bench.csv")
    assert len(runs) == 7 and runs["candidate"].nunique() == 6  # 4 sampled + 2 references
    assert not runs.duplicated(["candidate", "seed"]).any()  # nothing trained twice
    assert (runs.groupby("candidate").size() == 2).sum() == 1
    assert runs["macs"].between(300_000, 2_500_000).all()
    study = optuna.load_study(study_name="bench-bench", storage=storage())
    by_run = {t.user_attrs["bench_run"]: t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert all(by_run[k].user_attrs["val_acc"] == v for k, v in finished.items())  # nothing lost
    assert any(t.state == optuna.trial.TrialState.FAIL for t in study.trials)  # the killed run, re-queued
    row = runs.iloc[0]
    assert len(json.loads(row["train_losses"])) == len(json.loads(row["val_accs"])) == 1
    assert row["latency_b1_ms"] > 0 and row["latency_b256_ms"] > 0 and 0 <= row["test_acc"] <= 1
    assert "Ground-truth seed noise" in (out / "bench.md").read_text() and (out / "bench.png").is_file()
    assert main(_args(out, quick_recipe)) == 0  # finished: trains nothing more
    assert len(optuna.load_study(study_name="bench-bench", storage=storage()).trials) == len(study.trials)
    moved = tmp_path / "kept" / "bench"  # a finished bench moved elsewhere resumes there
    moved.parent.mkdir()
    out.rename(moved)
    assert main(_args(moved, quick_recipe)) == 0
    pd.testing.assert_frame_equal(pd.read_csv(moved / "bench.csv"), runs)


def test_an_empty_band_is_one_line_and_writes_nothing(tmp_path, quick_recipe, capsys):
    out = tmp_path / "none"
    assert main(_args(out, quick_recipe) + ["--macs-range", "1000,2000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--macs-range" in err and not out.exists()
