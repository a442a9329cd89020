"""The space's baselines at the target's cost (`--baselines`), and saying so when the search's
best is one: search summary, `nas compare`'s refusal of one architecture under two names, and
the pipeline report's first claim."""
import json
import math

import optuna
import pandas as pd
import pytest
import yaml

from nas.cli import main
from nas.counting import analytic_macs
from nas.search.baseline_report import Bests, baseline_lines
from nas.search.baselines import FIXED_SPEC, plan_baselines
from nas.search.objectives import Objective
from nas.search.space import load_space
from nas.spec import ArchSpec
from nas.stats import binomial_se, summarise_seeds
from nas.study.storage import requeue_interrupted
from scaling.pipeline_report import claim_baseline_won, claim_references, report_family
from scaling.single import match_to_macs
from test_safety import one_error_line

SEARCH = ["search", "--space", "tiny", "--dataset", "digits", "--recipe", "smoke", "--device", "cpu",
          "--pruner", "none"]
TARGET = 1_500_000
# the equal-cost solver's reach on the tiny baselines at 1.5 M (issue 18 tightens it to 2 %)
TOLERANCE_PCT = 5.0


@pytest.fixture(scope="module")
def tiny():
    return load_space("tiny")


def test_baselines_are_queued_at_the_targets_macs_and_a_baseline_best_is_stated(tmp_path, tiny, fake_trainer):
    """A search (fake trainer) whose trials are its two baselines: each trained at the solver's match to
    the target, recorded on its trial, and summary.md says the best is a baseline."""
    out = tmp_path / "s"
    assert main(SEARCH + ["--target-macs", "1.5M", "--trials", "2", "--out", str(out)]) == 0
    df = pd.read_csv(out / "trials.csv")
    assert list(df["baseline"]) == ["tiny-mbconv", "tiny-separable"]
    for _, row in df.iterrows():
        own = tiny.to_spec(dict(tiny.baselines)[row["baseline"]], num_classes=10)
        assert row["macs"] == analytic_macs(match_to_macs(own, TARGET).spec)  # the solver's net
        assert row["baseline_mode"] == "matched" and row["baseline_target"] == TARGET
        gap = (row["macs"] / TARGET - 1) * 100
        assert abs(gap) <= TOLERANCE_PCT and row["baseline_gap_pct"] == pytest.approx(gap, abs=1e-3)
        assert row["macs"] != analytic_macs(own)  # not at its own size
    summary = (out / "summary.md").read_text()
    best = json.loads((out / "summary.json").read_text())["best"]
    assert best["baseline"] in ("tiny-mbconv", "tiny-separable")
    assert (f"The search found no sampled candidate better than baseline `{best['baseline']}` at this "
            "budget") in summary
    assert "No sampled candidate finished training" in summary
    assert "rescaled by width to the target's MACs" in summary
    cost = json.loads((out / "cost.json").read_text())
    assert (cost["baseline_trials"], cost["sampled_trials"]) == (2, 0)
    assert "2 baseline and 0 sampled trained" in summary
    # best.yaml is the fixed spec the trial trained (stem and head rescaled too)
    assert analytic_macs(ArchSpec.load(out / "best.yaml")) == best["macs"]
    assert not (out / "best_sampled.yaml").exists()


def test_a_search_pinned_before_the_option_resumes_as_it_was(tmp_path, capsys, fake_trainer):
    out = tmp_path / "old"
    args = SEARCH + ["--target-macs", "1.5M", "--baselines", "none", "--trials", "1", "--out", str(out)]
    assert main(args) == 0
    saved = yaml.safe_load((out / "search.yaml").read_text())
    del saved["baselines"]  # as a search from before --baselines pinned it, file and study alike
    (out / "search.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    journal = optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))
    study = optuna.load_study(study_name="old", storage=optuna.storages.JournalStorage(journal))
    settings = study.user_attrs["settings"]
    study.set_user_attr("settings", {k: v for k, v in settings.items() if k != "baselines"})
    capsys.readouterr()
    assert main(args[:-6] + ["--trials", "2", "--out", str(out)]) == 0  # --baselines: the default
    printed = capsys.readouterr().out
    assert "was searched before --baselines existed" in printed and "resumed as it was" in printed
    assert "baselines" not in yaml.safe_load((out / "search.yaml").read_text())
    assert (pd.read_csv(out / "trials.csv")["status"] == "trained").sum() == 2


def test_hard_budget_baselines_are_rescaled_below_it_or_skipped(tiny):
    hard = Objective("hard", 1_000_000)
    matched = plan_baselines(tiny, "matched", hard, 10)
    assert [b.name for b in matched] == ["tiny-mbconv", "tiny-separable"]
    for b in matched:
        assert b.macs <= 1_000_000 and b.fixed  # rescaled stem and head: not a point of the space
        tiny.to_spec(b.params)  # the nearest point is made of the space's choices
        assert b.user_attrs()[FIXED_SPEC]["stages"] == [s.to_string() for s in b.spec.stages]
    skipped = []
    as_is = plan_baselines(tiny, "as-is", hard, 10, log=skipped.append)
    assert [b.name for b in as_is] == ["tiny-separable"]  # 0.43 M; tiny-mbconv's 2.2 M is over
    assert len(skipped) == 1 and "tiny-mbconv" in skipped[0] and "skipped" in skipped[0]
    assert plan_baselines(tiny, "none", hard, 10) == []
    below = plan_baselines(tiny, "matched", Objective("hard", 400_000), 10, log=skipped.append)
    assert all(b.macs <= 400_000 for b in below)


def test_an_interrupted_fixed_spec_trial_is_requeued_with_its_spec(tiny):
    queued = plan_baselines(tiny, "matched", Objective("reward", TARGET), 10)[0]
    study = optuna.create_study()
    study.enqueue_trial(queued.params, user_attrs=queued.user_attrs())
    trial = study.ask()
    tiny.suggest(trial)  # running when the worker dies
    requeue_interrupted(study)
    again = study.get_trials(states=(optuna.trial.TrialState.WAITING,))[0]
    assert again.user_attrs[FIXED_SPEC] == queued.spec.to_dict()
    assert again.user_attrs["baseline_target"] == TARGET


def _row(number, acc, macs, baseline=None):
    return pd.Series({"number": number, "val_acc": acc, "macs": macs, "baseline": baseline})


def test_summary_states_best_sampled_vs_best_baseline_with_the_noise_floor():
    sampled, base = _row(5, 0.90, 1.4e6), _row(0, 0.85, 1.5e6, "tiny-separable")
    text = baseline_lines(Bests(sampled, sampled, base), 180)
    floor = math.hypot(binomial_se(0.90, 180), binomial_se(0.85, 180)) * 100
    assert "found no sampled candidate" not in text
    assert "trial 5, 1.40 M MACs, val 90.00 %" in text and "`tiny-separable` (trial 0, 1.50 M MACs" in text
    assert f"Δ +5.00 pts on the validation split; noise floor ±{floor:.2f} pts" in text
    assert "within twice the floor" in text  # 5 pts < 2 x 3.46
    won = baseline_lines(Bests(base, sampled, base), 180)
    assert won.startswith("**The search found no sampled candidate better than baseline `tiny-separable` "
                          "at this budget**")


def test_compare_refuses_one_architecture_under_two_names(tmp_path, tiny, capsys):
    own = tiny.to_spec(dict(tiny.baselines)["tiny-mbconv"], num_classes=10, name="tiny-mbconv")
    copy = match_to_macs(own, TARGET).spec.replace(name="searched-best")
    own.save(tmp_path / "own.yaml")
    copy.save(tmp_path / "best.yaml")
    out = tmp_path / "cmp"
    base = ["compare", "--dataset", "digits", "--recipe", "smoke", "--device", "cpu", "--out", str(out)]
    # a searched best.yaml that is the baseline rescaled: --match-macs makes the baseline that net again
    assert main(base + [str(tmp_path / "best.yaml"), str(tmp_path / "own.yaml"),
                        "--match-macs", str(analytic_macs(copy))]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "searched-best and tiny-mbconv@" in line and "one architecture" in line
    own.replace(name="again").save(tmp_path / "again.yaml")
    assert main(base + [str(tmp_path / "own.yaml"), str(tmp_path / "again.yaml")]) == 2
    assert "tiny-mbconv and again are one architecture" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_pipeline_first_claim_when_the_base_is_a_baseline(tmp_path):
    runs = pd.DataFrame([{"model": m, "seed": s, "test_acc": acc + 0.01 * s, "macs": macs}
                         for m, acc, macs in (("searched", 0.90, 1.5e6), ("tiny-mbconv@1.5M", 0.85, 1.5e6),
                                              ("sampled", 0.80, 1.4e6))
                         for s in range(3)])
    runs.loc[runs["model"] == "sampled", "test_acc"] += [0.0, 0.02, -0.01]
    runs.loc[runs["model"] == "tiny-mbconv@1.5M", "test_acc"] += [0.01, -0.01, 0.0]  # not a constant gap
    summary = summarise_seeds(runs, reference="searched")
    labels = {"searched": "searched base = baseline tiny-separable at the target's MACs, phi = 0",
              "tiny-mbconv@1.5M": "hand-designed reference, width-matched to the base's MACs",
              "sampled": "best sampled candidate of the search, at its own MACs"}
    adjusted, sampled_rows, ref_rows, _ = report_family(summary, labels, tmp_path)  # no study: 2 claims
    first = claim_baseline_won(sampled_rows, "tiny-separable")
    sampled = adjusted.set_index("model").loc["sampled"]
    assert first.startswith("- **the search found no candidate better than `tiny-separable` at this budget**")
    assert (f"best sampled candidate (`sampled`, 1.40 M MACs) vs `tiny-separable`: **{sampled['verdict']}** "
            f"(Δ {sampled['diff'] * 100:+.2f} ± {sampled['ci'] * 100:.2f} pts raw 95 % CI") in first
    assert sampled_rows[0]["family"] == 2  # the sampled claim is Holm-adjusted with the reference's
    assert claim_references(ref_rows)[0].startswith("- searched base vs `tiny-mbconv@1.5M`")
    assert claim_baseline_won([], "tiny-separable").endswith("no sampled candidate finished training")


def test_pipeline_trains_the_best_sampled_candidate_instead_of_the_baseline_twice(tmp_path, tiny):
    from scaling.pipeline import Pipeline, PipelineConfig

    out = tmp_path / "pipe"
    base = match_to_macs(tiny.to_spec(dict(tiny.baselines)["tiny-separable"], num_classes=10), TARGET).spec
    base.save(out / "search" / "best.yaml")
    tiny.to_spec(dict(tiny.baselines)["tiny-mbconv"], num_classes=10, name="t3").save(
        out / "search" / "best_sampled.yaml")
    (out / "search" / "summary.json").write_text(json.dumps({"best": {"baseline": "tiny-separable"}}))
    (out / "scaled").mkdir()
    (out / "scaled" / "scaled.csv").write_text("name,phi\n")
    pipeline = Pipeline(PipelineConfig(space="tiny", dataset="digits", target_macs=TARGET, out=str(out),
                                       train_scaled=False))
    models, labels = pipeline.models()
    names = [name for name, _ in models]
    assert names[0] == "searched" and names[-1] == "sampled"
    assert not any(n.startswith("tiny-separable") for n in names)  # the base already is that net
    assert any(n.startswith("tiny-mbconv@") for n in names)
    assert labels["searched"].startswith("searched base = baseline tiny-separable")
