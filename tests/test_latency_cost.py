"""Latency (and params) as the search's cost: targets with units, the lookup table, the three
objectives with --cost latency on digits."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from nas.cli import build_parser, main
from nas.costs import Target, parse_target
from nas.errors import NasError
from nas.latency import device_fingerprint
from nas.latency_check import sample_specs
from nas.latency_table import LatencyTable, build_table, space_ops, spec_ops
from nas.search import engine
from nas.search.engine import SearchConfig
from nas.search.space import load_space
from nas.spec import StageSpec
from test_safety import one_error_line

SEARCH = ["search", "--space", "tiny", "--dataset", "digits", "--recipe", "smoke", "--device", "cpu",
          "--pruner", "none", "--sampler", "random"]
SMALL_SPACE = {
    "name": "micro", "resolution": 16, "activation": "silu", "dropout": 0.0, "drop_path": 0.0,
    "stem": {"channels": 8, "kernel": 3, "stride": 1}, "head": {"channels": 32},
    "choices": {"block": ["mbconv", "conv"], "expand": [1, 3], "kernel": [3], "se": [0.0, 0.25],
                "skip": [True], "width": [1.0, 1.5], "repeats": [0, 1]},
    "stages": [{"out": 8, "repeats": 1, "stride": 1}, {"out": 16, "repeats": 1, "stride": 2}],
}


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    """A table for the tiny space, one timed pass per entry (values are real, not precise)."""
    path = tmp_path_factory.mktemp("table") / "tiny.json"
    build_table(load_space("tiny"), torch.device("cpu"), repeats=1, log=lambda _: None).save(path)
    return path


def test_table_prediction_is_the_sum_of_its_entries(tmp_path, capsys):
    space_file = tmp_path / "micro.yaml"
    space_file.write_text(yaml.safe_dump(SMALL_SPACE))
    out = tmp_path / "micro.json"
    assert main(["latency", "table", "--space", str(space_file), "--out", str(out), "--repeats", "2"]) == 0
    assert "timed, " in capsys.readouterr().out  # progress with an ETA
    table = LatencyTable.load(out, warn=pytest.fail)  # built here: same fingerprint, no warning
    space = load_space(str(space_file))
    assert len(table.entries) == len(space_ops(space, 10)) and all(v > 0 for v in table.entries.values())
    for spec in sample_specs(space, 8, seed=1, classes=10):
        keys = [op.key for op in spec_ops(spec)]
        assert len(keys) == spec.blocks + 2  # stem, every block, head
        assert table.predict(spec) == pytest.approx(sum(table.entries[k] for k in keys), rel=1e-12)
    # a second build into the same file is refused, the table left as it was
    before = out.read_text()
    assert main(["latency", "table", "--space", str(space_file), "--out", str(out)]) == 2
    assert out.read_text() == before


def test_a_table_from_another_device_fingerprint_warns_once(tiny_table, tmp_path):
    data = json.loads(tiny_table.read_text())
    data["fingerprint"] = {**data["fingerprint"], "cpu": "Some Other CPU 9000"}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    lines = []
    table = LatencyTable.load(other, warn=lines.append)
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "Some Other CPU 9000" in lines[0]
    assert table.entries == data["entries"]
    LatencyTable.load(tiny_table, warn=pytest.fail)
    assert data["fingerprint"] != device_fingerprint(torch.device("cpu"))


def test_targets_with_units_are_read_and_bad_units_are_one_line(capsys):
    assert parse_target("5ms") == Target(5.0, True)
    assert parse_target("0.5s") == Target(500.0, True) and parse_target("800us").value == pytest.approx(0.8)
    assert parse_target("800k") == Target(800_000, False) and parse_target("1.2M").value == 1_200_000
    args = build_parser().parse_args([*SEARCH, "--cost", "latency", "--target", "5ms", "--out", "x"])
    assert args.target == Target(5.0, True) and args.cost == "latency"
    for bad in ("5parsecs", "5 mss", "-5ms", "ms"):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([*SEARCH, "--cost", "latency", "--target", bad, "--out", "x"])
        assert exc.value.code == 2
        assert "5ms, 0.5s or 800us" in one_error_line(capsys.readouterr().err) or bad == "-5ms"
    with pytest.raises(NasError, match="cannot read target"):
        parse_target("12 furlongs")


@pytest.mark.parametrize("argv, message", [
    (["--cost", "latency", "--target", "800k"], "--cost latency takes a time"),
    (["--target", "5ms"], "--cost macs takes a count"),
    (["--target", "1M", "--target-macs", "2M"], "disagree"),
    (["--cost", "latency", "--target-macs", "1M"], "give --target instead"),
    (["--cost", "params"], "needs --target"),
    (["--cost", "latency", "--target", "5ms", "--latency-source", "predicted"], "--latency-table"),
])
def test_inconsistent_cost_options_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main([*SEARCH, *argv, "--out", str(out)]) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_hard_latency_budget_rejects_before_any_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a candidate over the latency target was trained")
    monkeypatch.setattr(engine, "train", no_training)
    out = tmp_path / "hard"
    assert main([*SEARCH, "--objective", "hard", "--cost", "latency", "--target", "1us", "--trials", "1",
                 "--latency-stat", "min", "--out", str(out)]) == 0
    df = pd.read_csv(out / "trials.csv")
    assert len(df) == engine.NON_TRAINING_CAP and (df["status"] == "rejected").all()
    assert (df["cost"] > 0.001).all() and df["val_acc"].isna().all() and df["images_seen"].isna().all()
    cache = json.loads((out / "latency_cache.json").read_text())
    measured = next(iter(cache.values()))
    assert all(key.startswith("b1 min ") for key in measured)  # --latency-stat min, batch 1
    assert set(df["cost"]) <= set(measured.values())  # each rejection was measured (or cached) first
    assert json.loads((out / "cost.json").read_text())["trained"] == 0


def test_reward_with_measured_latency_and_pareto_with_a_table(tmp_path, tiny_table, capsys, fake_trainer):
    out = tmp_path / "reward"
    assert main([*SEARCH, "--cost", "latency", "--target", "5ms", "--trials", "2", "--out", str(out)]) == 0
    df = pd.read_csv(out / "trials.csv")
    trained = df[df["status"] == "trained"]
    assert len(trained) == 2 and (trained["cost"] == trained["latency_ms"]).all()  # one measurement
    # the reward from the values as trials.csv holds them (a CSV round trip may move the last bit)
    assert np.allclose(trained["reward"], trained["val_acc"] * (trained["cost"] / 5.0) ** -0.07, rtol=1e-12, atol=0)
    summary = (out / "summary.md").read_text()
    assert "latency (measured, cpu, batch 1, " in summary and "measured latency (ms)" in summary
    assert "latency" in json.loads((out / "cost.json").read_text())["objective"]

    out = tmp_path / "pareto"
    assert main([*SEARCH, "--objective", "pareto", "--cost", "latency", "--target", "5ms",
                 "--latency-source", "predicted", "--latency-table", str(tiny_table), "--trials", "2",
                 "--out", str(out)]) == 0
    table = LatencyTable.load(tiny_table)
    space = load_space("tiny")
    df = pd.read_csv(out / "trials.csv")
    for _, row in df[df["status"] == "trained"].iterrows():
        spec = space.base.replace(stages=tuple(StageSpec.from_string(s) for s in row["arch"].split()))
        assert row["cost"] == pytest.approx(table.predict(spec))  # the table's sum, not a measurement
        assert row["latency_ms"] > 0
    front = pd.read_csv(out / "pareto.csv")
    assert front["cost"].is_monotonic_increasing and front["val_acc"].is_monotonic_increasing
    assert "predicted from" in (out / "summary.md").read_text()


def test_a_macs_search_pins_no_cost_keys_so_older_run_folders_resume():
    config = SearchConfig(space="tiny", dataset="digits", target_macs=2_000_000, out="x")
    pinned = config.to_dict()
    assert not {"cost", "target", "latency_device", "latency_source", "latency_table", "latency_stat"} & set(pinned)
    assert SearchConfig(**pinned) == config
    latency = SearchConfig(space="tiny", dataset="digits", target_macs=None, out="x", cost="latency",
                           target=5.0)
    assert latency.to_dict()["cost"] == "latency" and latency.objective_fn().target == 5.0


def test_latency_check_writes_its_table_csv_and_plot(tiny_table, tmp_path, capsys):
    out = tmp_path / "check"
    assert main(["latency", "check", str(tiny_table), "--space", "tiny", "--samples", "4", "--calibrate", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for row in ("| table sum | 4 |", "c0 + c1*blocks", "| MACs (a*MACs+b fit on all 4 nets) | 4 |",
                "noise floor", "(paired)"):
        assert row in printed
    df = pd.read_csv(out / "check.csv")
    assert len(df) == 4 and df["arch"].is_unique
    assert (df[["predicted_ms", "measured_ms", "remeasured_ms", "paired_sum_ms"]] > 0).all().all()
    assert (out / "check.png").stat().st_size > 0 and "within +-10 %" in (out / "check.md").read_text()


def test_pipeline_passes_the_cost_to_its_search(tmp_path):
    from nas.commands.options import config_from, cost_fields
    from scaling.pipeline import Pipeline, PipelineConfig
    args = build_parser().parse_args(["pipeline", "--space", "tiny", "--dataset", "digits", "--cost", "latency",
                                      "--target", "800us", "--latency-batch", "4", "--out", str(tmp_path / "p")])
    config = config_from(PipelineConfig, args, phis=(1.0,), **cost_fields(args))
    search = Pipeline(config)._search_config()
    assert (search.cost, search.target, search.target_macs, search.latency_batch) == ("latency", 0.8, None, 4)
    assert search.objective_fn().describe().startswith("reward ACC * (latency / 0.8 ms)^w")
    # a pipeline.yaml written before --cost existed resumes: the new keys at their defaults may differ
    old = PipelineConfig(space="tiny", dataset="digits", target_macs=1_000_000, out="x")
    new_keys = {"cost", "target", "latency_device", "latency_batch", "latency_source", "latency_table",
                "latency_stat"}
    saved = {k: v for k, v in old.to_dict().items() if k not in new_keys}
    assert new_keys <= set(old.resumable_in(saved)) and not new_keys & set(old.resumable_in(old.to_dict()))


def test_a_table_over_its_entry_limit_is_refused_before_timing(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["latency", "table", "--space", "tiny", "--max-entries", "100", "--out", str(out)]) == 2
    assert "404 distinct pieces" in one_error_line(capsys.readouterr().err) and not out.exists()
