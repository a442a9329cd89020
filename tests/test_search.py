import json
import subprocess
import sys

import optuna
import pandas as pd
import pytest
import yaml

from nas.cli import main
from conftest import ROOT, kill_mid_study
from fakes import fake_env

BASE = ["search", "--space", "tiny", "--dataset", "digits", "--recipe", "smoke", "--device", "cpu"]


def _run(out, *extra):
    return main(BASE + ["--out", str(out), *extra])


@pytest.mark.slow
def test_search_end_to_end_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--target-macs", "1.5M", "--trials", "5", "--seed", "1") == 0
    printed = capsys.readouterr().out
    assert "trial 1/5 #0 " in printed and "ETA" in printed and "search cost:" in printed
    for name in ("trials.csv", "pareto.csv", "best.yaml", "summary.md", "pareto.png", "history.png",
                 "cost.json", "search.yaml", "study.journal"):
        assert (out / name).is_file(), name
    df = pd.read_csv(out / "trials.csv")
    assert list(df["baseline"][:2]) == ["tiny-mbconv", "tiny-separable"]  # baselines run first
    trained = df[df["status"].isin(["trained", "pruned"])]
    assert len(trained) == 5
    assert trained["val_acc"].between(0, 1).all() and (trained["seconds"] > 0).all()
    assert (trained["latency_ms"] > 0).all()
    cost = json.loads((out / "cost.json").read_text())
    assert cost["trained"] + cost["pruned"] == 5 and cost["training_images_seen"] > 0
    assert cost["devices"] == ["cpu"]
    # the best spec is standalone: nas flops on it gives the MACs recorded for its trial
    summary = (out / "summary.md").read_text()
    assert "best (searched)" in summary and "baseline: tiny-mbconv" in summary
    assert main(["flops", str(out / "best.yaml"), "--json"]) == 0
    flops = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    best_trial = int(summary.split("| best (searched) | ")[1].split(" |")[0])
    assert flops["macs"] == flops["macs_fvcore"] == df.loc[df["number"] == best_trial, "macs"].item()
    # pareto.csv is a non-dominated set of the trained candidates
    front = pd.read_csv(out / "pareto.csv")
    assert front["val_acc"].is_monotonic_increasing and front["macs"].is_monotonic_increasing


def _archs(out):
    return list(pd.read_csv(out / "trials.csv").sort_values("number")["arch"])


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_same_seed_same_sequence_of_specs(tmp_path, sampler, fake_trainer):
    for name in ("a", "b"):
        assert _run(tmp_path / name, "--target-macs", "2M", "--trials", "6", "--seed", "7",
                    "--sampler", sampler, "--pruner", "none") == 0
    assert _archs(tmp_path / "a") == _archs(tmp_path / "b")
    assert _run(tmp_path / "c", "--target-macs", "2M", "--trials", "6", "--seed", "8",
                "--sampler", sampler, "--pruner", "none") == 0
    assert _archs(tmp_path / "c")[2:] != _archs(tmp_path / "a")[2:]


def test_hard_mode_trains_nothing_above_the_target(tmp_path, fake_trainer):
    out = tmp_path / "hard"
    assert _run(out, "--objective", "hard", "--target-macs", "1M", "--trials", "4",
                "--sampler", "random", "--seed", "3", "--budget-draws", "0") == 0
    df = pd.read_csv(out / "trials.csv")
    trained = df[df["status"].isin(["trained", "pruned", "diverged"])]
    rejected = df[df["status"] == "rejected"]
    assert len(trained) == 4 and len(rejected) >= 1  # the 2.2M baseline at least
    assert (trained["macs"] <= 1_000_000).all()
    assert (rejected["macs"] > 1_000_000).all()
    assert rejected["epochs"].isna().all() and rejected["images_seen"].isna().all()
    assert (rejected["seconds"] < 0.5).all()
    assert yaml.safe_load((out / "best.yaml").read_text())  # a best within budget exists


@pytest.mark.parametrize("sampler", ["tpe", "nsga2"])  # random: tests/test_budget_sampler.py
def test_hard_budget_redraws_samples_over_it_before_they_become_trials(tmp_path, fake_trainer, sampler, capsys):
    # tiny at 0.6 M MACs: most of the space lies above, so without redraws most samples are
    # stored as rejected trials (the 0-draw run shows it); with them none is
    runs = {}
    for draws in ("0", "256"):
        out = tmp_path / f"draws{draws}"
        assert _run(out, "--objective", "hard", "--target-macs", "0.6M", "--trials", "12", "--sampler", sampler,
                    "--seed", "5", "--pruner", "none", "--baselines", "none", "--budget-draws", draws) == 0
        runs[draws] = pd.read_csv(out / "trials.csv")
    assert (runs["0"]["status"] == "rejected").sum() >= 6
    redrawn = runs["256"]
    assert (redrawn["status"] != "rejected").all() and (redrawn["macs"] <= 600_000).all()
    assert len(redrawn) < len(runs["0"])
    assert "budget-aware sampling: " in capsys.readouterr().out


def test_pareto_mode_returns_the_front(tmp_path, fake_trainer):
    out = tmp_path / "pareto"
    assert _run(out, "--objective", "pareto", "--target-macs", "2M", "--trials", "6",
                "--sampler", "nsga2") == 0
    df = pd.read_csv(out / "trials.csv")
    front = pd.read_csv(out / "pareto.csv")
    study = optuna.load_study(study_name="pareto", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))))
    assert sorted(t.number for t in study.best_trials) == sorted(front["number"])
    for _, row in front.iterrows():
        dominated = df[(df["val_acc"] >= row["val_acc"]) & (df["macs"] <= row["macs"])
                       & ((df["val_acc"] > row["val_acc"]) | (df["macs"] < row["macs"]))]
        assert dominated.empty


def test_target_below_the_smallest_candidate_is_refused_before_any_trial(tmp_path, capsys):
    out = tmp_path / "low"
    assert _run(out, "--target-macs", "100k", "--trials", "3") == 2
    err = capsys.readouterr().err
    assert "below the smallest candidate of space tiny: 329,344 MACs" in err
    assert not (out / "study.journal").exists()


def test_changed_settings_are_refused_and_more_trials_extend(tmp_path, capsys, fake_trainer):
    out = tmp_path / "run"
    assert _run(out, "--target-macs", "2M", "--trials", "3") == 0
    before = pd.read_csv(out / "trials.csv")
    assert _run(out, "--target-macs", "3M", "--trials", "3") == 2
    assert "other settings (target_macs differ)" in capsys.readouterr().err
    assert _run(out, "--target-macs", "2M", "--trials", "3") == 0  # nothing left to do
    assert len(pd.read_csv(out / "trials.csv")) == len(before)
    assert _run(out, "--target-macs", "2M", "--trials", "5") == 0
    after = pd.read_csv(out / "trials.csv")
    assert (after["status"].isin(["trained", "pruned"])).sum() == 5
    pd.testing.assert_frame_equal(after.iloc[:len(before)][["number", "arch", "val_acc"]],
                                  before[["number", "arch", "val_acc"]])


@pytest.mark.slow
def test_killed_search_resumes_with_nothing_lost_or_repeated(tmp_path, fake_trainer):
    """The search process trains with the fake trainer, 0.3 s an epoch, so the kill lands mid-trial;
    the resume runs in this process (the fake again)."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "nas", *BASE, "--target-macs", "2M", "--trials", "6",
           "--pruner", "none", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=fake_env(epoch_seconds=0.3))
    done = kill_mid_study(proc, out / "study.journal", "killed", finished=2)
    assert len(done) >= 2, "the search did not get going"
    finished = {t.number: (t.user_attrs["arch"], t.value) for t in done}
    assert main(BASE + ["--target-macs", "2M", "--trials", "6", "--pruner", "none", "--out", str(out)]) == 0
    df = pd.read_csv(out / "trials.csv")
    trained = df[df["status"] == "trained"]
    assert len(trained) == 6
    assert trained["arch"].is_unique  # nothing trained twice
    for number, (arch, value) in finished.items():  # nothing finished was lost
        row = df[df["number"] == number].iloc[0]
        assert row["arch"] == arch and row["reward"] == pytest.approx(value)
    retried = df[df["retry_of"].notna()]
    assert len(retried) >= 1  # the trial running at the kill was queued again
    killed = df[df["number"].isin(retried["retry_of"])]
    assert (killed["state"] == "FAIL").all()


@pytest.mark.slow
def test_two_workers_share_one_study(tmp_path, monkeypatch, fake_trainer):
    from fakes import ENV

    # the spawned workers train with the fake too (the logic under test is the study's), 0.5 s an
    # epoch: one worker alone would need 4 s for the 4 candidates, far more than the start-up skew
    env = fake_env(epoch_seconds=0.5)
    for name in ("PYTHONPATH", ENV):
        monkeypatch.setenv(name, env[name])
    out = tmp_path / "workers"
    assert _run(out, "--target-macs", "2M", "--trials", "4", "--workers", "2", "--pruner", "none") == 0
    df = pd.read_csv(out / "trials.csv")
    assert set(df["worker"].dropna().astype(int)) == {0, 1}
    assert (df["status"] == "trained").sum() >= 4


def test_postgres_storage(tmp_path, postgres_url, fake_trainer):
    out = tmp_path / "pg"
    args = ["--target-macs", "2M", "--trials", "3", "--storage", postgres_url, "--study-name", "pg-test"]
    assert _run(out, *args) == 0
    study = optuna.load_study(study_name="pg-test", storage=postgres_url)
    assert sum(t.user_attrs.get("status") == "trained" for t in study.trials) == 3
    assert not (out / "study.journal").exists()
    assert _run(out, *args[:3], "5", *args[4:]) == 0  # resume from the server, two more
    study = optuna.load_study(study_name="pg-test", storage=postgres_url)
    assert sum(t.user_attrs.get("status") == "trained" for t in study.trials) == 5
